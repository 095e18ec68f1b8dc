"""benchmarks/export.py: a measured command's peak RSS is its own, not the memory of the
process that started it (here: pytest with torch loaded)."""

from __future__ import annotations

import sys

import pytest

from attnmt.errors import UserError
from benchmarks import common
from benchmarks.export import run_measured


def test_peak_rss_is_the_commands_own() -> None:
    _, small = run_measured([sys.executable, "-c", "pass"])
    out, large = run_measured(
        [
            sys.executable,
            "-c",
            "data = bytearray(300 * 2**20); data[::4096] = b'x' * len(data[::4096]); print('done')",
        ]
    )
    assert small < 100 < common.peak_rss_mb()  # this process: torch and the tests loaded
    assert 300 < large < 300 + small + 50
    assert out == "done\n"


def test_a_failing_command_is_one_line() -> None:
    with pytest.raises(UserError, match="failed"):
        run_measured([sys.executable, "-c", "raise SystemExit('no such run')"])
