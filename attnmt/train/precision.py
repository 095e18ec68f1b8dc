"""`train.precision: auto` on a CPU with native bf16: timed on the run's own batches.

A CPU flag is no guide to whether bf16 autocast trains faster, and neither is a
micro-benchmark: a small GRU-and-output-layer step can measure bf16 far faster than the
real training steps run, and on the CPU bf16 also costs peak memory (oneDNN keeps a
compiled bf16 kernel for every matmul shape it meets; see BENCHMARKS.md). So the trainer
times forward and backward passes of its own model on a few of its own batches in both
precisions. This module only measures; :func:`attnmt.device.training_precision` decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence, Sized

import numpy as np
import torch
from torch import nn

from attnmt.data.batching import Batch, make_batch
from attnmt.data.corpus import TokenizedCorpus
from attnmt.device import autocast

PROBE_BATCHES = 4
"""Batches the measurement runs in each precision: the first warms up, the rest are timed."""


def bf16_speedup_on_own_batches(
    parameters: Sequence[nn.Parameter],
    forward: Callable[..., torch.Tensor],
    corpus: TokenizedCorpus,
    epoch_batches: Sequence[np.ndarray],
) -> float:
    """:func:`measure_bf16_speedup` on `PROBE_BATCHES` typical batches of an epoch
    (`epoch_batches`: each batch's sentence indices into `corpus`)."""
    probe = [make_batch(corpus, epoch_batches[i].tolist()) for i in probe_batches(epoch_batches)]
    return measure_bf16_speedup(parameters, forward, probe)


def measure_bf16_speedup(
    parameters: Sequence[nn.Parameter],
    forward: Callable[..., torch.Tensor],
    batches: Sequence[Batch],
) -> float:
    """fp32 time over bf16-autocast time of forward and backward passes of `batches`,
    each batch once in each precision, alternated; the first batch is a warm-up and not
    timed. Distinct batches, as in training: every new shape makes oneDNN compile bf16
    kernels, a cost that timing one batch over and over would hide. `forward(src,
    src_lengths, tgt_in, tgt_out)` returns the loss sum of a model with `parameters`. The
    weights are not changed, their gradients are cleared after each pass and the random
    stream (dropout) is left as it was."""
    device = torch.device("cpu")

    def one_pass(batch: Batch, dtype: torch.dtype | None) -> float:
        start = time.perf_counter()
        with autocast(device, dtype):
            loss = forward(batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out)
        loss.backward()
        for parameter in parameters:
            parameter.grad = None
        return time.perf_counter() - start

    total = {None: 0.0, torch.bfloat16: 0.0}
    with torch.random.fork_rng(devices=[]):
        for k, batch in enumerate(batches):
            for dtype in total:
                seconds = one_pass(batch, dtype)
                total[dtype] += seconds if k else 0.0  # batch 0 is the warm-up
    return total[None] / max(total[torch.bfloat16], 1e-9)


def probe_batches(batches: Sequence[Sized], count: int = PROBE_BATCHES) -> list[int]:
    """Indices of `count` batches around the median sentence count: typical shapes, not
    the extremes."""
    order = sorted(range(len(batches)), key=lambda i: len(batches[i]))
    first = max(0, min(len(order) // 2 - count // 2, len(order) - count))
    return order[first : first + count]
