"""The GPU path: train every Multi30k preset on one CUDA device (bf16 autocast, pinned
memory, non-blocking copies) and record training target tokens/s, decoding sentences/s
(greedy and beam 5) and the time to the dev BLEU plateau; then torch.compile on and off
for a fixed number of steps. Results are appended to BENCHMARKS.md and written to
--out (for a lent machine, whose working tree is a copy).

    python -m benchmarks.gpu --data data/multi30k --minutes 20 --out $OUT
    python -m benchmarks.gpu --presets multi30k_de_en_luong.yaml --minutes 5 --no-compile
    python -m benchmarks.gpu --presets multi30k_de_en_luong.yaml --no-train   # compile only

Every preset named ``multi30k_*.yaml`` in attnmt/presets is run (RNN presets today; a
Transformer preset joins by being added there). The data folder holds Multi30k task 1
as ``attnmt data multi30k`` writes it (train/val/test_2016_flickr .de.gz/.en.gz); the
device machine cannot download, so carry it there.

The dev BLEU plateau is the earliest validation whose BLEU is within --plateau (0.5) of
the best of the run; its time is wall time since the start of training, validation
included.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from attnmt.config import Config, decode_options, load_config
from attnmt.data.batching import BatchSampler, make_batch
from attnmt.evaluate.evaluation import evaluate_split
from attnmt.io.run import Run
from attnmt.train.trainer import Trainer
from benchmarks import common

PRESETS = Path(common.ROOT / "attnmt" / "presets")


def preset_config(
    preset: Path, args: argparse.Namespace, run_dir: Path, minutes: float, **train: Any
) -> Config:
    """The preset on the device with the data of `args` and a time budget."""
    data: Path = args.data
    overrides = [f"run_dir={run_dir}", f"train.device={args.device}"]
    overrides.append(f"train.max_minutes={minutes}")
    overrides += [f"train.{key}={value}" for key, value in train.items()]
    overrides += common.multi30k_overrides(data)
    return load_config(preset, overrides)


def plateau(run_dir: Path, tolerance: float) -> tuple[float, float, int]:
    """(minutes to the plateau, best dev BLEU, step of the plateau) from metrics.jsonl."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    dev = [entry for entry in map(json.loads, lines) if entry["split"] == "dev"]
    best = max(entry["bleu"] for entry in dev)
    first = next(entry for entry in dev if entry["bleu"] >= best - tolerance)
    return first["time"] / 60, best, first["step"]


def train_preset(preset: Path, args: argparse.Namespace, stamp: str) -> list[tuple[str, str]]:
    run_dir = args.work / f"{preset.stem}-{stamp}"
    config = preset_config(preset, args, run_dir, args.minutes)
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    summary = Trainer.setup(config, progress_bar=False).run()
    minutes, best, step = plateau(run_dir, args.plateau)
    rows = [
        (f"{preset.stem}: training", f"{summary.steps} steps, {summary.elapsed / 60:.1f} min"),
        (f"{preset.stem}: training target tokens/s", f"{summary.tgt_tokens_per_s:,.0f}"),
        (
            f"{preset.stem}: dev BLEU plateau",
            f"{minutes:.1f} min (step {step}) to within {args.plateau} of the best, {best:.2f}",
        ),
    ]
    if args.device == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**30
        rows.append((f"{preset.stem}: peak GPU memory", f"{peak:.1f} GiB"))
    run = Run.load(run_dir, device=args.device)
    for beam in (1, 5):
        evaluation = evaluate_split(
            run, run.config.data.test, decode_options(run.config.decode, {"beam": beam}), loss=False
        )
        rate = len(evaluation.translations) / evaluation.decode_seconds
        label = "greedy" if beam == 1 else f"beam {beam}"
        rows.append(
            (
                f"{preset.stem}: test_2016_flickr, {label}",
                f"{rate:,.0f} sentences/s, BLEU {evaluation.scores['bleu']:.2f}",
            )
        )
    return rows


def compile_speed(preset: Path, args: argparse.Namespace, stamp: str) -> list[tuple[str, str]]:
    """Training tokens/s with and without torch.compile over the same batches; the
    first steps (compilation, warm-up) are not timed."""
    rows = []
    for compiled in (False, True):
        run_dir = args.work / f"compile-{compiled}-{preset.stem}-{stamp}"
        trained = args.work / f"{preset.stem}-{stamp}" / "tokenizer"
        if trained.is_dir():  # the tokenizers of the training run: no need to learn them again
            shutil.copytree(trained, run_dir / "tokenizer")
        config = preset_config(preset, args, run_dir, 60, compile=compiled)
        trainer = Trainer.setup(config, progress_bar=False, log=lambda _: None)
        sampler = BatchSampler(
            trainer.data.train.src_lengths,
            trainer.data.train.tgt_lengths,
            config.train.batch_tokens,
            shuffle=True,
            seed=0,
        )
        batches = [make_batch(trainer.data.train, b) for b in list(sampler)[: args.compile_steps]]
        warm = batches[: args.compile_steps // 4]
        started = time.perf_counter()
        for batch in warm:
            trainer._train_step(batch)
        synchronize(args.device)
        warmup = time.perf_counter() - started
        tokens = 0
        started = time.perf_counter()
        for batch in batches[len(warm) :]:
            tokens += trainer._train_step(batch)[1]
        synchronize(args.device)
        rate = tokens / (time.perf_counter() - started)
        label = "torch.compile" if compiled else "eager"
        rows.append(
            (
                f"{preset.stem}: {label}",
                f"{rate:,.0f} target tokens/s over {len(batches) - len(warm)} steps "
                f"(first {len(warm)} steps, compilation included: {warmup:.0f} s)",
            )
        )
    return rows


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work, so that the clock measures it."""
    if device == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/multi30k"))
    parser.add_argument("--presets", nargs="*", help="preset file names (default: multi30k_*)")
    parser.add_argument("--minutes", type=float, default=20.0, help="training budget per preset")
    parser.add_argument("--plateau", type=float, default=0.5, help="BLEU within the best")
    parser.add_argument("--compile-steps", type=int, default=400)
    parser.add_argument("--no-compile", action="store_true", help="skip the compile comparison")
    parser.add_argument("--no-train", action="store_true", help="only the compile comparison")
    parser.add_argument("--work", type=Path, default=Path("runs/bench/gpu"))
    parser.add_argument("--out", type=Path, help="also write results.md and results.json here")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script itself")
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("benchmarks.gpu needs a CUDA device (none is visible)")
    if not (args.data / "train.de.gz").is_file():
        raise SystemExit(f"no Multi30k in {args.data}: run `attnmt data multi30k` or pass --data")
    names = args.presets or sorted(p.name for p in PRESETS.glob("multi30k_*.yaml"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    device = torch.cuda.get_device_name() if args.device == "cuda" else args.device
    rows = [("device", device)]
    for name in names:
        if not args.no_train:
            rows += train_preset(PRESETS / name, args, stamp)
        if not args.no_compile:
            rows += compile_speed(PRESETS / name, args, stamp)
        print("\n".join(f"{k}: {v}" for k, v in rows), flush=True)
    notes = (
        "bf16 autocast (train.precision auto), batches copied through pinned memory with "
        "non-blocking transfers. The plateau is the earliest validation within "
        f"{args.plateau} BLEU of the run's best."
    )
    if not args.no_record:
        common.append(f"GPU: Multi30k presets, {args.minutes:g} min each", rows, notes)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(dict(rows), indent=2))
        (args.out / "results.md").write_text("".join(f"| {k} | {v} |\n" for k, v in rows))


if __name__ == "__main__":
    main()
