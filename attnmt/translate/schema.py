"""A translation and its output formats: the :class:`Translation` record, the one JSON
schema, and the text lines.

The JSON record of one translated sentence, shared by ``attnmt translate --format json``
and ``POST /translate`` of ``attnmt serve``::

    {
      "text": "ein hund",                 # the best translation, detokenised
      "score": -1.93,                     # log p(tokens + EOS | source), no penalties
      "rank_score": -1.47,                # what search ranked by (penalties included)
      "tokens": ["▁ein", "▁hund"],        # output tokens (pieces, or words if asked)
      "source_tokens": ["▁a", "▁dog"],    # source tokens, the same unit
      "unknown": [],                      # positions in source_tokens the model read as
                                          # the unknown piece; in words, such a word
                                          # shows what was written, not "<unk>"
      "attention": [[...], ...],          # (len(tokens) + 1) × len(source_tokens): one
                                          # row per output token and one for EOS; null
                                          # without attention (or when not asked for)
      "attention_heads": [[[[...]]]],     # only for models that give heads: layers ×
                                          # heads × rows × columns, like "attention"
      "hypotheses": [                     # the n-best list, best first (the first is the
        {"text", "score", "rank_score",   # translation above again)
         "tokens", "attention"[, "attention_heads"]}
      ]
    }

Weights are rounded to 4 decimals. In word units, the pieces of a word are merged by
:meth:`Translation.word_attention`'s rule (source columns summed, target rows averaged),
so every row stays a distribution.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from attnmt.data.tokenize import merge_pieces
from attnmt.errors import UserError
from attnmt.translate.words import (
    merge_labels,
    merge_stack,
    read_labels,
    unknown_units,
    word_attention,
)

UNITS = ("pieces", "words")  # what a row or column of the attention stands for


@dataclass(eq=False)  # compared by identity: numpy arrays have no single truth value
class Translation:
    """One translated sentence: the best hypothesis, and the n-best list it heads."""

    text: str  # the detokenised output
    tokens: list[str]  # output pieces for display (a piece that starts a word has "▁")
    src_tokens: list[str]  # source pieces for display
    score: float  # log p(tokens + EOS | source) under the model, no penalties
    rank_score: float  # what search ranked by: score / lp(Y) + cp(X; Y)
    attention: np.ndarray | None = field(repr=False)
    """(len(tokens) + 1, len(src_tokens)): one row per output piece and one for EOS, each a
    distribution over the source pieces; None for a model without attention."""
    hypotheses: list[Translation] = field(default_factory=list, repr=False)
    """The n-best list, best first; the first is this translation again. The entries have no
    hypotheses of their own."""
    attention_heads: np.ndarray | None = field(default=None, repr=False)
    """(layers, heads, len(tokens) + 1, len(src_tokens)): the cross-attention of every
    decoder layer and head (one layer for the RNN family), teacher-forced on this output.
    `attention` is the mean over the heads of the last layer. Filled only when asked
    (``translate(..., heads=True)``); None otherwise, without attention, or for an
    ensemble."""
    encoder_attention: np.ndarray | None = field(default=None, repr=False)
    """(layers, heads, len(src_tokens), len(src_tokens)): source self-attention, row i
    attending over the source; with ``heads=True``, for models that have it."""
    decoder_attention: np.ndarray | None = field(default=None, repr=False)
    """(layers, heads, len(tokens) + 1, len(tokens) + 1): causal target self-attention; row
    t is the step that outputs token t (the last: EOS), column j the decoder input j
    ("<s>", then the tokens). With ``heads=True``, for models that have it."""
    src_surface: list[str] | None = field(default=None, repr=False)
    """The text each source piece stands for (``Tokenizer.surfaces``), where the source
    text is known: how a word read as the unknown piece is shown. None: not known."""

    def words(self) -> tuple[list[str], list[str]]:
        """(source words, output words): the pieces joined into words."""
        return (
            merge_labels(self.src_tokens, merge_pieces(self.src_tokens)),
            merge_labels(self.tokens, merge_pieces(self.tokens)),
        )

    def word_attention(self) -> tuple[list[str], list[str], np.ndarray]:
        """(source words, target words + "</s>", merged weights): the piece-level attention
        merged into words by :func:`attnmt.translate.words.word_attention`, with
        ``tokenize.merge_pieces`` finding the words (source columns summed, target rows
        averaged, so each row stays a distribution)."""
        if self.attention is None:
            raise UserError("this model has no attention to merge")
        if not self.src_tokens:  # an empty source: only the EOS row, with no columns
            return [], ["</s>"], np.zeros((1, 0))
        return word_attention(self.src_tokens, self.tokens, self.attention, merge_pieces)

    def word_heads(self) -> np.ndarray | None:
        """``attention_heads`` merged into words head by head, like :meth:`word_attention`:
        (layers, heads, words + 1, source words); None when the heads were not asked for."""
        if self.attention_heads is None:
            return None
        tgt_groups = [*merge_pieces(self.tokens), [len(self.tokens)]]  # + the EOS row
        return merge_stack(
            np.asarray(self.attention_heads), merge_pieces(self.src_tokens), tgt_groups
        )

    def to_dict(self, units: str = "pieces", attention: bool = True) -> dict[str, Any]:
        """The one JSON record of this translation (``attnmt translate --format json`` and
        ``attnmt serve``): the module docstring. `units`: pieces or words."""
        return to_dict(self, units, attention)


def rounded(attention: np.ndarray | None) -> Any:
    """Weights as nested lists of floats with 4 decimals (None stays None)."""
    return None if attention is None else np.round(attention.astype(np.float64), 4).tolist()


def _word_groups(
    src_tokens: Sequence[str], tokens: Sequence[str]
) -> tuple[list[list[int]], list[list[int]]]:
    """(source groups, target groups + the EOS row's own group): which pieces form words."""
    return merge_pieces(src_tokens), [*merge_pieces(tokens), [len(tokens)]]


def hypothesis_record(hypothesis: Translation, units: str, attention: bool) -> dict[str, Any]:
    """The fields of one hypothesis: text, score, rank_score, tokens, attention (+ heads),
    in `units`; attention over its source in the same units, without it when not
    `attention`."""
    tokens = list(hypothesis.tokens)
    weights = hypothesis.attention if attention else None
    heads = getattr(hypothesis, "attention_heads", None) if attention else None
    if units == "words":
        src_groups, tgt_groups = _word_groups(hypothesis.src_tokens, tokens)
        tokens = merge_labels(tokens, tgt_groups[:-1])
        weights = None if weights is None else merge_stack(weights, src_groups, tgt_groups)
        heads = None if heads is None else merge_stack(np.asarray(heads), src_groups, tgt_groups)
    record: dict[str, Any] = {
        "text": hypothesis.text,
        "score": hypothesis.score,
        "rank_score": hypothesis.rank_score,
        "tokens": tokens,
        "attention": rounded(weights),
    }
    if heads is not None:
        record["attention_heads"] = rounded(np.asarray(heads))
    return record


def to_dict(result: Translation, units: str = "pieces", attention: bool = True) -> dict[str, Any]:
    """The JSON record of one translation (see the module docstring).

    Args:
        result: a translation from :meth:`Translator.translate`.
        units: ``pieces`` (the model's tokens) or ``words`` (pieces merged into words).
        attention: include the attention weights (else ``attention`` is null).
    """
    if units not in UNITS:
        raise ValueError(f"units must be one of {', '.join(UNITS)}, got {units!r}")
    source = list(result.src_tokens)
    if units == "words":
        source, unknown = read_labels(source, merge_pieces(source), result.src_surface)
    else:
        unknown = unknown_units(source, [[i] for i in range(len(source))])
    best = hypothesis_record(result, units, attention)
    hypotheses = result.hypotheses or [result]
    return {
        "text": best["text"],
        "score": best["score"],
        "rank_score": best["rank_score"],
        "tokens": best["tokens"],
        "source_tokens": source,
        "unknown": unknown,
        "attention": best["attention"],
        **({"attention_heads": best["attention_heads"]} if "attention_heads" in best else {}),
        "hypotheses": [hypothesis_record(h, units, attention) for h in hypotheses],
    }


def as_json(result: Translation, units: str = "pieces") -> str:
    """One JSON line for one input: :func:`to_dict` with the attention."""
    return json.dumps(to_dict(result, units), ensure_ascii=False) + "\n"


def as_text(index: int, result: Translation, n_best: int) -> str:
    """The translation as a line; with n_best > 1, `INDEX ||| TEXT ||| SCORE` lines."""
    if n_best == 1:
        return result.text + "\n"
    return "".join(f"{index} ||| {h.text} ||| {h.score:.4f}\n" for h in result.hypotheses)


def formatter(
    output_format: str, n_best: int, units: str = "pieces"
) -> Callable[[int, Translation], str]:
    """(input index, translation) -> output lines, in the chosen format."""
    if output_format == "json":
        return lambda _, result: as_json(result, units)
    return lambda index, result: as_text(index, result, n_best)
