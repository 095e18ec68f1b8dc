"""The tasks that compared configs train on: the synthetic study task and Multi30k de->en."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnmt.config import (
    SplitPaths,
    preset_path,
    read_yaml,
)
from attnmt.data.study_grammar import study_pair
from attnmt.data.synthetic import make_splits, write_split
from attnmt.errors import UserError
from attnmt.files import write_text_atomic

STUDY_TASK_VERSION = 2  # 1: joined quickstart sentences; 2: attnmt.data.study_grammar
STUDY_STEPS = 600  # training steps per config on the study task: minutes on one core
STUDY_MINUTES = 10.0  # only a safety cap there: the step budget ends each run first


def write_study_task(
    directory: Path, train: int = 20_000, dev: int = 300, test: int = 600, seed: int = 13
) -> dict[str, SplitPaths]:
    """Write the study task's splits (:func:`attnmt.data.study_grammar.study_pair`) as
    ``{split}.src`` / ``{split}.tgt`` into `directory`, each with its gold alignment
    ``{split}.align`` (Pharaoh lines).

    No source repeats across splits. The files are written once: when ``task.json`` in
    `directory` records the same grammar version, sizes and seed, they are reused
    untouched (so the tokenized caches of earlier runs stay valid).
    """
    sizes = {"train": train, "dev": dev, "test": test}
    paths = {
        name: SplitPaths(src=str(directory / f"{name}.src"), tgt=str(directory / f"{name}.tgt"))
        for name in sizes
    }
    meta = directory / "task.json"
    wanted = {"task": "study", "version": STUDY_TASK_VERSION, "seed": seed, **sizes}
    if meta.is_file() and json.loads(meta.read_text(encoding="utf-8")) == wanted:
        return paths
    for name, pairs in make_splits(train, dev, test, seed, study_pair).items():
        write_split(directory, name, pairs)
    write_text_atomic(meta, json.dumps(wanted) + "\n")
    return paths


@dataclass
class Task:
    """The data and defaults every compared config shares."""

    name: str  # "synthetic" or "multi30k"
    data: dict[str, Any]  # the whole data section, forced on every config
    defaults: dict[str, Any]  # model sizes, train and decode defaults, under each preset
    minutes: float  # default training budget per config
    test_alignment: Path | None = None  # gold alignment of the test split (Pharaoh), if any

    @property
    def test(self) -> SplitPaths:
        return SplitPaths.model_validate(self.data["test"])


def synthetic_task(out: Path, **sizes: int) -> Task:
    """The study task (see :func:`attnmt.data.study_grammar.study_pair`) written into
    ``<out>/data``, with gold alignments.

    Model sizes and training settings are the quickstart's (embeddings 64, GRU 128, word
    vocabularies). Every config trains for the same STUDY_STEPS steps (a few minutes on
    one idle CPU core): a step budget, not a time budget, so that the ranking does not
    depend on how busy the machine is, and a rerun with the same seed gives the same
    model.
    """
    splits = write_study_task(out / "data", **sizes)
    data = {
        **{name: split.model_dump(exclude_none=True) for name, split in splits.items()},
        "tokenizer": "word",
        "vocab_size": 400,  # the study grammar has about 230 source and 150 target words
        "max_len": 100,  # sources have at most about 50 words, targets about 60
    }
    defaults = {
        "model": {"embed_dim": 64, "hidden_dim": 128, "dropout": 0.1},
        "train": {
            "batch_tokens": 3000,
            "lr": 3e-3,
            "validate_every": 100,
            "log_every": 20,
            "patience": 0,
            "max_steps": STUDY_STEPS,  # the budget: equal steps, whatever the machine load
            "label_smoothing": 0.0,
            "threads": 1,  # small models gain little from more; one keeps timings steady
        },
        "decode": {"beam": 1},
    }
    alignment = out / "data" / "test.align"
    return Task("synthetic", data, defaults, minutes=STUDY_MINUTES, test_alignment=alignment)


MULTI30K_PRESET = "multi30k_de_en_bahdanau.yaml"  # shipped in attnmt/presets


MULTI30K_MINUTES = 8.0  # per config: 11 presets, with tokenizers and test decoding, ~2 h on 2 cores


MULTI30K_FILES = {"train": "train", "dev": "val", "test": "test_2016_flickr"}


MULTI30K_SIZES = ("rnn", "bidirectional", "embed_dim", "hidden_dim", "dropout")


def multi30k_dir(given: Path | None = None) -> Path:
    """Where the Multi30k files are: `given` (``--data-dir``), else ``data/multi30k`` (where
    ``attnmt data multi30k`` puts them), else ``../shared/data/multi30k``, relative to the
    current directory."""
    candidates = [given] if given is not None else []
    candidates += [Path("data/multi30k"), Path("../shared/data/multi30k")]
    for directory in candidates:
        if (directory / "train.de.gz").is_file():
            return directory
    raise UserError(
        "Multi30k not found in data/multi30k or ../shared/data/multi30k; "
        "get it with: attnmt data multi30k"
    )


def multi30k_task(out: Path, data_dir: Path | None = None) -> Task:
    """Multi30k de->en with the tokenizer, sizes and training settings of
    configs/multi30k_de_en_bahdanau.yaml (only its model sizes, not its attention)."""
    directory = multi30k_dir(data_dir)
    reference = read_yaml(preset_path(MULTI30K_PRESET))
    data = dict(reference["data"])
    for split, stem in MULTI30K_FILES.items():
        data[split] = {
            "src": str(directory / f"{stem}.de.gz"),
            "tgt": str(directory / f"{stem}.en.gz"),
        }
    train = {k: v for k, v in reference["train"].items() if k != "max_minutes"}
    sizes = {k: v for k, v in reference["model"].items() if k in MULTI30K_SIZES}
    defaults = {"model": sizes, "train": train, "decode": reference.get("decode", {})}
    return Task("multi30k", data, defaults, minutes=MULTI30K_MINUTES)


TASKS: dict[str, Callable[[Path], Task]] = {"synthetic": synthetic_task, "multi30k": multi30k_task}
