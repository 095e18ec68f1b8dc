"""One measured process: 2 threads, its wall clock and peak RSS from ``/usr/bin/time -v``,
and how busy the machine was just before it ran."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import time
from pathlib import Path

THREADS = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}


def log(message: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[peer {stamp}] {message}", flush=True)


def busy_cores(seconds: float = 5.0) -> float:
    """Cores kept busy by other processes, sampled from /proc/stat while we run nothing
    (a load average would still count our own previous window)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all jiffies, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    busy = 1 - (idle1 - idle0) / max(total1 - total0, 1)
    return round(busy * (os.cpu_count() or 1), 2)


def gnu_time(path: Path) -> tuple[float | None, float | None]:
    """Wall seconds and peak RSS (MiB) from a ``/usr/bin/time -v`` report."""
    if not path.exists():
        return None, None
    text = path.read_text()
    wall = rss = None
    found = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    if found:
        parts = [float(x) for x in found.group(1).split(":")]
        wall = sum(v * 60**i for i, v in enumerate(reversed(parts)))
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if found:
        rss = int(found.group(1)) / 1024
    return wall, rss


def timed(command: list[str], report: Path, stdout: Path, env: dict[str, str]) -> int:
    """Run `command` under /usr/bin/time -v (report to `report`), output to `stdout`."""
    with stdout.open("w") as out:
        done = subprocess.run(
            ["/usr/bin/time", "-v", "-o", str(report), *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **THREADS, **env},
            check=False,
        )
    return done.returncode
