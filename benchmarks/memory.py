"""Peak memory of training the reference model for a fixed number of steps, with and
without remedies for allocator growth, each variant in a fresh process.

    python -m benchmarks.memory --steps 80                     # plain, pad8
    python -m benchmarks.memory --steps 80 --variants plain pad8 pad16 trim

Variants: ``plain`` (batches padded to their longest sentence; the trainer as it runs:
the output layer and loss fused in chunks of target positions, the concat score one
autograd function), ``unchunked`` (the output layer and loss over the whole batch at
once), ``unfused`` (that, and the concat score as plain tensor operations, which keep
its tanh for backward: the trainer before both), ``padK`` (source and target lengths
rounded up to multiples of K by ``make_batch``), ``trim`` (glibc ``malloc_trim(0)``
after every step), ``mmapM`` (glibc ``mallopt(M_MMAP_THRESHOLD, M MiB)``: a fixed
threshold, so freed blocks above M MiB go back to the system at once), ``tight`` (one
arena, trim threshold 0, mmap threshold 128 KiB: freed memory goes back at once, so the
peak is close to the live peak; slow).
A suffix ``@fp32`` or ``@bf16`` fixes the precision (else ``auto``, decided in each process).
The same batches in the same order for each (the sampler's seed), so only the remedy
differs. Peak RSS does not depend on other load on the machine; the seconds do, so
compare them only between variants of one run.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from attnmt.config import load_config
from attnmt.data.batching import Batch, make_batch
from attnmt.data.corpus import TokenizedCorpus
from attnmt.special import PAD_ID
from benchmarks import common

DATA = common.ROOT.parent / "shared/data/multi30k"
CONFIG = common.ROOT / "configs/multi30k_de_en_bahdanau.yaml"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # glibc mallopt parameters


def padded_batch(corpus: TokenizedCorpus, indices: Sequence[int], multiple: int) -> Batch:
    """`make_batch` with S and T rounded up to multiples of `multiple` (the ``padK``
    variant): fewer distinct tensor shapes for more PAD columns, nothing else changed."""
    batch = make_batch(corpus, indices)

    def pad(ids: torch.Tensor) -> torch.Tensor:  # (B, L) -> (B, L rounded up)
        width = -(-ids.size(1) // multiple) * multiple
        return torch.nn.functional.pad(ids, (0, width - ids.size(1)), value=PAD_ID)

    return Batch(
        pad(batch.src), batch.src_lengths, pad(batch.tgt_in), pad(batch.tgt_out), batch.indices
    )


def vm_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(
    variant: str, steps: int, run_dir: str, data: Path, threads: int, config_path: Path
) -> dict[str, float]:
    """Train `steps` steps with `variant`; what the parent records."""
    import attnmt.train.trainer as trainer_module
    from attnmt.train.setup import prepare_data

    overrides = [f"run_dir={run_dir}", f"train.threads={threads}", "train.validate_every=1000000"]
    variant, _, precision = variant.partition("@")  # e.g. plain@fp32: a fixed precision
    if precision:
        overrides.append(f"train.precision={precision}")
    overrides += common.multi30k_overrides(data)
    config = load_config(str(config_path), overrides)
    training = prepare_data(config, lambda message: None)  # tokenizers cached in run_dir
    if variant.startswith("pad"):
        multiple = int(variant[3:])
        trainer_module.make_batch = functools.partial(padded_batch, multiple=multiple)  # type: ignore[assignment]
    trainer = trainer_module.Trainer(config, training, None, [], lambda message: None)
    if variant in ("unchunked", "unfused"):  # the output layer and loss over the whole batch
        trainer.forward.chunked = False
    if variant == "unfused":  # and the concat score as plain tensor operations
        import attnmt.nn.scores as scores_module
        from attnmt.nn.additive import additive_scores_plain

        scores_module.additive_scores = additive_scores_plain  # type: ignore[assignment]
    if variant.startswith("mmap"):  # fixed threshold: blocks above it go back when freed
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, int(variant[4:]) << 20)
    if variant == "tight":  # return everything at once: about the live peak, and slow
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_ARENA_MAX, 1), libc.mallopt(M_TRIM_THRESHOLD, 0)
        libc.mallopt(M_MMAP_THRESHOLD, 128 << 10)
    if variant.startswith("trim"):  # trim: after every step; trimN: after every N steps
        libc = ctypes.CDLL("libc.so.6")
        original, every, done = trainer._train_step, int(variant[4:] or 1), [0]

        def trimmed(batch):  # type: ignore[no-untyped-def]
            result = original(batch)
            done[0] += 1
            if done[0] % every == 0:
                libc.malloc_trim(0)
            return result

        trainer._train_step = trimmed  # type: ignore[method-assign]
    start, cpu_start = time.perf_counter(), time.process_time()
    summary = trainer.run(until_step=steps)
    return {
        "seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - cpu_start,  # steadier than wall on a busy host
        "tgt_tokens_per_s": summary.tgt_tokens_per_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "end_rss_mb": vm_rss_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--variants", nargs="+", default=["plain", "pad8"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--config", default=str(CONFIG), help="the model (default: %(default)s)")
    parser.add_argument("--run-dir", default="/tmp/attnmt_memory")
    parser.add_argument("--no-record", action="store_true", help="print, do not append")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        torch.set_num_threads(args.threads)
        result = child(
            args.child, args.steps, args.run_dir, Path(args.data), args.threads, Path(args.config)
        )
        print("RESULT " + json.dumps(result))
        return
    rows = []
    for variant in args.variants:
        command = [sys.executable, "-m", "benchmarks.memory", "--child", variant]
        command += ["--steps", str(args.steps), "--threads", str(args.threads)]
        command += ["--data", args.data, "--run-dir", args.run_dir, "--config", args.config]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        result = json.loads(out.split("RESULT ", 1)[1])
        print(variant, result, flush=True)
        rows += [
            (
                f"{variant}: peak / end RSS",
                f"{result['peak_rss_mb']:,.0f} / {result['end_rss_mb']:,.0f} MB",
            ),
            (
                f"{variant}: seconds (wall / CPU), target tokens/s",
                f"{result['seconds']:.1f} / {result.get('cpu_seconds', float('nan')):.1f}, "
                f"{result['tgt_tokens_per_s']:,.0f}",
            ),
        ]
    model = "the reference model" if Path(args.config) == CONFIG else Path(args.config).name
    title = f"Memory: {args.steps} training steps of {model}, {args.threads} threads"
    if args.no_record:
        print("\n".join(f"{name}: {value}" for name, value in rows))
    else:
        common.append(title, rows)


if __name__ == "__main__":
    main()
