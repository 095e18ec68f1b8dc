"""Device and precision choices: where a run computes, and whether in fp32 or bf16
autocast (:func:`training_precision` for training, :func:`resolve_precision` for a
resumed or loaded run)."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

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


# ---------------------------------------------------------------------------
# Precision: the one place that decides fp32 or bf16 autocast, for training, for a
# resumed run and for a loaded run.

Precision = Literal["fp32", "bf16"]
"""What a run trained in, as its checkpoint header records it."""

BF16_MIN_SPEEDUP = 1.15
"""On the CPU, `auto` takes bf16 only when it measures at least this much faster than
fp32: bf16 rounds, and on the CPU it costs some memory (oneDNN keeps a compiled kernel
per matmul shape; :func:`fp32_on_cpu` keeps that to the output layer's few shapes)."""


def precision_name(dtype: torch.dtype | None) -> Precision:
    """The name a checkpoint records for an autocast dtype (None is fp32)."""
    return "fp32" if dtype is None else "bf16"


def resolve_precision(
    precision: str, device: torch.device, recorded: Precision | None = None
) -> torch.dtype | None:
    """The autocast dtype (None for plain fp32) of a loaded or resumed run, and of a
    training run that does not time its own batches (see :func:`training_precision`).

    `fp32` and `bf16` are taken as they are. `auto`:

    - CUDA: bf16 where the GPU supports it, else fp32;
    - a CPU with native bf16: `recorded` where the run's checkpoint has it (what its
      training timed on its own batches), else bf16 when :func:`cpu_bf16_speedup`
      measures it at least `BF16_MIN_SPEEDUP` times faster than fp32 on this machine,
      with these threads (a CPU flag alone is no guide, see BENCHMARKS.md);
    - elsewhere (MPS, CPUs without native bf16): fp32.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu" and cpu_has_native_bf16():
        if recorded is not None:
            return torch.bfloat16 if recorded == "bf16" else None
        faster = cpu_bf16_speedup(torch.get_num_threads()) >= BF16_MIN_SPEEDUP
        return torch.bfloat16 if faster else None
    return None


PRECISIONS = ("auto", "fp32", "bf16")
"""What ``--precision`` of translate, evaluate, serve and chat accepts."""


def loading_precision(
    precision: str,
    device: torch.device,
    configured: str,
    recorded: Precision | None,
    int8: bool = False,
) -> torch.dtype | None:
    """The autocast dtype of a loaded run: what ``--precision`` asks, through
    :func:`resolve_precision`.

    - `auto` keeps what the run was configured with (`configured`, its
      ``train.precision``) and, for `auto` there, what training `recorded`: today's
      behaviour, fp32 on a CPU without native bf16;
    - `fp32` is plain fp32;
    - `bf16` is bf16 autocast, refused in one line on a CPU without native bf16
      (:func:`cpu_has_native_bf16`): there torch emulates bf16 matmuls, slower than fp32
      and less exact, so it is never what a user who asks for speed wants;
    - an `int8` model computes in fp32 (its weights are int8, its activations fp32):
      `auto` and `fp32` give fp32, `bf16` is refused.
    """
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if int8:
        if precision == "bf16":
            raise UserError("--precision bf16: an int8 model computes in fp32 (use auto or fp32)")
        return None
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        raise UserError(
            "--precision bf16: this CPU has no native bf16 (avx512_bf16 or amx_bf16), "
            "where bf16 is emulated and slower than fp32 (use auto or fp32)"
        )
    return resolve_precision(configured if precision == "auto" else precision, device, recorded)


def training_precision(
    precision: str,
    device: torch.device,
    world_size: int,
    recorded: Precision | None,
    time_own_batches: Callable[[], float],
    log: Callable[[str], None],
) -> torch.dtype | None:
    """The autocast dtype of a training run; `recorded` is what the checkpoint it
    resumes from recorded (None for a new run).

    A new one-process run with `auto` on a CPU with native bf16 calls
    `time_own_batches()` (fp32 time over bf16 time of its own model on its own batches,
    :mod:`attnmt.train.precision`), takes bf16 when that is at least `BF16_MIN_SPEEDUP`
    and says which, and why, in one line. Every other run goes by
    :func:`resolve_precision`: a resumed run keeps what it recorded, and several
    processes do not time their own batches (one measurement each might disagree).
    """
    times_own = precision == "auto" and device.type == "cpu" and world_size == 1
    if recorded is not None or not times_own or not cpu_has_native_bf16():
        return resolve_precision(precision, device, recorded)
    speedup = time_own_batches()
    chosen = torch.bfloat16 if speedup >= BF16_MIN_SPEEDUP else None
    log(
        f"precision auto: bf16 autocast trained {speedup:.2f}x as fast as fp32 "
        f"on this machine (bf16 needs {BF16_MIN_SPEEDUP}x): {precision_name(chosen)}"
    )
    return chosen


@functools.cache
def cpu_bf16_speedup(threads: int) -> float:
    """fp32 time over bf16-autocast time of a small training step shaped like the
    reference model's decoder (a GRU 768->512 over 2 steps and a 512->8000 output layer
    with log-softmax, batch 64, forward and backward): a fraction of a second, once per
    process and thread count. The best of 3 alternated runs of each, so that a
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
    packed RNN every step's count of unfinished sentences), so bf16 everywhere makes the
    peak memory grow while training no faster than bf16 in the output layer alone
    (BENCHMARKS.md, "Issue 11, second pass"). The output layer, a large part of a step,
    runs in a few fixed shapes (:func:`attnmt.train.loss.pad_rows`). CUDA autocast is
    unaffected.
    """
    if torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            yield
    else:
        yield
