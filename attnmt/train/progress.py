"""The training loop's books: where it is, how it went, and what it ends with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

HIGHER_IS_BETTER = {"bleu": True, "chrf": True, "loss": False}
"""train.metric -> whether a higher dev value is better."""


@dataclass
class Progress:
    """What a checkpoint must remember about the loop itself."""

    step: int = 0
    elapsed: float = 0.0  # wall time of the run, validation included, across resumes
    train_time: float = 0.0  # the part spent in training steps
    tgt_tokens: int = 0  # real target tokens trained on
    best_value: float | None = None
    best_step: int = 0
    bad_validations: int = 0
    stopped_early: bool = False
    last_dev: dict[str, float] = field(default_factory=dict)

    def note_validation(self, metrics: dict[str, float], metric: str) -> bool:
        """Book one validation's scores; whether `metric` improved on the best so far
        (the first validation always does). Patience counts the validations since."""
        self.last_dev = metrics
        value, best = metrics[metric], self.best_value
        higher = HIGHER_IS_BETTER[metric]
        improved = best is None or (value > best if higher else value < best)
        if improved:
            self.best_value, self.best_step = value, self.step
            self.bad_validations = 0
        else:
            self.bad_validations += 1
        return improved


@dataclass
class TrainSummary:
    """What a finished (or interrupted) run reports."""

    run_dir: Path
    steps: int
    elapsed: float
    tgt_tokens_per_s: float
    best_step: int
    best_dev: dict[str, float]
    parameters: int
    stop_reason: str
    rank: int = 0  # which of the torchrun processes trained (0 speaks for the run)
