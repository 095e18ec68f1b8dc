"""Checkpoints: the typed header survives a round trip, every writer records it (training,
best model, average), and the untyped dicts of earlier versions (format 1) still load,
resume and decode."""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import SENTENCES, make_run

from attnmt.config import Config, build_config
from attnmt.data.synthetic import write_task
from attnmt.data.tokenize import WordTokenizer, save_tokenizers
from attnmt.errors import UserError
from attnmt.io.checkpoint import (
    FORMAT,
    Checkpoint,
    TrainingState,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    step_checkpoints,
)
from attnmt.io.run import Run
from attnmt.train.trainer import Trainer
from attnmt.translate.translator import Translator


def format_1(checkpoint: Checkpoint, **extra: Any) -> dict[str, Any]:
    """The flat dict earlier versions wrote (``Trainer.model_payload``), by hand:
    `extra` adds ``precision``, ``step``, ``dev``, ``averaged`` or training state."""
    header = checkpoint.header
    return {
        "format": 1,
        "config": header.config.to_dict(),
        "src_vocab_size": header.src_vocab_size,
        "tgt_vocab_size": header.tgt_vocab_size,
        "model": checkpoint.model,
        **extra,
    }


def assert_same_weights(one: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> None:
    assert one.keys() == other.keys()
    assert all(torch.equal(one[name], other[name]) for name in one)


def test_the_header_survives_a_round_trip(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run")
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    header = replace(
        best.header, precision="bf16", step=7, dev={"bleu": 12.5}, averaged_steps=(5, 7)
    )
    training = TrainingState(
        optimizer={"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]},
        schedule={"step": 7},
        sampler={"epoch": 1, "position": 3},
        progress={"step": 7, "elapsed": 1.5},
        rng={"torch": torch.get_rng_state(), "cuda": [], "ranks": []},
    )
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, Checkpoint(header, best.model, training))
    loaded = load_checkpoint(path)
    assert loaded.header == header and loaded.header.format == FORMAT
    assert loaded.header.family == header.config.model.arch
    assert_same_weights(loaded.model, best.model)
    assert loaded.training is not None
    assert loaded.training.progress == training.progress
    assert loaded.training.sampler == training.sampler
    assert torch.equal(loaded.training.rng["torch"], training.rng["torch"])
    raw = torch.load(path, weights_only=True)  # readable without attnmt's classes
    assert raw["format"] == FORMAT and raw["header"]["family"] == header.config.model.arch


def test_the_header_describes_the_run(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run")
    header = load_checkpoint(run_dir / "checkpoints" / "best.pt").header
    run = Run.load(run_dir, device="cpu")
    assert header.config == run.config
    assert header.src_tokenizer == run.src_tok.fingerprint()
    assert header.tgt_tokenizer == run.tgt_tok.fingerprint()
    assert (header.src_vocab_size, header.tgt_vocab_size) == (
        run.src_tok.vocab_size,
        run.tgt_tok.vocab_size,
    )


@pytest.mark.parametrize("precision", [None, "fp32", "bf16"])
def test_format_1_model_checkpoints_load(tmp_path: Path, precision: str | None) -> None:
    """best.pt as earlier versions wrote it, with or without ``precision``: the same
    header fields where it had them, the same model, the same translations."""
    run_dir = make_run(tmp_path / "run")
    path = run_dir / "checkpoints" / "best.pt"
    new = load_checkpoint(path)
    want = Translator.load(run_dir, device="cpu").translate(SENTENCES[0]).text
    extra: dict[str, Any] = {"step": 40, "dev": {"bleu": 3.0}}
    if precision is not None:
        extra["precision"] = precision
    torch.save(format_1(new, **extra), path)
    old = load_checkpoint(path)
    assert old.header.format == 1 and old.header.precision == precision
    assert old.header.step == 40 and old.header.dev == {"bleu": 3.0}
    assert old.header.src_tokenizer is None and old.training is None  # not recorded
    assert old.header.config == new.header.config
    assert old.header.family == new.header.family
    assert_same_weights(model_from_checkpoint(old).state_dict(), new.model)
    assert Translator.load(run_dir, device="cpu").translate(SENTENCES[0]).text == want


def test_format_1_averaged_checkpoints_name_their_steps(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run")
    new = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    files = [str(run_dir / "checkpoints" / f"step-{s:08d}.pt") for s in (10, 20)]
    path = run_dir / "checkpoints" / "averaged.pt"
    torch.save(format_1(new, step=20, averaged=files), path)
    header = load_checkpoint(path).header
    assert header.step == 20 and header.averaged_steps == (10, 20) and header.precision is None


def test_bad_checkpoints_are_user_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"
    for payload in ({"format": 99}, {"format": 1, "model": {}}, ["not", "a", "dict"]):
        torch.save(payload, path)
        with pytest.raises(UserError, match="not an attnmt checkpoint"):
            load_checkpoint(path)


def test_a_replaced_tokenizer_is_refused(tmp_path: Path) -> None:
    """The header's fingerprints catch a tokenizer directory that is not the model's."""
    run_dir = make_run(tmp_path / "run")
    run = Run.load(run_dir, device="cpu")
    other = WordTokenizer.build(["entirely other words here"], 100)
    save_tokenizers(run.src_tok, other, run_dir / "tokenizer")
    with pytest.raises(UserError, match="target tokenizer is not the one"):
        Run.load(run_dir, device="cpu")


# ---------------------------------------------------------------------------
# Training writes headers, and resumes from format 1 as from format 2


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("task")
    write_task(directory, train=80, dev=10, test=10, seed=6)
    return directory


def tiny(task: Path, run_dir: Path) -> Config:
    split = {"src": str(task / "train.src"), "tgt": str(task / "train.tgt")}
    overrides = {
        "run_dir": str(run_dir),
        "model": {"embed_dim": 8, "hidden_dim": 16, "dropout": 0.3, "decoder": "bahdanau"},
        "data": {"train": split, "tokenizer": "word", "vocab_size": 100},
        "train": {"max_steps": 6, "batch_tokens": 150, "precision": "fp32", "keep_last": 1},
        "decode": {"beam": 1, "max_len": 20},
    }
    return build_config([("test", overrides)])


def test_training_writes_the_header_and_resumes_from_format_1(task: Path, tmp_path: Path) -> None:
    config = tiny(task, tmp_path / "new")
    Trainer.setup(config, progress_bar=False, log=lambda _: None).run(until_step=2)
    [path] = step_checkpoints(tmp_path / "new")
    written = load_checkpoint(path)
    assert written.header.step == 2 and written.header.precision == "fp32"
    assert written.header.config == config and written.training is not None
    assert written.training.progress["step"] == 2
    # The same checkpoint as the trainer of earlier versions wrote it.
    shutil.copytree(tmp_path / "new", tmp_path / "old")
    old_path = tmp_path / "old" / "checkpoints" / path.name
    torch.save(format_1(written, precision="fp32", **asdict(written.training)), old_path)
    results = {}
    for name in ("new", "old"):
        resumed = Trainer.setup(
            tiny(task, tmp_path / name), resume=True, progress_bar=False, log=lambda _: None
        )
        assert resumed.progress.step == 2 and resumed.dtype is None
        resumed.run(until_step=4)
        results[name] = load_checkpoint(step_checkpoints(tmp_path / name)[-1])
    assert results["old"].header.step == results["new"].header.step == 4
    assert results["old"].header.format == FORMAT  # written anew
    assert_same_weights(results["old"].model, results["new"].model)
