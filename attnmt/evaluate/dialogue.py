"""Dialogue metrics: how varied, how long and how generic the replies are.

BLEU against the one human reply says little about a chatbot: a message has many good
replies. Perplexity (the teacher-forced loss, as for translation, also per word:
:func:`attnmt.evaluate.metrics.word_perplexity`) says how well the model predicts human
replies, and hits@1 (:mod:`attnmt.evaluate.relevance`) whether its scores pick the true
reply. The numbers here say what the *decoding* produces:

    distinct-n = |distinct n-grams over all replies| / |n-grams over all replies|
                                                        (Li et al. 2016, section 4.3)
    unique     = |distinct replies| / |replies|
    generic    = |replies equal to one of the 10 most frequent replies that occur
                  more than once| / |replies|

A model that answers everything with "i don't know" has distinct-1 near 0 and a generic
share of 1; replies that never repeat a word have distinct-1 of 1, and replies that never
repeat have a generic share of 0. Beam search drives distinct-n down and the generic
share up; sampling does the opposite.

Words are lowercased runs of letters and digits, and each punctuation mark on its own:
"I don't know." -> i, don, ', t, know, . Replies are compared word by word, so "I don't
know." and "i don't know ." are the same reply.
"""

from __future__ import annotations

import re
from collections import Counter
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


GENERIC_TOP = 10
"""How many of the most frequent replies count as generic."""


def generic_share(replies: Sequence[str], top: int = GENERIC_TOP) -> float:
    """Share of `replies` that are one of the `top` most frequent replies, among those
    given more than once (replies compared word by word; 0 when there are none). A reply
    given once is never generic: for replies that never repeat the share is 0, whatever
    their number. Ties at the last place are broken by the reply's words, so the share
    does not depend on the order of the replies."""
    counts = Counter(" ".join(words(reply)) for reply in replies)
    repeated = sorted((-count, reply) for reply, count in counts.items() if count > 1)
    return sum(-count for count, _ in repeated[:top]) / max(len(replies), 1)


def dialogue_metrics(replies: Sequence[str]) -> dict[str, float]:
    """distinct_1, distinct_2, reply_len (mean words per reply), unique (distinct
    replies, compared word by word, over all replies: 1 when none is repeated) and
    generic (:func:`generic_share`)."""
    lengths = [len(words(reply)) for reply in replies]
    count = max(len(replies), 1)
    return {
        "distinct_1": distinct_n(replies, 1),
        "distinct_2": distinct_n(replies, 2),
        "reply_len": sum(lengths) / count,
        "unique": len({" ".join(words(reply)) for reply in replies}) / count,
        "generic": generic_share(replies),
    }
