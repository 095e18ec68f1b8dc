"""Learning-rate schedules: warmup, shapes and plateau reduction."""

from __future__ import annotations

import math

import pytest
import torch

from attnmt.train.schedule import LRSchedule


def schedule(kind: str, warmup: int = 10, max_steps: int = 100) -> LRSchedule:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    return LRSchedule(optimizer, kind, peak_lr=2.0, warmup_steps=warmup, max_steps=max_steps)


@pytest.mark.parametrize("kind", ["constant", "inverse_sqrt", "cosine", "plateau"])
def test_linear_warmup_reaches_peak(kind: str) -> None:
    s = schedule(kind)
    rates = [s.lr_at(step) for step in range(1, 11)]
    assert rates == sorted(rates) and rates[-1] == pytest.approx(2.0)
    assert rates[0] == pytest.approx(0.2)


def test_shapes_after_warmup() -> None:
    assert schedule("constant").lr_at(80) == pytest.approx(2.0)
    assert schedule("inverse_sqrt").lr_at(40) == pytest.approx(2.0 * math.sqrt(10 / 40))
    cosine = schedule("cosine")
    assert cosine.lr_at(55) == pytest.approx(1.0)  # halfway through the decay
    assert cosine.lr_at(100) == pytest.approx(0.0, abs=1e-12)
    rates = [cosine.lr_at(s) for s in range(10, 101)]
    assert rates == sorted(rates, reverse=True)


def test_apply_sets_the_optimizer_rate() -> None:
    s = schedule("inverse_sqrt")
    s.apply(40)
    assert s.optimizer.param_groups[0]["lr"] == pytest.approx(1.0)


def test_plateau_halves_after_patience_and_round_trips() -> None:
    s = schedule("plateau", warmup=0)
    s.validated(10.0, higher_is_better=True)
    s.validated(9.0, higher_is_better=True)
    assert s.lr_at(50) == pytest.approx(2.0)
    s.validated(9.5, higher_is_better=True)
    assert s.lr_at(50) == pytest.approx(1.0)
    restored = schedule("plateau", warmup=0)
    restored.load_state_dict(s.state_dict())
    assert restored.lr_at(50) == pytest.approx(1.0)
    other = schedule("constant")
    other.validated(1.0, True)
    other.validated(0.0, True)
    other.validated(0.0, True)
    assert other.lr_at(50) == pytest.approx(2.0)  # only plateau reacts


def test_cosine_follows_the_time_budget_when_it_binds() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = LRSchedule(optimizer, "cosine", 2.0, warmup_steps=0, max_steps=10_000, max_seconds=100)
    assert s.lr_at(10, elapsed=50.0) == pytest.approx(1.0)  # half the time: half the rate
    assert s.lr_at(10, elapsed=100.0) == pytest.approx(0.0, abs=1e-12)
    assert s.lr_at(9_000, elapsed=1.0) < s.lr_at(10, elapsed=1.0)  # steps still count
