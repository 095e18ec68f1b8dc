"""Train or load several runs, evaluate them on one test set and write an HTML report.

    attnmt compare configs/study/*.yaml --out report/

A YAML config is trained (in its own process) unless <out>/runs/<config stem> already
holds a finished run; every config gets the same data, seed and time budget. A run
directory is evaluated as it is. The report (report.html, results.json, results.csv)
shows BLEU, chrF, perplexity, speed and memory, BLEU by source length, attention entropy
and monotonicity, heatmaps of three test sentences per run and the learning curves.
"""

from __future__ import annotations

import argparse
import functools
import shlex
from pathlib import Path

from attnmt.compare.orchestrate import CompareSettings, compare
from attnmt.compare.tasks import TASKS, multi30k_task
from attnmt.config import SplitPaths
from attnmt.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "inputs", nargs="+", metavar="CONFIG_OR_RUN_DIR", help="YAML configs and run directories"
    )
    parser.add_argument("--out", required=True, help="report folder (config runs go in OUT/runs)")
    parser.add_argument(
        "--data",
        choices=sorted(TASKS),
        default="synthetic",
        help="what configs train on: the synthetic study task (written to OUT/data) or "
        "Multi30k de->en (default: %(default)s)",
    )
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="training time per config (default: synthetic 10 as a cap on its 600 steps, "
        "multi30k 8)",
    )
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the Multi30k files are (default: data/multi30k, else ../shared/data/multi30k)",
    )
    parser.add_argument("--seed", type=int, default=1, help="train.seed of every config")
    parser.add_argument("--beam", type=int, default=1, help="beam size of the test decode")
    parser.add_argument("--test-src", help="test sources (default: the task's test split)")
    parser.add_argument("--test-ref", help="test references, line-aligned with --test-src")
    parser.add_argument("--device", default="cpu", help="where to evaluate: cpu, cuda or mps")


def command_line(args: argparse.Namespace) -> str:
    """The command with every option spelled out, as the report records it."""
    words = ["attnmt", "compare", *args.inputs, "--out", args.out, "--data", args.data]
    if args.minutes is not None:
        words += ["--minutes", f"{args.minutes:g}"]
    words += ["--seed", str(args.seed), "--beam", str(args.beam)]
    if args.test_src:
        words += ["--test-src", args.test_src, "--test-ref", args.test_ref]
    if args.device != "cpu":
        words += ["--device", args.device]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    if (args.test_src is None) != (args.test_ref is None):
        raise UserError("give --test-src and --test-ref together")
    if args.minutes is not None and args.minutes <= 0:
        raise UserError(f"--minutes must be positive, got {args.minutes:g}")
    if args.beam < 1:
        raise UserError(f"--beam must be at least 1, got {args.beam}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    test = SplitPaths(src=args.test_src, tgt=args.test_ref) if args.test_src else None
    task = TASKS[args.data]
    if args.data_dir is not None:
        if args.data != "multi30k":
            raise UserError("--data-dir names the Multi30k folder; use it with --data multi30k")
        task = functools.partial(multi30k_task, data_dir=Path(args.data_dir))
    settings = CompareSettings(
        inputs=list(args.inputs),
        out=out,
        task=task,
        seed=args.seed,
        minutes=args.minutes,
        beam=args.beam,
        test=test,
        device=args.device,
        command=command_line(args),
    )
    compare(settings)
    return 0
