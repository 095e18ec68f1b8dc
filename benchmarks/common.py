"""What every benchmark records: the machine, the commit, the command, and the results,
appended to BENCHMARKS.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"


SPLITS = {"train": "train", "dev": "val", "test": "test_2016_flickr"}  # Multi30k file stems


def multi30k_overrides(data: Path) -> list[str]:
    """``--set`` overrides pointing data.train/dev/test at Multi30k de->en in `data`."""
    overrides = []
    for split, name in SPLITS.items():
        overrides += [
            f"data.{split}.src={data / f'{name}.de.gz'}",
            f"data.{split}.tgt={data / f'{name}.en.gz'}",
        ]
    return overrides


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return (
        f"{cpu}, {os.cpu_count()} cores visible, {threads} torch threads; "
        f"Python {platform.python_version()}, torch {torch.__version__}"
    )


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def ratio_row(label: str, values: list[float], baseline: list[float]) -> tuple[str, str]:
    """A BENCHMARKS.md row for paired rounds: the median of each round's values/baseline
    ratio, and their range. Pairing by round cancels the machine's drift between rounds."""
    ratios = [value / base for value, base in zip(values, baseline, strict=True)]
    median = statistics.median(ratios)
    return f"{label}: median of the rounds' ratios (range)", (
        f"{median:.3f} ({min(ratios):.2f}–{max(ratios):.2f})"
    )


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def command_line() -> str:
    script = Path(sys.argv[0])  # a package's __main__.py is run as the package
    module = script.parent.name if script.name == "__main__.py" else script.stem
    return " ".join(["python -m", f"benchmarks.{module}", *sys.argv[1:]])


def append(title: str, rows: list[tuple[str, str]], notes: str = "") -> None:
    """Append one result section to BENCHMARKS.md."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n## {title}\n",
        f"- command: `{command_line()}`",
        f"- machine: {machine()}",
        f"- date: {now}",
        f"- commit: {commit()}",
        "",
        "| measure | value |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in rows],
    ]
    if notes:
        lines += ["", notes]
    if not BENCHMARKS.exists():
        BENCHMARKS.write_text("# Benchmarks\n\nResults appended by the scripts in `benchmarks/`.\n")
    with BENCHMARKS.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))
