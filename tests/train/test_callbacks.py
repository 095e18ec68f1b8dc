"""The callbacks see the trainer only through `TrainerView`, the Protocol they define, so
they never import the trainer; the real Trainer must still have all of it."""

from __future__ import annotations

from pathlib import Path

from attnmt.config import build_config
from attnmt.data.synthetic import write_task
from attnmt.train.callbacks import Callback, TrainerView
from attnmt.train.trainer import Trainer


class Seen(Callback):
    def __init__(self) -> None:
        self.trainers: list[object] = []

    def on_step(self, trainer: TrainerView) -> None:
        self.trainers.append(trainer)


def test_the_trainer_is_what_the_callbacks_see(tmp_path: Path) -> None:
    write_task(tmp_path / "task", train=40, dev=5, test=5, seed=3)
    split = {"src": str(tmp_path / "task/train.src"), "tgt": str(tmp_path / "task/train.tgt")}
    overrides = {
        "run_dir": str(tmp_path / "run"),
        "model": {"embed_dim": 8, "hidden_dim": 8},
        "data": {"train": split, "tokenizer": "word", "vocab_size": 60},
        "train": {"max_steps": 2, "batch_tokens": 200, "precision": "fp32"},
    }
    trainer = Trainer.setup(build_config([("test", overrides)]), progress_bar=False)
    seen = Seen()
    trainer.callbacks.append(seen)
    trainer.run()
    assert seen.trainers and all(isinstance(t, TrainerView) for t in seen.trainers)
    assert not isinstance(object(), TrainerView)
