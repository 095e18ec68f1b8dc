"""Device and precision choices: `precision: auto` on the CPU follows a measurement on the
machine (or what the run recorded), never a CPU flag alone."""

from __future__ import annotations

import pytest
import torch

from attnmt import device
from attnmt.device import BF16_MIN_SPEEDUP, Precision, resolve_precision, training_precision

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("native", "speedup", "expected"),
    [
        (True, 2.1, torch.bfloat16),
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


@pytest.mark.parametrize("native", [True, False])
def test_explicit_precision_is_never_measured(
    monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(device, "cpu_bf16_speedup", lambda threads: pytest.fail("measured"))
    never = lambda: pytest.fail("timed its own batches")  # noqa: E731
    for recorded in (None, "fp32", "bf16"):
        assert resolve_precision("fp32", CPU, recorded) is None
        assert resolve_precision("bf16", CPU, recorded) == torch.bfloat16
        assert training_precision("fp32", CPU, 1, recorded, never, print) is None
        assert training_precision("bf16", CPU, 1, recorded, never, print) == torch.bfloat16


@pytest.mark.parametrize("recorded", ["fp32", "bf16"])
def test_auto_follows_what_the_run_recorded(
    monkeypatch: pytest.MonkeyPatch, recorded: Precision
) -> None:
    """A loaded or resumed run keeps what its training chose, whatever this machine
    would measure now."""
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(device, "cpu_bf16_speedup", lambda threads: pytest.fail("measured"))
    never = lambda: pytest.fail("timed its own batches")  # noqa: E731
    expected = torch.bfloat16 if recorded == "bf16" else None
    assert resolve_precision("auto", CPU, recorded) == expected
    assert training_precision("auto", CPU, 1, recorded, never, print) == expected


@pytest.mark.parametrize(
    ("speedup", "expected"),
    [(2.1, torch.bfloat16), (BF16_MIN_SPEEDUP, torch.bfloat16), (1.1, None)],
)
def test_a_new_run_times_its_own_batches_once(
    monkeypatch: pytest.MonkeyPatch, speedup: float, expected: torch.dtype | None
) -> None:
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(device, "cpu_bf16_speedup", lambda threads: pytest.fail("measured"))
    calls: list[int] = []
    lines: list[str] = []
    chosen = training_precision(
        "auto", CPU, 1, None, lambda: calls.append(1) or speedup, lines.append
    )
    assert chosen == expected and calls == [1]
    assert len(lines) == 1 and lines[0].endswith("bf16" if expected else "fp32")


def test_several_processes_or_no_native_bf16_do_not_time_their_own_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Several processes must agree, which one measurement each would not ensure; they go
    by :func:`resolve_precision`, as do CPUs without native bf16 (always fp32)."""
    never = lambda: pytest.fail("timed its own batches")  # noqa: E731
    monkeypatch.setattr(device, "cpu_bf16_speedup", lambda threads: 2.0)
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert training_precision("auto", CPU, 2, None, never, print) == torch.bfloat16
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    assert training_precision("auto", CPU, 1, None, never, print) is None


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
