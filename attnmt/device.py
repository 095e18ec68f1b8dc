"""Device, precision and thread choices."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from attnmt.errors import UserError


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` picks CUDA, then Apple MPS, then the CPU; an unavailable choice is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but CUDA is not available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("device 'mps' requested but MPS is not available")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """True on CPUs with AVX-512 BF16 or AMX, where bf16 matmuls are fast."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


BF16_MIN_SPEEDUP = 1.15
"""On the CPU, `auto` takes bf16 only when it measures at least this much faster than
fp32: bf16 rounds, and on the CPU it costs some memory (oneDNN keeps a compiled kernel
per matmul shape; :func:`fp32_on_cpu` keeps that to the output layer's few shapes)."""


def resolve_precision(
    precision: str, device: torch.device, measured: str | None = None
) -> torch.dtype | None:
    """The autocast dtype (None for plain fp32).

    `auto`: bf16 on CUDA devices that support it; on a CPU with native bf16, `measured`
    where a run recorded it ("bf16" or "fp32": what its training timed on its own
    batches, see :mod:`attnmt.train.precision`), else bf16 when :func:`cpu_bf16_speedup`
    measures it at least `BF16_MIN_SPEEDUP` times faster than fp32 on this machine, with
    these threads (a CPU flag alone is no guide: bf16 trained 2.1x faster on an AMD EPYC
    but 1.23x on an Intel Xeon with AMX, see BENCHMARKS.md);
    fp32 elsewhere.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and cpu_has_native_bf16():
        if measured is not None:
            return torch.bfloat16 if measured == "bf16" else None
        faster = cpu_bf16_speedup(torch.get_num_threads()) >= BF16_MIN_SPEEDUP
        return torch.bfloat16 if faster else None
    return None


def measured_on_cpu(precision: str, device: torch.device, world_size: int) -> bool:
    """Whether training measures the precision on its own batches
    (:mod:`attnmt.train.precision`): `auto`, one process, a CPU with native bf16.
    Elsewhere :func:`resolve_precision` decides (several processes must agree, which one
    measurement each would not ensure)."""
    return (
        precision == "auto" and device.type == "cpu" and world_size == 1 and cpu_has_native_bf16()
    )


@functools.cache
def cpu_bf16_speedup(threads: int) -> float:
    """fp32 time over bf16-autocast time of a small training step shaped like the
    reference model's decoder (a GRU 768->512 over 2 steps and a 512->8000 output layer
    with log-softmax, batch 64, forward and backward): about 0.2 s on an idle machine,
    once per process and thread count. The best of 3 alternated runs of each, so that a
    busy machine errs little. `threads` is the cache key; the measurement uses torch's
    current setting."""
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):  # leave the caller's random stream alone
        gru = torch.nn.GRU(768, 512, batch_first=True)
        output = torch.nn.Linear(512, 8000)
    inputs = torch.randn(64, 2, 768, generator=generator)
    targets = torch.randint(0, 8000, (64 * 2,), generator=generator)

    def step(dtype: torch.dtype | None) -> float:
        start = time.perf_counter()
        with autocast(torch.device("cpu"), dtype):
            hidden, _ = gru(inputs)
            logits = output(hidden)
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), targets)
        loss.backward()
        return time.perf_counter() - start

    step(None), step(torch.bfloat16)  # warm-up: first calls pick kernels and allocate
    best = {"fp32": math.inf, "bf16": math.inf}
    for _ in range(3):
        best["fp32"] = min(best["fp32"], step(None))
        best["bf16"] = min(best["bf16"], step(torch.bfloat16))
    return best["fp32"] / best["bf16"]


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """torch.autocast for `dtype`, or nothing for fp32."""
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


@contextlib.contextmanager
def fp32_on_cpu() -> Iterator[None]:
    """Switch CPU autocast off inside: the model's encoder and decoder run in fp32 on the
    CPU, so that under `autocast` only the output layer runs in bf16.

    oneDNN compiles and caches a bf16 kernel for every matmul shape it meets, and an
    encoder and decoder meet new shapes with every batch (batch size, lengths, and in a
    packed RNN every step's count of unfinished sentences): on an Intel Xeon with AMX
    training the reference model reached 1,921 MiB peak RSS in 160 steps with bf16
    everywhere, against 1,570 in fp32 and 1,664 with bf16 in the output layer only, which
    trained as fast (4,838 against 4,785 target tokens/s; BENCHMARKS.md, "Issue 11, second
    pass"). The output layer, a quarter to a half of a step, runs in a
    few fixed shapes (:func:`attnmt.train.loss.pad_rows`). CUDA autocast is unaffected.
    """
    if torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            yield
    else:
        yield
