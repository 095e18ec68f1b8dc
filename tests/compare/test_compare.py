"""attnmt compare: configs trained alike, run directories reused, a self-contained report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from attnmt.cli.main import main
from attnmt.compare.evaluation import attention_rows, example_indices, length_edges, torch_threads
from attnmt.compare.orchestrate import CompareSettings, compare
from attnmt.compare.runner import resolved_config
from attnmt.compare.tasks import Task, synthetic_task
from attnmt.translate.schema import Translation
from attnmt.viz.report import SECTIONS

SEED, MINUTES = 7, 0.5
TINY = {"embed_dim": 8, "hidden_dim": 16}
# Presets that also try to set what compare must force (seed, data): compare must win.
PRESETS = {
    "plain": {
        "model": {"decoder": "none", **TINY},
        "train": {"max_steps": 3, "validate_every": 3, "log_every": 1, "seed": 99},
        "data": {"vocab_size": 17},
    },
    "dot": {
        "model": {"decoder": "luong", "attention": {"score": "dot"}, **TINY},
        "train": {"max_steps": 3, "validate_every": 3, "log_every": 1, "max_minutes": 60},
    },
}


def write_presets(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, preset in PRESETS.items():
        path = directory / f"{name}.yaml"
        path.write_text(yaml.safe_dump(preset), encoding="utf-8")
        paths.append(path)
    return paths


def tiny_task(out: Path) -> Task:
    return synthetic_task(out, train=200, dev=8, test=12)


@dataclass
class Study:
    out: Path
    presets: list[Path]
    task: Task
    log: list[str]


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: tiny models gain nothing from more, and a busy CPU stays usable."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """Two tiny configs trained (a few steps, each in its own process) and compared."""
    root = tmp_path_factory.mktemp("compare")
    out = root / "report"
    presets = write_presets(root / "presets")
    log: list[str] = []
    settings = CompareSettings(
        [str(p) for p in presets], out, tiny_task, SEED, MINUTES, log=log.append
    )
    compare(settings)
    return Study(out, presets, tiny_task(out), log)


# --------------------------------------------------------------------------- the report


class PageParser(HTMLParser):
    """Collects what could make a request, and the section headings."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.headings: list[str] = []
        self._heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.urls += [v or "" for k, v in attrs if k in {"src", "href", "srcset", "data", "action"}]
        self._heading = tag == "h2"

    def handle_endtag(self, tag: str) -> None:
        self._heading = False

    def handle_data(self, data: str) -> None:
        if self._heading:
            self.headings.append(data)


def test_report_has_every_section_and_needs_no_network(study: Study) -> None:
    page = PageParser()
    page.feed((study.out / "report.html").read_text(encoding="utf-8"))
    assert page.headings == [heading for _, heading in SECTIONS]
    assert page.urls, "expected embedded figures and in-page links"
    for url in page.urls:
        assert url.startswith(("data:image/png;base64,", "#")), url
    assert not page.tags & {"script", "link", "iframe", "object", "embed"}
    document = json.loads((study.out / "results.json").read_text(encoding="utf-8"))
    assert [run["name"] for run in document["runs"]] == ["plain", "dot"]
    plain, dot = document["runs"]
    assert plain["attention_entropy"] is None and dot["attention_entropy"] is not None
    for run in document["runs"]:
        assert run["peak_memory_mb"] > 0 and run["train_tgt_tokens_per_s"] > 0
        assert sum(row["count"] for row in run["bleu_by_length"]) == 12


def test_every_config_gets_the_same_data_seed_and_budget(study: Study) -> None:
    saved = [
        yaml.safe_load((study.out / "runs" / p.stem / "config.yaml").read_text())
        for p in study.presets
    ]
    assert saved[0]["data"] == saved[1]["data"]
    assert saved[0]["data"]["vocab_size"] == study.task.data["vocab_size"] != 17
    assert saved[0]["data"]["train"]["src"] == str(study.out / "data" / "train.src")
    for preset, config in zip(study.presets, saved, strict=True):
        assert config["train"]["seed"] == SEED
        assert config["train"]["max_minutes"] == MINUTES
        assert config["run_dir"] == str(study.out / "runs" / preset.stem)
    assert saved[0]["model"]["decoder"] != saved[1]["model"]["decoder"]  # the preset's own part


def test_resolved_configs_differ_only_in_the_model(tmp_path: Path) -> None:
    plain, dot = write_presets(tmp_path)
    task = Task("tiny", {"train": {"src": "a", "tgt": "b"}}, {"train": {"lr": 0.5}}, 1.0)
    a = resolved_config(plain, task, tmp_path / "a", 3, 2.0).to_dict()
    b = resolved_config(dot, task, tmp_path / "b", 3, 2.0).to_dict()
    assert a["data"] == b["data"] and a["data"]["train"] == {"src": "a", "tgt": "b", "tsv": None}
    assert a["train"]["lr"] == b["train"]["lr"] == 0.5
    assert (a["train"]["seed"], a["train"]["max_minutes"]) == (3, 2.0)
    assert (b["train"]["seed"], b["train"]["max_minutes"]) == (3, 2.0)


def test_existing_runs_are_read_not_retrained(study: Study) -> None:
    plain_dir = study.out / "runs" / "plain"
    dot_dir = study.out / "runs" / "dot"
    checkpoints = sorted((plain_dir / "checkpoints").iterdir()) + sorted(
        (dot_dir / "checkpoints").iterdir()
    )
    before = {path: path.stat().st_mtime_ns for path in checkpoints}
    log: list[str] = []
    # The plain run as a run directory, the dot config again (its run is finished).
    settings = CompareSettings(
        [str(plain_dir), str(study.presets[1])],
        study.out,
        tiny_task,
        SEED,
        MINUTES,
        log=log.append,
    )
    compare(settings)
    assert {path: path.stat().st_mtime_ns for path in checkpoints} == before
    assert any("dot: finished run" in line and "not retrained" in line for line in log)
    assert not any("training for" in line for line in log)
    assert all("training for" in line for line in study.log if "[" in line and "done" not in line)


# --------------------------------------------------------------------------- pieces


def test_examples_have_different_lengths() -> None:
    lengths = [5, 5, 5, 9, 9, 12, 12, 30, 30, 31]
    chosen = example_indices(lengths, (0.1, 0.45, 0.8))
    assert len(chosen) == 3
    assert [lengths[i] for i in chosen] == sorted({lengths[i] for i in chosen})


def test_attention_statistics_leave_out_the_eos_row() -> None:
    weights = torch.softmax(torch.randn(4, 6), dim=-1).numpy()  # 3 words + EOS
    src = list("abcdef")
    results = [
        Translation("x y z", ["x", "y", "z"], src, -1.0, -1.0, weights),
        Translation("", [], src, -1.0, -1.0, np.ones((1, 6)) / 6),  # only EOS: nothing to measure
        Translation("x", ["x"], src, -1.0, -1.0, None),  # no attention
    ]
    rows = attention_rows(results)
    assert len(rows) == 1 and np.array_equal(rows[0], weights[:3])


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["compare", "no_such.yaml", "--out", "r"], "neither a YAML config"),
        (["compare", ".", "--out", "r", "--test-src", "a"], "--test-src and --test-ref together"),
    ],
)
def test_user_mistakes_are_one_line(
    args: list[str], fragment: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main([*args[:3], str(tmp_path / "r"), *args[4:]]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]


def test_length_buckets_end_at_the_longest_source() -> None:
    assert length_edges([3, 12, 48]) == [0, 10, 20, 30, 40]  # the last bucket, 40+, holds 48
    assert length_edges([3, 40]) == [0, 10, 20, 30, 40]
    assert length_edges([5]) == [0]  # one open bucket
