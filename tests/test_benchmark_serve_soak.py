"""benchmarks/serve_soak.py's bookkeeping: RSS growth over the last 5 minutes (or the
second half of a shorter soak) and the rows it records."""

from __future__ import annotations

import os

import pytest

from benchmarks.serve_soak import rss_growth, rss_mb, soak_rows


def record(t: float, rss: float, unexpected: list[str] | None = None) -> dict:
    return {
        "t_s": t,
        "rss_mb": rss,
        "requests": 10,
        "sentences_per_s": 5.0,
        "p50_ms": 10.0,
        "p99_ms": 20.0,
        "unexpected": unexpected or [],
    }


def test_rss_growth_looks_at_the_last_five_minutes_only() -> None:
    # 10 minutes: grows early (warm-up), flat over the last 5 minutes but one bump of 2%
    records = [record(0, 100.0)] + [record(30 * k, 200.0) for k in range(1, 21)]
    records[15]["rss_mb"] = 204.0  # t = 450 s, inside the last 5 minutes
    assert rss_growth(records) == pytest.approx(2.0)
    short = [record(0, 100.0), record(30, 110.0), record(60, 121.0)]  # the second half
    assert rss_growth(short) == pytest.approx(10.0)


def test_rows_count_errors_and_give_one_row_per_window() -> None:
    records = [record(0, 100.0), record(30, 101.0, ["500 for 200"]), record(60, 101.0)]
    rows = dict(soak_rows(records, clients=16))
    assert rows["unexpected answers (errors)"] == "1" and rows["requests answered"] == "20"
    assert rows["t = 30 s"].endswith("1 errors, RSS 101 MB")
    assert rss_mb(os.getpid()) > 1  # this process, from /proc
