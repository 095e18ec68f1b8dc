"""Train a model from a YAML config (with --set overrides), or resume an interrupted run."""

from __future__ import annotations

import argparse

from attnmt.config import load_config
from attnmt.errors import UserError
from attnmt.train.trainer import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML file of config overrides")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one key"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in run_dir from its last checkpoint"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.set)
    if not config.data.train.given:  # e.g. a study preset, which holds only model keys
        raise UserError(
            f"{args.config} gives no training data: train it on the study task with "
            f"`attnmt compare {args.config} --out report/`, or on your data with "
            "--set data.train.src=FILE --set data.train.tgt=FILE (and data.dev)"
        )
    summary = train(config, resume=args.resume, progress_bar=False if args.no_progress else None)
    if summary.rank != 0:  # under torchrun, rank 0 reports for every process
        return 0
    dev = summary.best_dev
    print(
        f"stopped after {summary.steps} steps ({summary.stop_reason}), "
        f"{summary.elapsed / 60:.1f} min"
    )
    print(
        f"training speed: {summary.tgt_tokens_per_s:,.0f} target tokens/s, "
        f"{summary.parameters:,} parameters"
    )
    if dev:
        print(f"last dev: BLEU {dev['bleu']:.2f}, chrF {dev['chrf']:.2f}, ppl {dev['ppl']:.2f}")
    print(
        f"run directory: {summary.run_dir} "
        f"(best model: {summary.run_dir / 'checkpoints' / 'best.pt'})"
    )
    return 0
