"""Data-parallel training on the CPU: 2 torchrun processes (gloo) against 1, the quickstart
model and task, the same number of steps; training speed in target tokens/s (all ranks
together), appended to BENCHMARKS.md.

    nice -n 10 python -m benchmarks.ddp                 # 300 steps per run
    python -m benchmarks.ddp --steps 50 --no-record     # a quick look

Three runs, each started as ``torchrun --standalone --nproc_per_node=N -m attnmt train``
with one torch thread per process:

- 1 process, a batch of `train.batch_tokens` (3,000);
- 2 processes with half that batch each: the same global batch, so the same training;
- 2 processes with the whole batch each: twice the tokens per step.

On a machine with fewer free cores than processes this measures the cost of the
correctness path (collectives, a barrier per validation), not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from attnmt.cli.quickstart import quickstart_config
from attnmt.config import save_config
from attnmt.data.synthetic import write_task
from benchmarks import common

TORCHRUN = Path(sys.executable).parent / "torchrun"


def train_once(work: Path, name: str, processes: int, batch_tokens: int, steps: int) -> dict:  # type: ignore[type-arg]
    """One torchrun run; returns its speed, wall time and final dev scores."""
    run_dir = work / name
    config = quickstart_config(run_dir, minutes=60)
    train = config.train.model_copy(
        update={
            "max_minutes": None,
            "max_steps": steps,
            "batch_tokens": batch_tokens,
            "validate_every": steps,  # one validation, at the end
            "log_every": max(1, steps // 12),
            "threads": 1,
            "dev_max_sentences": 200,
        }
    )
    config = _point_at(config.model_copy(update={"train": train}), work / "task")
    save_config(config, work / f"{name}.yaml")
    command = [
        str(TORCHRUN),
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "attnmt",
        "train",
        str(work / f"{name}.yaml"),
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode:
        raise SystemExit(result.stdout[-2000:] + result.stderr[-3000:])
    entries = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    speeds = [e["tgt_tokens_per_s"] for e in entries if e["split"] == "train"][1:]  # warm
    dev = [e for e in entries if e["split"] == "dev"][-1]
    return {"speed": statistics.median(speeds), "wall": wall, "bleu": dev["bleu"]}


def _point_at(config, task: Path):  # type: ignore[no-untyped-def]
    """The config with its data splits in `task` (quickstart_config puts them in run_dir)."""
    data = config.data.model_dump()
    for split in ("train", "dev", "test"):
        data[split] = {"src": str(task / f"{split}.src"), "tgt": str(task / f"{split}.tgt")}
    return config.model_validate({**config.model_dump(), "data": data})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--work", type=Path, default=Path("runs/bench/ddp"))
    parser.add_argument("--no-record", action="store_true", help="print, do not append")
    args = parser.parse_args()
    work = args.work.resolve()
    if work.exists() and any(work.glob("*/checkpoints")):
        raise SystemExit(f"{work} holds runs of an earlier benchmark; remove it first")
    (work / "task").mkdir(parents=True, exist_ok=True)
    write_task(work / "task")

    runs = [
        ("one", 1, 3000, "1 process, batch 3,000 tokens"),
        ("two-same-global", 2, 1500, "2 processes x 1,500 tokens (same global batch)"),
        ("two-double", 2, 3000, "2 processes x 3,000 tokens (twice the global batch)"),
    ]
    rows = []
    for name, processes, batch_tokens, label in runs:
        result = train_once(work, name, processes, batch_tokens, args.steps)
        print(label, result, flush=True)
        rows.append(
            (
                label,
                f"{result['speed']:,.0f} target tokens/s; {args.steps} steps in "
                f"{result['wall']:.0f} s wall (startup included); dev BLEU {result['bleu']:.1f}",
            )
        )
    notes = (
        "Speeds are the median of the logged windows after the first, all ranks' target "
        "tokens together. The 2 cores were shared with other jobs; runs under `nice -n 10`, "
        "one torch thread per process."
    )
    if args.no_record:
        print(rows)
    else:
        common.append("DDP on the CPU: 2 torchrun processes against 1", rows, notes)


if __name__ == "__main__":
    main()
