"""Training steps of several configurations, alternated in one process on the same data:
target tokens/s of each, and each one's ratio to the first. For deciding whether a change
to a model or a preset trains faster (issue 24: keep a change only if a same-run
comparison shows it faster), in minutes rather than the 30 of a full run.

    python -m benchmarks.steps                      # the Transformer preset vs luong_concat
    python -m benchmarks.steps rnn=configs/multi30k_de_en_luong_concat.yaml \\
        transformer=configs/multi30k_de_en_transformer.yaml \\
        compiled=configs/multi30k_de_en_transformer.yaml,train.compile=true

Each configuration is ``NAME=PRESET[,key=value...]``. Each gets a Trainer (its own
tokenizers and batches of train.batch_tokens, prepared once under ``--work``), then
``--warmup`` steps, then ``--rounds`` rounds of ``--steps`` optimizer steps each,
configurations taking turns within a round, so that the machine's drift falls on all of
them alike. Steps are whole training steps as ``attnmt train`` runs them (forward, loss,
backward, clipping, optimizer), on consecutive batches of each one's shuffled epoch;
target tokens count EOS, not padding, as the trainer's tokens/s does. The figure is the
median over rounds of each round's tokens/s, and of its ratio to the first configuration
in the same round. Nothing else may run meanwhile. Appends to BENCHMARKS.md unless
``--no-record``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks import common

DEFAULTS = [
    "rnn=configs/multi30k_de_en_luong_concat.yaml",
    "transformer=configs/multi30k_de_en_transformer.yaml",
]
DATA = common.ROOT.parent / "shared/data/multi30k"


def parse(spec: str) -> tuple[str, str, list[str]]:
    """``NAME=PRESET[,key=value...]`` -> (name, preset, overrides)."""
    name, _, rest = spec.partition("=")
    preset, *overrides = rest.split(",")
    if not name or not preset:
        raise SystemExit(f"steps: {spec!r} is not NAME=PRESET[,key=value...]")
    return name, preset, overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", default=DEFAULTS, help="NAME=PRESET[,k=v...]")
    parser.add_argument("--steps", type=int, default=10, help="steps per round and config")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/attnmt_steps"))
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--note", default="")
    args = parser.parse_args()

    import torch

    from attnmt.config import load_config
    from attnmt.data.batching import make_batch
    from attnmt.train.trainer import Trainer

    torch.set_num_threads(args.threads)
    trainers, batches = {}, {}
    for spec in args.configs:
        name, preset, overrides = parse(spec)
        overrides += [
            f"run_dir={args.work / name}",
            f"train.threads={args.threads}",
            *common.multi30k_overrides(args.data),
        ]
        config = load_config(preset, overrides)
        trainer = Trainer.setup(config, progress_bar=False, log=lambda _: None)
        trainers[name] = trainer
        batches[name] = iter(trainer.sampler)
    names = list(trainers)

    def run_steps(name: str, count: int) -> tuple[float, int]:
        trainer, seconds, tokens = trainers[name], 0.0, 0
        for _ in range(count):
            indices = next(batches[name], None)
            if indices is None:  # a new epoch
                batches[name] = iter(trainer.sampler)
                indices = next(batches[name])
            batch = make_batch(trainer.data.train, indices)
            start = time.perf_counter()
            tokens += trainer._train_step(batch)[1]
            seconds += time.perf_counter() - start
        return seconds, tokens

    for name in names:
        run_steps(name, args.warmup)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names:
            seconds, tokens = run_steps(name, args.steps)
            rates[name].append(tokens / seconds)
        print(f"round {round_ + 1}: " + ", ".join(f"{n} {rates[n][-1]:,.0f}" for n in names))
    rows = []
    first = names[0]
    for name in names:
        trainer = trainers[name]
        precision = str(trainer.dtype).replace("torch.", "") if trainer.dtype else "float32"
        rows.append(
            (
                f"{name}: target tokens/s (median; {precision})",
                f"{statistics.median(rates[name]):,.0f}",
            )
        )
        if name != first:
            rows.append(common.ratio_row(f"{name} / {first}", rates[name], rates[first]))
    for row in rows:
        print(" | ".join(row))
    if not args.no_record:
        notes = (
            f"{args.note} Configurations: {'; '.join(args.configs)}. {args.rounds} rounds of "
            f"{args.steps} steps each after {args.warmup} warm-up steps, {args.threads} threads."
        ).strip()
        common.append("Training steps, alternated in one process", rows, notes)


if __name__ == "__main__":
    main()
