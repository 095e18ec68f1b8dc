"""`train.precision: auto` on a CPU with native bf16: measured on the run's own batches.

A CPU flag is no guide to whether bf16 autocast trains faster, and neither is a
micro-benchmark: on an Intel Xeon with AMX a small GRU-and-output-layer step measured bf16
1.7x to 4x faster than fp32 while the reference model's real training steps were 1.16x
faster, and that 1.16x cost 1.48x the peak memory (oneDNN keeps a compiled bf16 kernel
for every matmul shape it meets; see BENCHMARKS.md). So the trainer times forward and
backward passes of its own model on a few of its own batches in both precisions and takes
bf16 only when it is at least `BF16_MIN_SPEEDUP` times as fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence, Sized

import torch
from torch import nn

from attnmt.data.batching import Batch
from attnmt.device import BF16_MIN_SPEEDUP, autocast

PROBE_BATCHES = 4
"""Batches the measurement runs in each precision: the first warms up, the rest are timed."""


def measure_bf16_speedup(
    model: nn.Module, forward: Callable[..., torch.Tensor], batches: Sequence[Batch]
) -> float:
    """fp32 time over bf16-autocast time of forward and backward passes of `batches`,
    each batch once in each precision, alternated; the first batch is a warm-up and not
    timed. Distinct batches, as in training: every new shape makes oneDNN compile bf16
    kernels, a cost that timing one batch over and over would hide (it measured 1.46x on
    the Intel Xeon where training ran 1.16x faster). `forward(src, src_lengths, tgt_in,
    tgt_out)` returns the loss sum. The weights are not changed, the gradients are cleared
    afterwards and the random stream (dropout) is left as it was."""
    device = torch.device("cpu")

    def one_pass(batch: Batch, dtype: torch.dtype | None) -> float:
        start = time.perf_counter()
        with autocast(device, dtype):
            loss = forward(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    total = {None: 0.0, torch.bfloat16: 0.0}
    with torch.random.fork_rng(devices=[]):
        for k, batch in enumerate(batches):
            for dtype in total:
                seconds = one_pass(batch, dtype)
                total[dtype] += seconds if k else 0.0  # batch 0 is the warm-up
    return total[None] / max(total[torch.bfloat16], 1e-9)


def choose_training_dtype(
    model: nn.Module,
    forward: Callable[..., torch.Tensor],
    batches: Sequence[Batch],
    log: Callable[[str], None],
) -> torch.dtype | None:
    """bf16 when :func:`measure_bf16_speedup` is at least `BF16_MIN_SPEEDUP`, else fp32
    (None); says which, and why, in one line."""
    speedup = measure_bf16_speedup(model, forward, batches)
    chosen = torch.bfloat16 if speedup >= BF16_MIN_SPEEDUP else None
    log(
        f"precision auto: bf16 autocast trained {speedup:.2f}x as fast as fp32 "
        f"on this machine (bf16 needs {BF16_MIN_SPEEDUP}x): "
        f"{'bf16' if chosen is not None else 'fp32'}"
    )
    return chosen


def probe_batches(batches: Sequence[Sized], count: int = PROBE_BATCHES) -> list[int]:
    """Indices of `count` batches around the median sentence count: typical shapes, not
    the extremes."""
    order = sorted(range(len(batches)), key=lambda i: len(batches[i]))
    first = max(0, min(len(order) // 2 - count // 2, len(order) - count))
    return order[first : first + count]
