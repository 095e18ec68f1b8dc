"""Numbers for studying a translation model: quality by sentence length, how attention
is spread (entropy) and ordered (monotonicity), and attention merged from pieces to words.

Plain Python and numpy in, plain numbers out: no plotting and no training code here, so
reports, commands and notebooks can all use these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sacrebleu.metrics import BLEU, CHRF

from attnmt.translate.words import as_matrix

LENGTH_EDGES = (0, 10, 20, 30, 40, 50, 60)  # source-length bucket edges, in tokens


def bucket_label(low: int, high: int | None) -> str:
    """ "10-19" for the lengths 10 <= n < 20; "60+" for an open last bucket."""
    return f"{low}+" if high is None else f"{low}-{high - 1}"


def bleu_by_length(
    src_lengths: Sequence[int],
    hypotheses: Sequence[str],
    references: Sequence[str],
    edges: Sequence[int] = LENGTH_EDGES,
) -> list[dict[str, Any]]:
    """Corpus BLEU and chrF for each source-length bucket (Bahdanau et al. 2015, Fig. 2).

    Bucket i holds the sentences with edges[i] <= source length < edges[i+1]; the last
    bucket is open (edges[-1] and longer). Every bucket is returned, empty ones with
    count 0 and scores None, so runs scored with the same edges line up row by row.

    Args:
        src_lengths: length of each source sentence, in whatever unit the edges use.
        hypotheses: detokenized system outputs, one per sentence.
        references: detokenized references, one per sentence.
        edges: strictly increasing lower bucket edges; every length must be >= edges[0].

    Returns:
        One dict per bucket: {"bucket": "10-19", "low": 10, "high": 20 (None if open),
        "count": sentences, "bleu": sacrebleu corpus BLEU, "chrf": corpus chrF}.
    """
    if not len(src_lengths) == len(hypotheses) == len(references):
        raise ValueError(
            f"got {len(src_lengths)} lengths, {len(hypotheses)} hypotheses and "
            f"{len(references)} references; they must match"
        )
    if not edges or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)):
        raise ValueError(f"bucket edges must be non-empty and strictly increasing: {edges}")
    if src_lengths and min(src_lengths) < edges[0]:
        raise ValueError(f"a source length {min(src_lengths)} is below the first edge {edges[0]}")
    bleu, chrf = BLEU(), CHRF()
    rows = []
    for low, high in zip(edges, [*edges[1:], None], strict=True):
        chosen = [i for i, n in enumerate(src_lengths) if n >= low and (high is None or n < high)]
        hyps = [hypotheses[i] for i in chosen]
        refs = [[references[i] for i in chosen]]
        rows.append(
            {
                "bucket": bucket_label(low, high),
                "low": low,
                "high": high,
                "count": len(chosen),
                "bleu": bleu.corpus_score(hyps, refs).score if chosen else None,
                "chrf": chrf.corpus_score(hyps, refs).score if chosen else None,
            }
        )
    return rows


def attention_entropy(weights_list: Sequence[npt.ArrayLike]) -> float:
    """Mean entropy of the attention rows, in nats, over every target token of every sentence.

        H_t = -Σ_j α_tj log α_tj      (0 log 0 = 0)

    Each row is one target token's distribution over its sentence's S source positions,
    so H_t lies between 0 (all weight on one position) and log S (uniform). Every row
    counts equally, so longer sentences weigh more; pass exactly the rows you want
    measured (decoding output includes the EOS step's row).

    Args:
        weights_list: one (T_i, S_i) weight matrix per sentence.
    """
    matrices = [as_matrix(weights) for weights in weights_list]
    rows = sum(matrix.shape[0] for matrix in matrices)
    if rows == 0:
        raise ValueError("attention_entropy needs at least one attention row")
    total = 0.0
    for matrix in matrices:
        logs = np.log(np.where(matrix > 0, matrix, 1.0))  # log 1 = 0 where α = 0
        total += float(-(matrix * logs).sum())
    return total / rows


def monotonicity(weights_list: Sequence[npt.ArrayLike]) -> float:
    """Share of target tokens that attend at or after where the previous token attended.

    With a_t = argmax_j α_tj (the first maximum on ties), target token t >= 1 (0-based)
    counts as monotonic when a_t >= a_{t-1}. The first token of each sentence has no
    predecessor and is excluded from numerator and denominator:

        monotonicity = #{(i, t): t >= 1, a_it >= a_i,t-1} / Σ_i (T_i - 1)

    So a diagonal (identity) alignment gives 1.0 and a fully reversed one gives 0.0;
    staying on the same source word counts as monotonic. Sentences with a single row
    add nothing. As with :func:`attention_entropy`, pass exactly the rows to measure.

    Args:
        weights_list: one (T_i, S_i) weight matrix per sentence.
    """
    steps = forward = 0
    for weights in weights_list:
        argmax = as_matrix(weights).argmax(axis=1)  # (T,)
        steps += max(len(argmax) - 1, 0)
        forward += int((argmax[1:] >= argmax[:-1]).sum())
    if steps == 0:
        raise ValueError("monotonicity needs a sentence with at least two attention rows")
    return forward / steps
