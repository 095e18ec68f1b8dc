"""Dialogue metrics: how varied and how long the replies are.

BLEU against the one human reply says little about a chatbot: a message has many good
replies. Perplexity (the teacher-forced loss, as for translation) says how well the
model predicts human replies. The numbers here say what the *decoding* produces:

    distinct-n = |distinct n-grams over all replies| / |n-grams over all replies|
                                                        (Li et al. 2016, section 4.3)

A model that answers everything with "i don't know" has distinct-1 near 0; replies that
never repeat a word have 1. Beam search drives distinct-n down; sampling drives it up.

Words are lowercased runs of letters and digits, and each punctuation mark on its own:
"I don't know." -> i, don, ', t, know, .
"""

from __future__ import annotations

import re
from collections.abc import Sequence

WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """The words distinct-n and the reply length count (see the module doc)."""
    return WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(replies: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams of all `replies` (0 when there are none)."""
    grams = [gram for reply in replies for gram in ngrams(words(reply), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def dialogue_metrics(replies: Sequence[str]) -> dict[str, float]:
    """distinct_1, distinct_2, reply_len (mean words per reply) and unique (distinct
    replies, compared word by word, over all replies: 1 when none is repeated)."""
    lengths = [len(words(reply)) for reply in replies]
    count = max(len(replies), 1)
    return {
        "distinct_1": distinct_n(replies, 1),
        "distinct_2": distinct_n(replies, 2),
        "reply_len": sum(lengths) / count,
        "unique": len({" ".join(words(reply)) for reply in replies}) / count,
    }
