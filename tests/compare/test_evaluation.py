"""Evaluating one compared run in one pass: the run loaded once, the test set decoded
once, progress from the metrics log, and the same numbers as the plain evaluation path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import SENTENCES, make_run

from attnmt.compare.evaluation import CommonTestSet, evaluate_run, training_speed
from attnmt.config import SplitPaths
from attnmt.data.alignment import GoldAlignment
from attnmt.errors import UserError
from attnmt.evaluate.alignment import evaluate_alignment
from attnmt.evaluate.evaluation import evaluate_split
from attnmt.io.run import Run
from attnmt.translate.translator import Translator


def write_test_set(directory: Path, count: int = 8) -> tuple[SplitPaths, list[str]]:
    sources = SENTENCES[:count]
    targets = [" ".join(reversed(s.split())) for s in sources]
    src, tgt = directory / "test.src", directory / "test.tgt"
    src.write_text("".join(s + "\n" for s in sources), encoding="utf-8")
    tgt.write_text("".join(t + "\n" for t in targets), encoding="utf-8")
    return SplitPaths(src=str(src), tgt=str(tgt)), targets


def diagonal_gold(directory: Path, targets: list[str]) -> Path:
    """Each target word linked to the source word at its position (or the last one)."""
    path = directory / "gold.align"
    lines = []
    for target, source in zip(targets, SENTENCES, strict=False):
        last = len(source.split()) - 1
        links = {(min(j, last), j) for j in range(len(target.split()))}
        lines.append(GoldAlignment.of(links).pharaoh())
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_training_speed_comes_from_the_last_entry_of_the_metrics_log() -> None:
    history = [
        {"step": 2, "split": "train", "time": 1.0, "train_time": 0.8, "tgt_tokens": 40},
        {"step": 4, "split": "dev", "time": 3.0, "train_time": 1.5, "tgt_tokens": 90},
    ]
    assert training_speed(history) == (pytest.approx(60.0), 3.0)
    assert training_speed([{"step": 2, "split": "train", "time": 1.0}]) == (None, 1.0)
    assert training_speed([]) == (None, None)
    older = [  # a log from before entries carried progress: the mean of its rates
        {"step": 2, "split": "train", "time": 1.0, "tgt_tokens_per_s": 50.0},
        {"step": 4, "split": "train", "time": 2.0, "tgt_tokens_per_s": 70.0},
        {"step": 4, "split": "dev", "time": 2.5},
    ]
    assert training_speed(older) == (pytest.approx(60.0), 2.5)


def test_the_test_set_is_read_and_its_gold_checked_once(tmp_path: Path) -> None:
    split, targets = write_test_set(tmp_path)
    test = CommonTestSet.read(split, diagonal_gold(tmp_path, targets))
    assert test.sources == SENTENCES[:8] and test.references == targets
    assert test.gold is not None and len(test.gold) == 8
    short = tmp_path / "short.align"
    short.write_text("0-0\n", encoding="utf-8")
    with pytest.raises(UserError, match="1 lines but the test set has 8"):
        CommonTestSet.read(split, short)


def test_evaluate_run_loads_once_decodes_once_and_matches_the_evaluation_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = make_run(tmp_path / "run")
    split, targets = write_test_set(tmp_path)
    gold = diagonal_gold(tmp_path, targets)
    log = [{"step": 5, "split": "dev", "time": 9.0, "train_time": 4.0, "tgt_tokens": 200}]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log), "utf-8")
    expected_run = Run.load(run_dir, device="cpu")
    options = Translator.from_run(expected_run).options(beam=2, n_best=1, sample=False)
    expected = evaluate_split(expected_run, split, options)
    expected_aer = evaluate_alignment(expected_run, split, gold)
    assert expected_aer is not None

    calls: dict[str, int] = {"load": 0, "decode": 0}
    load, decode = Run.load.__func__, Translator.translate_ids  # type: ignore[attr-defined]

    def counted_load(cls: type[Run], *args: Any, **kwargs: Any) -> Run:
        calls["load"] += 1
        return load(cls, *args, **kwargs)

    def counted_decode(self: Translator, *args: Any, **kwargs: Any) -> Any:
        calls["decode"] += 1
        return decode(self, *args, **kwargs)

    monkeypatch.setattr(Run, "load", classmethod(counted_load))
    monkeypatch.setattr(Translator, "translate_ids", counted_decode)
    examples = [1, 5]
    result = evaluate_run("run", run_dir, CommonTestSet.read(split, gold), examples, beam=2)

    assert calls == {"load": 1, "decode": 1}
    assert (result.bleu, result.chrf) == (expected.scores["bleu"], expected.scores["chrf"])
    assert result.ppl == pytest.approx(expected.scores["ppl"])
    assert result.aer == pytest.approx(expected_aer.aer)
    assert result.train_tgt_tokens_per_s == pytest.approx(50.0) and result.wall_time_s == 9.0
    assert result.history == log
    assert sum(row["count"] for row in result.bleu_by_length) == 8
    assert len(result.examples) == len(examples)
    for example, i in zip(result.examples, examples, strict=True):
        src_words, tgt_words = expected.translations[i].words()
        assert (example.src_tokens, example.tgt_tokens) == (src_words, tgt_words)
        assert example.weights is not None
