"""Study numbers: BLEU by source length, attention entropy and monotonicity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sacrebleu
import torch

from attnmt.evaluate.study import attention_entropy, bleu_by_length, monotonicity

REFERENCES = [
    "the cat sat on the mat",
    "a dog barks at night",
    "it is raining today in the city",
    "we went home early",
    "the children played in the park all afternoon",
    "she reads a book",
    "they will arrive tomorrow morning by train",
]
HYPOTHESES = [
    "the cat sat on a mat",
    "a dog barks in the night",
    "it rains today in the city",
    "we went home early",
    "children were playing in the park all afternoon",
    "she is reading the book",
    "they arrive tomorrow by train",
]
SRC_LENGTHS = [3, 12, 25, 7, 14, 9, 31]


def test_bleu_by_length_equals_sacrebleu_on_each_bucket() -> None:
    edges = (0, 10, 20)
    rows = bleu_by_length(SRC_LENGTHS, HYPOTHESES, REFERENCES, edges)
    assert [(r["bucket"], r["low"], r["high"]) for r in rows] == [
        ("0-9", 0, 10),
        ("10-19", 10, 20),
        ("20+", 20, None),
    ]
    for row in rows:
        chosen = [
            i
            for i, n in enumerate(SRC_LENGTHS)
            if n >= row["low"] and (row["high"] is None or n < row["high"])
        ]
        hyps = [HYPOTHESES[i] for i in chosen]
        refs = [[REFERENCES[i] for i in chosen]]
        assert row["count"] == len(chosen) > 0
        assert row["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, refs).score)
        assert row["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, refs).score)
    assert sum(row["count"] for row in rows) == len(SRC_LENGTHS)


def test_empty_buckets_are_kept_with_no_score() -> None:
    rows = bleu_by_length(SRC_LENGTHS, HYPOTHESES, REFERENCES, edges=(0, 40, 50))
    assert [r["count"] for r in rows] == [len(SRC_LENGTHS), 0, 0]
    assert rows[1]["bleu"] is None and rows[2]["chrf"] is None


@pytest.mark.parametrize(
    ("lengths", "edges", "message"),
    [
        (SRC_LENGTHS, (0, 10, 10), "increasing"),
        (SRC_LENGTHS, (), "increasing"),
        (SRC_LENGTHS, (5, 10), "below"),
        (SRC_LENGTHS[:3], (0, 10), "must match"),
    ],
)
def test_bleu_by_length_rejects_bad_input(lengths: list[int], edges: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bleu_by_length(lengths, HYPOTHESES, REFERENCES, edges)


def test_entropy_is_log_s_for_uniform_rows_and_zero_for_one_hot_rows() -> None:
    assert attention_entropy([np.full((4, 5), 1 / 5)]) == pytest.approx(math.log(5))
    assert attention_entropy([np.eye(6)[[2, 0, 5]]]) == 0.0
    # every row counts once: one uniform row over 2 and three over 4
    mixed = [np.full((1, 2), 1 / 2), np.full((3, 4), 1 / 4)]
    assert attention_entropy(mixed) == pytest.approx((math.log(2) + 3 * math.log(4)) / 4)


def test_entropy_matches_the_formula_on_random_rows() -> None:
    rng = np.random.default_rng(0)
    weights = [rng.dirichlet(np.ones(s), size=t) for t, s in [(3, 4), (5, 2), (1, 7)]]
    rows = [row for matrix in weights for row in matrix]
    expected = np.mean([-sum(p * math.log(p) for p in row) for row in rows])
    assert attention_entropy(weights) == pytest.approx(expected)
    assert attention_entropy([torch.from_numpy(w) for w in weights]) == pytest.approx(expected)
    with pytest.raises(ValueError):
        attention_entropy([])


def test_monotonicity_of_identity_reversed_and_mixed_alignments() -> None:
    assert monotonicity([np.eye(5), np.eye(3)]) == 1.0
    assert monotonicity([np.eye(5)[::-1]]) == 0.0  # the first token is excluded
    # argmax positions 0, 2, 1, 1, 3: steps up, down, same, up -> 3 of 4 monotonic
    hand = np.eye(4)[[0, 2, 1, 1, 3]] * 0.7 + 0.3 / 4
    assert monotonicity([hand]) == pytest.approx(3 / 4)
    # sentences are pooled by target token, not averaged per sentence
    assert monotonicity([np.eye(5), np.eye(3)[::-1]]) == pytest.approx(4 / 6)


def test_monotonicity_needs_two_rows() -> None:
    assert monotonicity([np.eye(3)[:1], np.eye(3)]) == 1.0  # one-row sentence adds nothing
    with pytest.raises(ValueError, match="two"):
        monotonicity([np.eye(3)[:1]])
