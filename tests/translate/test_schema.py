"""The one JSON record of a translation (`Translation.to_dict`): pieces and words, the
n-best list, and per-head attention for models that give it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from attnmt.translate.schema import Translation, as_json, to_dict
from attnmt.translate.words import merge_attention


def rows(t: int, s: int, seed: int) -> np.ndarray:
    """(t, s) random rows that each sum to 1."""
    weights = np.random.default_rng(seed).random((t, s))
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def translation(heads: bool) -> Translation:
    """ "▁the ▁red ▁ca t" -> "▁die ▁rot e ▁katze", with an n-best list of two."""
    src = ["▁the", "▁red", "▁ca", "t"]
    best = Translation(
        "die rote katze", ["▁die", "▁rot", "e", "▁katze"], src, -1.5, -1.2, rows(5, 4, 0)
    )
    other = Translation("die katze", ["▁die", "▁katze"], src, -2.5, -2.0, rows(3, 4, 1))
    if heads:  # what a family with heads adds: (layers, heads, T + 1, S)
        best.attention_heads = np.stack(
            [np.stack([rows(5, 4, 2 + h + 2 * layer) for h in range(2)]) for layer in range(3)]
        )  # type: ignore[attr-defined]
        other.attention_heads = np.stack([np.stack([rows(3, 4, 9 + h) for h in range(2)])] * 3)  # type: ignore[attr-defined]
    result = dataclasses.replace(best, hypotheses=[best, other])
    if heads:
        result.attention_heads = best.attention_heads  # type: ignore[attr-defined]
    return result


def test_pieces_record_has_the_schema_keys() -> None:
    record = to_dict(translation(heads=False))
    assert list(record) == [
        "text", "score", "rank_score", "tokens", "source_tokens", "unknown", "attention",
        "hypotheses",
    ]  # fmt: skip
    assert record["source_tokens"] == ["▁the", "▁red", "▁ca", "t"]
    assert np.array(record["attention"]).shape == (5, 4)
    assert [h["text"] for h in record["hypotheses"]] == ["die rote katze", "die katze"]
    assert json.loads(as_json(translation(heads=False))) == record


def test_words_merge_pieces_and_rows_stay_distributions() -> None:
    result = translation(heads=False)
    record = to_dict(result, units="words")
    assert record["source_tokens"] == ["the", "red", "cat"]
    assert record["tokens"] == ["die", "rote", "katze"]
    expected = merge_attention(result.attention, [[0], [1], [2, 3]], [[0], [1, 2], [3], [4]])
    assert np.allclose(record["attention"], expected, atol=1e-4)
    for hypothesis in record["hypotheses"]:
        assert np.allclose(np.sum(hypothesis["attention"], axis=1), 1.0, atol=1e-3)


@pytest.mark.parametrize("units", ["pieces", "words"])
def test_heads_are_kept_and_merged_head_by_head(units: str) -> None:
    result = translation(heads=True)
    record = to_dict(result, units=units)
    heads = np.array(record["attention_heads"])
    columns = 4 if units == "pieces" else 3
    assert heads.shape == (3, 2, len(record["tokens"]) + 1, columns)
    assert np.allclose(heads.sum(axis=-1), 1.0, atol=1e-3)
    if units == "words":
        one = merge_attention(
            result.attention_heads[1, 0],  # type: ignore[attr-defined]
            [[0], [1], [2, 3]],
            [[0], [1, 2], [3], [4]],
        )
        assert np.allclose(heads[1, 0], one, atol=1e-4)
    assert all("attention_heads" in h for h in record["hypotheses"])
    assert "attention_heads" not in to_dict(translation(heads=False))


def test_without_attention_and_bad_units() -> None:
    record = to_dict(translation(heads=True), attention=False)
    assert record["attention"] is None and "attention_heads" not in record
    with pytest.raises(ValueError, match="units must be one of pieces, words"):
        to_dict(translation(heads=False), units="letters")


def test_a_word_read_as_unknown_shows_as_written() -> None:
    """In words, a word with the unknown piece shows its surface text (when known) and is
    listed in "unknown"; in pieces, the piece stays and its position is listed. The
    attention keeps one column per unit either way."""
    src = ["▁the", "▁", "<unk>", "s", "▁cat"]
    best = Translation("x", ["▁x"], src, -1.0, -1.0, np.full((2, 5), 0.2))
    for surface, shown in ((["the", " ", "ö", "s", " cat"], "ös"), (None, "<unk>s")):
        best.src_surface = surface
        words = to_dict(best, "words")
        assert words["source_tokens"] == ["the", shown, "cat"] and words["unknown"] == [1]
        assert np.array(words["attention"]).shape == (2, 3)
        pieces = to_dict(best, "pieces")
        assert pieces["source_tokens"] == src and pieces["unknown"] == [2]
