"""What happens around the training loop: the progress bar, the metrics log,
TensorBoard and checkpoints. The :class:`Trainer` calls each callback's hooks; it
knows nothing of files or terminals itself.

Callbacks run on rank 0 only (:func:`default_callbacks` gives the other ranks none), so
under torchrun one process writes the logs and checkpoints.

Hooks, each optional:

- ``on_step(trainer)``: after every optimizer step;
- ``on_log(trainer, entry)``: a metrics entry (``split`` is ``train`` or ``dev``);
- ``on_save(trainer, sampler_state, best)``: write a checkpoint (and the best model);
- ``on_end(trainer)``: the loop has ended, normally or not.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from attnmt.config import Config
from attnmt.files import write_text_atomic
from attnmt.io.checkpoint import Checkpoint, save_checkpoint, step_checkpoints

Log = Callable[[str], None]


class LoopProgress(Protocol):
    """The counters of the loop that callbacks read."""

    step: int  # optimizer steps taken


@runtime_checkable
class TrainerView(Protocol):
    """What a callback sees of the :class:`attnmt.train.trainer.Trainer` that calls it.
    Callbacks never import the trainer: it imports them, and knowledge runs one way."""

    config: Config
    run_dir: Path

    @property
    def progress(self) -> LoopProgress: ...

    def seconds_left(self) -> float | None: ...

    def checkpoint(self, sampler_state: dict[str, int] | None = None) -> Checkpoint:
        """The model and its header; with `sampler_state`, a resumable step checkpoint."""
        ...


def console(message: str) -> None:
    """Print a line without breaking a progress bar that is showing."""
    if "tqdm" in sys.modules:
        sys.modules["tqdm"].tqdm.write(message)
    else:
        print(message, flush=True)


def quiet(message: str) -> None:
    """The log of ranks other than 0: they say nothing, rank 0 speaks for the run."""


class Callback:
    """Base class: every hook does nothing."""

    def on_step(self, trainer: TrainerView) -> None:
        pass

    def on_log(self, trainer: TrainerView, entry: dict[str, Any]) -> None:
        pass

    def on_save(self, trainer: TrainerView, sampler_state: dict[str, int], best: bool) -> None:
        pass

    def on_end(self, trainer: TrainerView) -> None:
        pass


class ProgressBar(Callback):
    """A tqdm bar of steps with loss, learning rate, speed and the time-budget ETA."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = enabled  # None: only on a terminal
        self.bar: Any = None

    def on_step(self, trainer: TrainerView) -> None:
        if self.bar is None:
            from tqdm import tqdm  # only loaded when a run shows a bar

            self.bar = tqdm(
                total=trainer.config.train.max_steps,
                initial=trainer.progress.step - 1,
                disable=None if self.enabled is None else not self.enabled,
                unit="step",
                dynamic_ncols=True,
            )
        self.bar.update(1)

    def on_log(self, trainer: TrainerView, entry: dict[str, Any]) -> None:
        if self.bar is None or entry["split"] != "train":
            return
        postfix = {
            "loss": f"{entry['loss']:.3f}",
            "lr": f"{entry['lr']:.2e}",
            "tok/s": f"{entry['tgt_tokens_per_s']:,.0f}",
        }
        left = trainer.seconds_left()
        if left is not None:  # the time budget, not max_steps, ends the run
            postfix["eta"] = f"{int(left // 60)}:{int(left % 60):02d}"
        self.bar.set_postfix(postfix)

    def on_end(self, trainer: TrainerView) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class MetricsLog(Callback):
    """Appends every entry to run_dir/metrics.jsonl, one JSON object per line. On resume
    the lines written after the resumed checkpoint are dropped first."""

    def __init__(self, run_dir: Path, resumed_step: int | None = None) -> None:
        self.path = run_dir / "metrics.jsonl"
        if resumed_step is not None:
            truncate_metrics(self.path, resumed_step)

    def on_log(self, trainer: TrainerView, entry: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


class TensorBoard(Callback):
    """Scalars to run_dir/tensorboard, when tensorboard is installed."""

    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    def on_log(self, trainer: TrainerView, entry: dict[str, Any]) -> None:
        for key, value in entry.items():
            if key not in ("step", "split") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"{entry['split']}/{key}", value, entry["step"])


class Checkpointer(Callback):
    """Resumable step checkpoints (the last train.keep_last) and the best model."""

    def on_save(self, trainer: TrainerView, sampler_state: dict[str, int], best: bool) -> None:
        directory = trainer.run_dir / "checkpoints"
        step = trainer.progress.step
        save_checkpoint(directory / f"step-{step:08d}.pt", trainer.checkpoint(sampler_state))
        for old in step_checkpoints(trainer.run_dir)[: -trainer.config.train.keep_last]:
            old.unlink()
        if best:  # the model and its header only: nothing resumes from best.pt
            save_checkpoint(directory / "best.pt", trainer.checkpoint())


def truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                kept.append(line)
        except json.JSONDecodeError:
            continue
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def default_callbacks(
    run_dir: Path, rank: int, progress_bar: bool | None, resumed_step: int | None
) -> list[Callback]:
    """The usual callbacks on rank 0; none on the other ranks."""
    if rank != 0:
        return []
    callbacks: list[Callback] = [
        ProgressBar(progress_bar),
        MetricsLog(run_dir, resumed_step),
        Checkpointer(),
    ]
    with contextlib.suppress(ImportError):  # tensorboard is optional
        callbacks.append(TensorBoard(run_dir))
    return callbacks
