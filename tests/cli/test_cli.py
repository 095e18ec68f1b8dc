"""The CLI: help works, and user mistakes give one line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from attnmt.cli.main import main


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("quickstart", "train", "evaluate", "config"):
        assert command in out


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attnmt.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["train", "missing.yaml"], "config file not found: missing.yaml"),
        (["config", "--set", "model.attention.score=additive"], "model.attention.score"),
        (["config", "--set", "model.bogus=1"], "unknown key 'model.bogus'"),
        (
            ["evaluate", "--model", "no/such/run", "--src", "a", "--ref", "b"],
            "run directory not found",
        ),
    ],
)
def test_user_errors_are_one_line(args: list[str], fragment: str, tmp_path: Path) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_train_with_directory_as_config(tmp_path: Path) -> None:
    result = run_cli("train", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "directory" in result.stderr
