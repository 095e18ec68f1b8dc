"""Dialogue metrics against hand-computed values, and `attnmt evaluate` on a dialogue run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from attnmt.cli.main import main
from attnmt.evaluate.dialogue import dialogue_metrics, distinct_n, generic_share, words
from attnmt.evaluate.metrics import LossResult, word_perplexity
from attnmt.io.checkpoint import load_checkpoint, save_checkpoint


def test_distinct_n_by_hand() -> None:
    replies = ["I do not know.", "i do know"]
    # words: i do not know . | i do know
    # unigrams: 8, distinct {i, do, not, know, .} = 5
    assert distinct_n(replies, 1) == pytest.approx(5 / 8)
    # bigrams: (i do) (do not) (not know) (know .) | (i do) (do know): 6, distinct 5
    assert distinct_n(replies, 2) == pytest.approx(5 / 6)
    # trigrams: (i do not) (do not know) (not know .) | (i do know): 4, all distinct
    assert distinct_n(replies, 3) == 1.0


def test_the_same_reply_everywhere_has_low_diversity() -> None:
    dull = ["i don't know"] * 10
    varied = [f"reply number {k} is new" for k in range(10)]
    assert distinct_n(dull, 1) == pytest.approx(4 / 40)  # i, don, ', t over 10 replies
    assert distinct_n(varied, 2) > distinct_n(dull, 2)
    assert dialogue_metrics(dull)["unique"] == pytest.approx(0.1)
    assert dialogue_metrics(varied)["unique"] == 1.0


def test_generic_share_by_hand() -> None:
    assert generic_share([f"reply {k}" for k in range(50)]) == 0.0  # none repeats
    replies = ["I don't know."] * 5 + ["i don't know ."] + ["yes"] * 3 + ["maybe", "no"]
    assert generic_share(replies) == pytest.approx(9 / 11)  # "i don't know" 6 and "yes" 3
    # 12 replies given twice each, and one given once: the 10 most frequent are generic
    many = [f"r{k}" for k in range(12) for _ in range(2)] + ["once"]
    assert generic_share(many) == pytest.approx(20 / 25)
    assert generic_share(list(reversed(many))) == generic_share(many)  # order is no matter
    assert generic_share(many, top=1) == pytest.approx(2 / 25)


def test_word_perplexity_by_hand() -> None:
    loss = LossResult(nll=2.0, tokens=10)  # 20 nats over the corpus
    # words: 2 + 1 and 3 + 1 (each reply's end counts once)
    assert word_perplexity(loss, ["a b", "c d  e"]) == pytest.approx(math.exp(20 / 7))


def test_words_split_punctuation_and_lowercase() -> None:
    assert words("Hi, I'm Bob!") == ["hi", ",", "i", "'", "m", "bob", "!"]


def test_reply_length_and_empty_input() -> None:
    metrics = dialogue_metrics(["a b c", "", "d"])
    assert metrics["reply_len"] == pytest.approx(4 / 3)
    assert dialogue_metrics([]) == {
        "distinct_1": 0.0,
        "distinct_2": 0.0,
        "reply_len": 0.0,
        "unique": 0.0,
        "generic": 0.0,
    }
    assert distinct_n(["one"], 2) == 0.0  # no bigram at all


def _set_task(run_dir: Path, task: str) -> None:
    path = run_dir / "checkpoints" / "best.pt"
    checkpoint = load_checkpoint(path)
    checkpoint.header.config.data.task = task  # type: ignore[assignment]  # validated
    save_checkpoint(path, checkpoint)


def test_evaluate_adds_dialogue_metrics_for_dialogue_runs_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers import SENTENCES, make_run

    run_dir = make_run(tmp_path / "run")
    src, ref = tmp_path / "test.src", tmp_path / "test.tgt"
    src.write_text("".join(s + "\n" for s in SENTENCES))
    ref.write_text("".join(s + "\n" for s in SENTENCES))
    args = ["evaluate", "--model", str(run_dir), "--src", str(src), "--ref", str(ref)]

    assert main(args) == 0
    assert "BLEU" in (out := capsys.readouterr().out) and "distinct" not in out

    _set_task(run_dir, "dialogue")
    assert main([*args, "--json", "--sample", "--seed", "3", "--output", str(tmp_path / "o")]) == 0
    scores = json.loads(capsys.readouterr().out)
    replies = (tmp_path / "o").read_text().splitlines()
    assert scores["sample"] is True and scores["sentences"] == len(SENTENCES)
    assert scores["distinct_1"] == pytest.approx(distinct_n(replies, 1))
    assert scores["reply_len"] == pytest.approx(dialogue_metrics(replies)["reply_len"])


def test_the_compare_report_shows_dialogue_columns_only_for_dialogue_runs(
    tmp_path: Path,
) -> None:
    pytest.importorskip("matplotlib")
    from attnmt.viz.report import RunResult, write_report

    page = write_report(tmp_path / "mt", [RunResult(name="mt")], command="x").read_text()
    assert "Distinct-1" not in page
    metrics = dialogue_metrics(["i do not know", "me too"])
    runs = [RunResult(name="chat", dialogue=metrics), RunResult(name="mt")]
    page = write_report(tmp_path / "chat", runs, command="x").read_text()
    assert "Distinct-1" in page and "Reply length" in page
    assert f"{metrics['distinct_2']:.3f}" in page
    record = json.loads((tmp_path / "chat" / "results.json").read_text())["runs"][0]
    assert record["dialogue"]["reply_len"] == pytest.approx(metrics["reply_len"])
