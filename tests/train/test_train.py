"""Training end to end on a tiny synthetic task: checkpoints, resume, refusal to overwrite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from attnmt.config import Config, build_config
from attnmt.data.synthetic import write_task
from attnmt.errors import UserError
from attnmt.files import atomic_write
from attnmt.io.checkpoint import load_checkpoint, load_model, step_checkpoints
from attnmt.train.trainer import Trainer


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("task")
    write_task(directory, train=200, dev=20, test=20, seed=3)
    return directory


def tiny(task: Path, run_dir: Path, **train: object) -> Config:
    split = lambda n: {"src": str(task / f"{n}.src"), "tgt": str(task / f"{n}.tgt")}  # noqa: E731
    overrides = {
        "run_dir": str(run_dir),
        "model": {"embed_dim": 8, "hidden_dim": 16, "dropout": 0.2, "decoder": "luong"},
        "data": {
            "train": split("train"),
            "dev": split("dev"),
            "tokenizer": "word",
            "vocab_size": 100,
        },
        "train": {
            "max_steps": 12,
            "validate_every": 4,
            "batch_tokens": 300,
            "precision": "fp32",
            "log_every": 2,
            "keep_last": 2,
            "lr": 0.01,
            **train,
        },
        "decode": {"beam": 1, "max_len": 30},
    }
    return build_config([("test", overrides)])


def without_timing(lines: list[str]) -> list[dict[str, object]]:
    timing = ("time", "train_time", "tgt_tokens_per_s")
    return [{k: v for k, v in json.loads(x).items() if k not in timing} for x in lines]


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(step_checkpoints(run_dir)[-1]).model


def test_resumed_run_ends_with_the_same_weights(task: Path, tmp_path: Path) -> None:
    straight = tiny(task, tmp_path / "straight")
    Trainer.setup(straight, progress_bar=False, log=lambda _: None).run()

    interrupted = tiny(task, tmp_path / "interrupted")
    summary = Trainer.setup(interrupted, progress_bar=False, log=lambda _: None).run(until_step=7)
    assert summary.stop_reason == "interrupted" and summary.steps == 7
    Trainer.setup(interrupted, resume=True, progress_bar=False, log=lambda _: None).run()

    a, b = final_weights(tmp_path / "straight"), final_weights(tmp_path / "interrupted")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    log_a = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    log_b = (tmp_path / "interrupted" / "metrics.jsonl").read_text().splitlines()
    assert without_timing(log_a) == without_timing(log_b)


def test_run_directory_contents(task: Path, tmp_path: Path) -> None:
    config = tiny(task, tmp_path / "run")
    summary = Trainer.setup(config, progress_bar=False, log=lambda _: None).run()
    run_dir = tmp_path / "run"
    assert summary.steps == 12
    assert (run_dir / "config.yaml").is_file()
    assert len(step_checkpoints(run_dir)) == 2  # keep_last
    assert (run_dir / "checkpoints" / "best.pt").is_file()
    entries = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    dev = [e for e in entries if e["split"] == "dev"]
    assert [e["step"] for e in dev] == [4, 8, 12]
    assert all({"loss", "ppl", "bleu", "chrf"} <= e.keys() for e in dev)
    assert [e["step"] for e in entries if e["split"] == "train"] == [2, 4, 6, 8, 10, 12]
    model, loaded = load_model(run_dir)
    assert loaded == config and not model.training


def test_existing_run_is_never_overwritten(task: Path, tmp_path: Path) -> None:
    config = tiny(task, tmp_path / "run", max_steps=4)
    Trainer.setup(config, progress_bar=False, log=lambda _: None).run()
    before = (tmp_path / "run" / "checkpoints" / "best.pt").read_bytes()
    with pytest.raises(UserError, match="--resume"):
        Trainer.setup(config, progress_bar=False, log=lambda _: None)
    assert (tmp_path / "run" / "checkpoints" / "best.pt").read_bytes() == before
    changed = tiny(task, tmp_path / "run", max_steps=8).model_copy(
        update={"model": config.model.model_copy(update={"hidden_dim": 32})}
    )
    with pytest.raises(UserError, match="model section differs"):
        Trainer.setup(changed, resume=True, progress_bar=False, log=lambda _: None)


def test_resume_needs_a_checkpoint(task: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no checkpoint"):
        Trainer.setup(
            tiny(task, tmp_path / "empty"), resume=True, progress_bar=False, log=lambda _: None
        )


def test_scheduled_sampling_and_time_budget(task: Path, tmp_path: Path) -> None:
    config = tiny(task, tmp_path / "run", teacher_forcing=0.5, max_minutes=0.0001, max_steps=1000)
    summary = Trainer.setup(config, progress_bar=False, log=lambda _: None).run()
    assert summary.stop_reason == "max_minutes" and summary.steps < 1000


def test_bad_checkpoint_files_are_user_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable"):
        load_checkpoint(path)
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(b"old")

    def failing(handle) -> None:  # type: ignore[no-untyped-def]
        handle.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, failing)
    assert path.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [path]
