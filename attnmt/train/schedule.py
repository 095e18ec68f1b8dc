"""Learning-rate schedules, as a multiplier of the peak rate `train.lr`.

Every schedule starts with a linear warmup over `w` steps: lr(s) = lr · s / w for s < w.
After it:

- ``constant``:     lr
- ``inverse_sqrt``: lr · sqrt(w / s)                          (Vaswani et al. 2017, eq. 3)
- ``cosine``:       lr · ½ (1 + cos(π p)),  p = (s − w) / (N − w)   (Loshchilov & Hutter 2017)
                    With a time budget T (`train.max_minutes`), p is the larger of that
                    and the share of T used, so the rate reaches 0 when the first budget
                    runs out.
- ``plateau``:      lr · f, where f halves after `patience` validations without improvement
                    (never below 1/1000)

The state is a few numbers, so it goes into checkpoints as is.
"""

from __future__ import annotations

import math

import torch


class LRSchedule:
    """Sets the optimizer's learning rate before every step."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        kind: str,
        peak_lr: float,
        warmup_steps: int,
        max_steps: int,
        plateau_patience: int = 2,
        max_seconds: float | None = None,
    ) -> None:
        if kind not in ("constant", "inverse_sqrt", "cosine", "plateau"):
            raise ValueError(f"unknown schedule {kind!r}")
        self.optimizer = optimizer
        self.kind = kind
        self.peak_lr = peak_lr
        self.warmup_steps = warmup_steps
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.plateau_patience = plateau_patience
        self.factor = 1.0  # plateau reduction so far
        self.best: float | None = None
        self.bad_validations = 0

    def lr_at(self, step: int, elapsed: float = 0.0) -> float:
        """The learning rate for optimizer step `step` (1-based), `elapsed` seconds in."""
        warmup = self.warmup_steps
        if step <= warmup:
            return self.peak_lr * step / warmup
        if self.kind == "inverse_sqrt":
            return self.peak_lr * math.sqrt(max(warmup, 1) / step)
        if self.kind == "cosine":
            progress = (step - warmup) / max(1, self.max_steps - warmup)
            if self.max_seconds:
                progress = max(progress, elapsed / self.max_seconds)
            progress = min(1.0, progress)
            return self.peak_lr * 0.5 * (1 + math.cos(math.pi * progress))
        return self.peak_lr * self.factor

    def apply(self, step: int, elapsed: float = 0.0) -> float:
        lr = self.lr_at(step, elapsed)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def validated(self, value: float, higher_is_better: bool) -> None:
        """Report a dev metric; only the plateau schedule reacts."""
        if self.kind != "plateau":
            return
        better = self.best is None or (value > self.best if higher_is_better else value < self.best)
        if better:
            self.best, self.bad_validations = value, 0
            return
        self.bad_validations += 1
        if self.bad_validations >= self.plateau_patience:
            self.factor = max(self.factor / 2, 1e-3)
            self.bad_validations = 0

    def state_dict(self) -> dict[str, float | int | None]:
        return {"factor": self.factor, "best": self.best, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict[str, float | int | None]) -> None:
        self.factor = float(state["factor"] or 1.0)
        best = state["best"]
        self.best = float(best) if best is not None else None
        self.bad_validations = int(state["bad_validations"] or 0)
