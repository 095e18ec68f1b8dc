"""Average the last checkpoints of a run into one model.

    attnmt average runs/multi30k_de_en_transformer --last 5
    attnmt translate --model runs/multi30k_de_en_transformer --which averaged
    attnmt evaluate --model runs/multi30k_de_en_transformer --which averaged --src ... --ref ...

The weights of the last N step checkpoints (``checkpoints/step-*.pt``; a run keeps
``train.keep_last`` of them) are averaged element-wise, which usually scores better than
any one of them (Vaswani et al. 2017, 6.1). The result is written atomically to
``checkpoints/averaged.pt``, beside ``best.pt`` and never in its place, and is chosen with
``--which averaged`` (or ``--which PATH`` with ``--out PATH``). It works for every model
family: only the state dict is averaged. The averaged checkpoint keeps the run's header
(config, tokenizers, and the precision training chose, which decoding follows), with the
newest averaged step as its step and the steps it averaged.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attnmt.errors import UserError
from attnmt.io.checkpoint import AVERAGED, average_checkpoints, save_checkpoint, step_checkpoints


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("run", metavar="RUN_DIR", help="trained run directory")
    parser.add_argument(
        "--last", type=int, default=5, metavar="N", help="average the last N step checkpoints"
    )
    parser.add_argument(
        "--out", metavar="PATH", help=f"where to write it (default: RUN_DIR/checkpoints/{AVERAGED})"
    )


def average_run(run_dir: Path, last: int, out: Path | None = None) -> tuple[Path, list[int]]:
    """Average the `last` newest step checkpoints of `run_dir` into `out`; returns the
    path written and the steps averaged."""
    if last < 1:
        raise UserError(f"--last must be at least 1, got {last}")
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    found = step_checkpoints(run_dir)
    if len(found) < last:
        raise UserError(
            f"{run_dir} holds {len(found)} step checkpoint(s), fewer than --last {last}; "
            f"train with train.keep_last >= {last} to keep enough"
        )
    paths = found[-last:]
    out = out or run_dir / "checkpoints" / AVERAGED
    averaged = average_checkpoints(paths)
    save_checkpoint(out, averaged)
    return out, list(averaged.header.averaged_steps)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    path, steps = average_run(Path(args.run), args.last, out)
    which = "averaged" if out is None else str(path)
    print(f"averaged {len(steps)} checkpoints (steps {', '.join(map(str, steps))}) into {path}")
    print(f"use it with: attnmt translate --model {args.run} --which {which}")
    return 0
