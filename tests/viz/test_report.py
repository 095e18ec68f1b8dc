"""The comparison report: every section present, fully self-contained, numbers round-trip."""

from __future__ import annotations

import base64
import csv
import json
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from attnmt.viz.report import SECTIONS, Example, RunResult, write_report

DATE = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
COMMAND = "attnmt compare runs/luong runs/plain --out report"


class PageParser(HTMLParser):
    """Collects every attribute that can make a request, the headings and the images."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []  # every src, href, srcset, data, poster, action value
        self.headings: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "srcset", "data", "poster", "action", "xlink:href"}:
                self.links.append(value or "")
        if tag == "img":
            self.images.append(dict(attrs))
        self._in_heading = tag == "h2"

    def handle_endtag(self, tag: str) -> None:
        self._in_heading = False

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self.headings.append(data)


def fake_run(name: str, seed: int, attention: bool) -> RunResult:
    rng = np.random.default_rng(seed)
    history = [{"split": "train", "step": s, "time": 1.5 * s, "loss": 6 / s} for s in range(1, 30)]
    history += [
        {"split": "dev", "step": s, "time": 1.5 * s, "loss": 5 / s, "bleu": s} for s in (10, 20)
    ]
    sources = [["▁das", "▁haus"], ["▁ein", "▁kleiner", "▁hund", "."]]
    targets = [["▁the", "▁house"], ["▁a", "▁small", "▁dog", "."]]
    examples = [
        Example(
            src, tgt, rng.dirichlet(np.ones(len(src)), size=len(tgt) + 1) if attention else None
        )
        for src, tgt in zip(sources, targets, strict=True)
    ]
    return RunResult(
        name=name,
        config={
            "decoder": "luong" if attention else "none",
            "score": "general",
            "window": "global",
        },
        bleu=float(rng.uniform(5, 30)),
        chrf=float(rng.uniform(20, 60)),
        ppl=float(rng.uniform(5, 50)),
        parameters=int(rng.integers(10_000, 2_000_000)),
        train_tgt_tokens_per_s=float(rng.uniform(1000, 9000)),
        decode_sents_per_s=float(rng.uniform(10, 200)),
        peak_memory_mb=float(rng.uniform(100, 900)),
        wall_time_s=float(rng.uniform(30, 5000)),
        bleu_by_length=[
            {
                "bucket": "0-9",
                "low": 0,
                "high": 10,
                "count": 5,
                "bleu": float(rng.uniform(0, 40)),
                "chrf": 40.5,
            },
            {"bucket": "10+", "low": 10, "high": None, "count": 0, "bleu": None, "chrf": None},
        ],
        attention_entropy=float(rng.uniform(0, 2)) if attention else None,
        monotonicity=float(rng.uniform(0, 1)) if attention else None,
        history=history,
        examples=examples,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RunResult]]:
    runs = [
        fake_run("luong <general> & co", 0, attention=True),
        fake_run("plain", 1, attention=False),
    ]
    out_dir = tmp_path_factory.mktemp("report") / "new"
    path = write_report(out_dir, runs, command=COMMAND, date=DATE)
    return path, runs


def test_report_files_are_written_atomically(report: tuple[Path, list[RunResult]]) -> None:
    path, _ = report
    assert path.name == "report.html"
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "report.html",
        "results.csv",
        "results.json",
    ]


def test_report_is_self_contained(report: tuple[Path, list[RunResult]]) -> None:
    page = report[0].read_text(encoding="utf-8")
    parser = PageParser()
    parser.feed(page)
    assert parser.links, "the page should at least link its own sections"
    for link in parser.links:
        assert link.startswith(("data:", "#")), link
    lowered = page.lower()
    for forbidden in ("http://", "https://", "@import", "url(", "<script", "<link", "<iframe"):
        assert forbidden not in lowered
    for image in parser.images:  # every embedded PNG decodes to a PNG
        prefix = "data:image/png;base64,"
        assert (image["src"] or "").startswith(prefix)
        assert base64.b64decode((image["src"] or "")[len(prefix) :])[:4] == b"\x89PNG"


def test_report_has_every_section_and_the_provenance(report: tuple[Path, list[RunResult]]) -> None:
    page = report[0].read_text(encoding="utf-8")
    parser = PageParser()
    parser.feed(page)
    assert parser.headings == [heading for _, heading in SECTIONS]
    for anchor, _ in SECTIONS:
        assert f'id="{anchor}"' in page and f'href="#{anchor}"' in page
    assert COMMAND in page and "2025-01-02T03:04:05" in page


def test_report_shows_heatmaps_for_attention_runs_and_notes_for_others(
    report: tuple[Path, list[RunResult]],
) -> None:
    path, runs = report
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    heatmaps = [i for i in parser.images if (i.get("alt") or "").startswith("attention of")]
    with_attention = [e for run in runs for e in run.examples if e.weights is not None]
    without = [e for run in runs for e in run.examples if e.weights is None]
    assert len(heatmaps) == len(with_attention) > 0
    assert path.read_text(encoding="utf-8").count("No attention:") == len(without) > 0
    assert "<th>Sentence 2<br>ein kleiner hund.</th>" in path.read_text(encoding="utf-8")
    assert path.read_text(encoding="utf-8").count("<figcaption>a small dog.</figcaption>") == 2
    alts = {i.get("alt") for i in parser.images}
    assert {"BLEU by source length", "learning curves"} <= alts


def test_report_escapes_text(report: tuple[Path, list[RunResult]]) -> None:
    page = report[0].read_text(encoding="utf-8")
    assert "<general>" not in page
    assert "luong &lt;general&gt; &amp; co" in page


def test_results_json_round_trips_the_numbers(report: tuple[Path, list[RunResult]]) -> None:
    path, runs = report
    document = json.loads((path.parent / "results.json").read_text(encoding="utf-8"))
    assert document["command"] == COMMAND
    assert [record["name"] for record in document["runs"]] == [run.name for run in runs]
    for record, run in zip(document["runs"], runs, strict=True):
        for key in ("bleu", "chrf", "ppl", "parameters", "train_tgt_tokens_per_s",
                    "decode_sents_per_s", "peak_memory_mb", "wall_time_s",
                    "attention_entropy", "monotonicity"):  # fmt: skip
            assert record[key] == getattr(run, key), key
        assert record["config"] == run.config
        assert record["bleu_by_length"] == run.bleu_by_length


def test_results_csv_round_trips_the_numbers(report: tuple[Path, list[RunResult]]) -> None:
    path, runs = report
    with open(path.parent / "results.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["name"] for row in rows] == [run.name for run in runs]
    for row, run in zip(rows, runs, strict=True):
        assert float(row["bleu"]) == run.bleu
        assert int(row["parameters"]) == run.parameters
        assert float(row["wall_time_s"]) == run.wall_time_s
        assert row["config.decoder"] == run.config["decoder"]
        assert float(row["bleu_len_0-9"]) == run.bleu_by_length[0]["bleu"]
        assert row["count_len_10+"] == "0" and row["bleu_len_10+"] == ""
        if run.monotonicity is None:
            assert row["monotonicity"] == row["attention_entropy"] == ""
        else:
            assert float(row["monotonicity"]) == run.monotonicity


def test_report_rejects_duplicate_names(tmp_path: Path) -> None:
    run = RunResult(name="same")
    with pytest.raises(ValueError, match="unique"):
        write_report(tmp_path, [run, run], command="x")
    assert list(tmp_path.iterdir()) == []


def test_minimal_runs_still_give_a_page(tmp_path: Path) -> None:
    path = write_report(tmp_path, [RunResult(name="bare")], command="x")
    page = path.read_text(encoding="utf-8")
    assert "No example sentences." in page and "No metrics history." in page
    assert json.loads((tmp_path / "results.json").read_text())["runs"][0]["bleu"] is None


def test_models_with_several_heads_show_every_head(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    src, tgt = ["▁ein", "▁hund"], ["▁a", "▁dog"]
    heads = rng.dirichlet(np.ones(len(src)), size=(2, 3, len(tgt) + 1))  # layers × heads
    run = RunResult(name="transformer", examples=[Example(src, tgt, heads.mean(1)[-1], heads)])
    path = write_report(tmp_path, [run, fake_run("plain", 1, attention=False)], command=COMMAND)
    page = path.read_text(encoding="utf-8")
    parser = PageParser()
    parser.feed(page)
    alts = [image.get("alt") or "" for image in parser.images]
    assert page.count("<summary>every head</summary>") == 1  # the single-map run has none
    assert "every head of transformer on sentence 1" in alts
