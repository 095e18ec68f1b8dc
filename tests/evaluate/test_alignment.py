"""Alignment error rate of attention: the measure, the extraction rules, Pharaoh files and
the forced attention they are computed from."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SENTENCES, make_run

from attnmt.cli.main import main
from attnmt.config import SplitPaths
from attnmt.data.alignment import GoldAlignment, parse_pharaoh, read_pharaoh
from attnmt.data.corpus import load_corpus
from attnmt.data.tokenize import merge_pieces
from attnmt.errors import UserError
from attnmt.evaluate.alignment import (
    alignment_error,
    argmax_links,
    evaluate_alignment,
    extract_links,
    forced_attention,
    threshold_links,
    word_links,
)
from attnmt.io.run import Run
from attnmt.translate.words import word_attention


def test_aer_equals_the_hand_computed_value() -> None:
    gold = GoldAlignment.of(sure={(0, 0), (1, 1)}, possible={(2, 1)})
    proposed = {(0, 0), (2, 1), (2, 2)}  # one sure hit, one possible hit, one miss
    scores = alignment_error([proposed], [gold])
    # |A ∩ S| = 1, |A ∩ P| = 2, |A| = 3, |S| = 2: AER = 1 - (1 + 2) / (3 + 2)
    assert scores.aer == pytest.approx(0.4)
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx(1 / 2)


def test_aer_is_zero_for_a_perfect_and_one_for_a_disjoint_alignment() -> None:
    gold = [GoldAlignment.of({(0, 1), (1, 0), (2, 2)}), GoldAlignment.of({(0, 0)}, {(1, 0)})]
    assert alignment_error([set(g.sure) for g in gold], gold).aer == 0.0
    disjoint = [{(5, 5)}, {(3, 3), (4, 4)}]
    assert alignment_error(disjoint, gold).aer == 1.0


def test_with_sure_links_only_aer_is_one_minus_f1() -> None:
    rng = random.Random(0)
    for _ in range(50):
        universe = [(i, j) for i in range(5) for j in range(5)]
        gold = [GoldAlignment.of(rng.sample(universe, rng.randint(1, 8))) for _ in range(3)]
        proposed = [set(rng.sample(universe, rng.randint(1, 8))) for _ in range(3)]
        scores = alignment_error(proposed, gold)
        hits = sum(len(a & g.sure) for a, g in zip(proposed, gold, strict=True))
        precision = hits / sum(len(a) for a in proposed)
        recall = hits / sum(len(g.sure) for g in gold)
        f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
        assert scores.aer == pytest.approx(1 - f1)


def test_the_rules_extract_links_from_attention() -> None:
    weights = np.array([[0.7, 0.2, 0.1], [0.1, 0.45, 0.45], [0.0, 0.1, 0.9]])  # (T, S)
    assert argmax_links(weights) == {(0, 0), (1, 1), (2, 2)}  # (source, target)
    assert threshold_links(weights, 0.4) == {(0, 0), (1, 1), (2, 1), (2, 2)}
    assert threshold_links(weights, 0.95) == set()
    assert extract_links(weights, "argmax") == argmax_links(weights)
    with pytest.raises(UserError, match="argmax, threshold"):
        extract_links(weights, "maximum")


def test_pharaoh_round_trip_and_one_line_errors(tmp_path: Path) -> None:
    gold = GoldAlignment.of({(0, 0), (2, 1), (1, 2)}, {(3, 1)})
    assert gold.pharaoh() == "0-0 2-1 3p1 1-2"
    assert parse_pharaoh(gold.pharaoh()) == gold
    assert parse_pharaoh("") == GoldAlignment.of(())
    path = tmp_path / "gold.align"
    path.write_text("0-0 1-1\n0-0 1:1\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"gold.align:2: '1:1' is not a link"):
        read_pharaoh(path)
    with pytest.raises(UserError, match="cannot read"):
        read_pharaoh(tmp_path / "missing.align")


def test_word_links_merge_pieces_before_extracting() -> None:
    """Two pieces of one source word share its attention: summed, they win the argmax."""
    src_pieces, tgt_pieces = ["▁a", "▁bi", "g", "▁c"], ["▁x", "▁y"]
    weights = np.array([[0.4, 0.3, 0.3, 0.0], [0.1, 0.0, 0.0, 0.9], [0.25] * 4])  # (T+1, S)
    _, _, merged = word_attention(src_pieces, tgt_pieces, weights, merge_pieces)
    assert argmax_links(merged[:-1]) == {(1, 0), (2, 1)}  # "big" beats "a" for "x"


def _run_and_test_set(tmp_path: Path) -> tuple[Run, SplitPaths, list[str]]:
    run_dir = make_run(tmp_path / "run")
    src, tgt = tmp_path / "test.src", tmp_path / "test.tgt"
    sources = SENTENCES[:6]
    targets = [" ".join(reversed(s.split()))[: 3 * len(s)] for s in sources]
    src.write_text("".join(s + "\n" for s in sources), encoding="utf-8")
    tgt.write_text("".join(t + "\n" for t in targets), encoding="utf-8")
    return Run.load(run_dir, device="cpu"), SplitPaths(src=str(src), tgt=str(tgt)), targets


def test_forced_attention_is_the_teacher_forced_forward_of_each_pair(tmp_path: Path) -> None:
    """Batched and padded, each pair's attention equals its own forward pass, and every
    row is a distribution over its real source words (padding-invariance)."""
    run, split, _ = _run_and_test_set(tmp_path)
    corpus = load_corpus(
        split, "test", run.src_tok, run.tgt_tok, run.config.data, tmp_path / "cache", False
    )
    attention = forced_attention(run.model, corpus, 10_000, run.device)
    assert attention is not None and len(attention) == len(corpus)
    for k, weights in enumerate(attention):
        assert weights.shape == (len(corpus.tgt(k)) + 1, len(corpus.src(k)))  # (T + 1, S)
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
        src = torch.tensor([corpus.src(k).tolist()])
        tgt_in = torch.tensor([[run.model.bos_id, *corpus.tgt(k).tolist()]])
        with torch.no_grad():
            _, alone = run.model(src, torch.tensor([src.size(1)]), tgt_in)
        assert alone is not None
        np.testing.assert_allclose(weights, alone[0].numpy(), atol=1e-5)
    links = word_links(attention, corpus, run.src_tok, run.tgt_tok, "argmax")
    assert [len(found) for found in links] == [len(corpus.tgt(k)) for k in range(len(corpus))]


def test_evaluate_alignment_scores_gold_and_checks_it(tmp_path: Path) -> None:
    run, split, targets = _run_and_test_set(tmp_path)
    corpus = load_corpus(
        split, "test", run.src_tok, run.tgt_tok, run.config.data, tmp_path / "cache", False
    )
    attention = forced_attention(run.model, corpus, 10_000, run.device)
    assert attention is not None
    found = word_links(attention, corpus, run.src_tok, run.tgt_tok, "argmax")
    gold = tmp_path / "gold.align"
    gold.write_text("".join(GoldAlignment.of(f).pharaoh() + "\n" for f in found), "utf-8")
    scores = evaluate_alignment(run, split, gold)  # its own links as gold: perfect
    assert scores is not None and scores.aer == 0.0
    assert scores.links == sum(len(f) for f in found) == sum(len(t.split()) for t in targets)
    gold.write_text("0-0\n" * 5, encoding="utf-8")
    with pytest.raises(UserError, match="5 lines but the test set has 6"):
        evaluate_alignment(run, split, gold)
    gold.write_text("0-99\n" * 6, encoding="utf-8")
    with pytest.raises(UserError, match=r"gold.align:1: link 0-99 is out of range"):
        evaluate_alignment(run, split, gold)
    no_attention = Run.load(make_run(tmp_path / "plain", decoder="none"), device="cpu")
    gold.write_text("0-0\n" * 6, encoding="utf-8")
    assert evaluate_alignment(no_attention, split, gold) is None


def test_evaluate_command_reports_aer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, split, _ = _run_and_test_set(tmp_path)
    gold = tmp_path / "gold.align"
    gold.write_text("0-0 1-1\n" * 6, encoding="utf-8")
    args = ["evaluate", "--model", str(run.run_dir), "--src", str(split.src)]
    args += ["--ref", str(split.tgt), "--align", str(gold), "--json", "--device", "cpu"]
    assert main(args) == 0
    argmax = json.loads(capsys.readouterr().out)
    assert 0.0 <= argmax["aer"] <= 1.0 and 0.0 <= argmax["align_recall"] <= 1.0
    assert main([*args, "--align-rule", "threshold", "--align-threshold", "1.01"]) == 0
    nothing = json.loads(capsys.readouterr().out)  # no weight reaches 1.01: no links
    assert nothing["aer"] == 1.0 and nothing["align_recall"] == 0.0
