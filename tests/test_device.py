"""`precision: auto` on the CPU follows a measurement on the machine, not a CPU flag."""

from __future__ import annotations

import pytest
import torch

from attnmt import device
from attnmt.device import BF16_MIN_SPEEDUP, resolve_precision

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("native", "speedup", "expected"),
    [
        (True, 2.1, torch.bfloat16),  # the AMD EPYC's ratio
        (True, BF16_MIN_SPEEDUP, torch.bfloat16),
        (True, 1.0, None),  # bf16 no faster: keep fp32's accuracy
        (False, 5.0, None),  # no native bf16: emulated, never measured
    ],
)
def test_auto_on_cpu_follows_the_measured_speedup(
    monkeypatch: pytest.MonkeyPatch, native: bool, speedup: float, expected: torch.dtype | None
) -> None:
    measured: list[int] = []
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(
        device, "cpu_bf16_speedup", lambda threads: measured.append(threads) or speedup
    )
    assert resolve_precision("auto", CPU) == expected
    assert measured == ([torch.get_num_threads()] if native else [])


def test_explicit_precision_is_never_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "cpu_bf16_speedup", lambda threads: pytest.fail("measured"))
    assert resolve_precision("fp32", CPU) is None
    assert resolve_precision("bf16", CPU) == torch.bfloat16


def test_speedup_is_measured_once_and_leaves_the_random_stream_alone() -> None:
    device.cpu_bf16_speedup.cache_clear()
    torch.manual_seed(3)
    first = device.cpu_bf16_speedup(torch.get_num_threads())
    after = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(torch.rand(3), after)
    assert first > 0
    assert device.cpu_bf16_speedup(torch.get_num_threads()) == first  # cached
    assert device.cpu_bf16_speedup.cache_info().misses == 1
