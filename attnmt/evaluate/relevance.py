"""Relevance without people: does the model's score pick the true reply among replies to
other messages? Hits@1 among 20 candidates and the mean reciprocal rank, as in ConvAI2
and PersonaChat (Zhang et al. 2018; Dinan et al. 2019).

Each ranked pair i (a source x_i: the context turns and the message m_i; its true reply
y_i) gets 19 distractors: replies of the same split from *other conversations*, never
empty and never equal to y_i (compared word by word, as :mod:`attnmt.evaluate.dialogue`
compares replies), drawn without replacement with a fixed seed. The model scores each of
the 20 candidates c by teacher forcing (:func:`attnmt.search.forced.sequence_log_probs`):

    sum   s(c) = log p(c | x_i)                  summed over c's tokens and EOS (headline)
    mean  s(c) = log p(c | x_i) / (|c| + 1)      per token, EOS included
    mmi   s(c) = (1 - λ) log p(c | x_i) + λ log p(m_i | c) + γ words(c)
                                                 with a backward model (MMI-bidi,
                                                 :mod:`attnmt.translate.rerank`)

    rank_i = 1 + |{distractors d of i : s(d) >= s(y_i)}|     a tie counts against y_i
    hits@1 = mean_i [rank_i = 1]          MRR = mean_i 1 / rank_i

By chance hits@1 is 1/20 = 0.05 and MRR is H_20 / 20 ≈ 0.18. The draw depends only on
the split (its replies and conversation ids), the seed and the number of ranked pairs, so
runs evaluated on one split rank the same candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from attnmt.config import RerankOptions
from attnmt.data.chitchat import last_turn
from attnmt.data.corpus import TokenizedCorpus
from attnmt.errors import UserError
from attnmt.evaluate.dialogue import words
from attnmt.search.forced import sequence_log_probs
from attnmt.translate.rerank import Reranker, mmi_score
from attnmt.translate.translator import Translator

CANDIDATES = 20  # the true reply and 19 distractors
SEED = 1  # the distractors' seed: every run ranks the same candidates


def draw_candidates(
    conversations: Sequence[str],
    replies: Sequence[str],
    *,
    candidates: int = CANDIDATES,
    pairs: int | None = None,
    seed: int = SEED,
) -> np.ndarray:
    """(P, candidates) indices of the split's pairs whose replies are the candidates of
    each ranked pair: column 0 the pair itself (its true reply), then the distractors.

    Every pair with a non-empty reply is ranked, or `pairs` of them drawn by `seed`
    (in split order). A one-line UserError when a pair has too few distractors."""
    if len(conversations) != len(replies):
        raise UserError(
            f"{len(conversations)} conversation ids for {len(replies)} pairs; the .ids file "
            "must be line-aligned with the source (attnmt data chitchat writes one)"
        )
    keys = [" ".join(words(reply)) for reply in replies]
    _, reply_codes = np.unique(np.asarray(keys, dtype=object), return_inverse=True)  # (N,)
    _, conv_codes = np.unique(np.asarray(conversations, dtype=object), return_inverse=True)
    usable = np.asarray([bool(key) for key in keys])  # (N,) a non-empty reply
    rng = np.random.default_rng(seed)
    ranked = np.flatnonzero(usable)
    if pairs is not None and pairs < len(ranked):
        ranked = np.sort(rng.choice(ranked, size=pairs, replace=False))
    rows = []
    for i in ranked:
        pool = np.flatnonzero(
            usable & (conv_codes != conv_codes[i]) & (reply_codes != reply_codes[i])
        )
        if len(pool) < candidates - 1:
            raise UserError(
                f"pair {i + 1} has {len(pool)} replies from other conversations to rank "
                f"against; hits@1 needs {candidates - 1}"
            )
        rows.append([i, *rng.choice(pool, size=candidates - 1, replace=False)])
    return np.asarray(rows, dtype=np.int64).reshape(-1, candidates)


def rank_of_true(scores: np.ndarray) -> np.ndarray:
    """(P, C) scores, column 0 the true reply's -> (P,) its rank: 1 + the distractors
    scoring at least as much."""
    return 1 + (scores[:, 1:] >= scores[:, :1]).sum(axis=1)


@dataclass(frozen=True)
class Relevance:
    """Every ranked pair's candidates and their scores, so that any rule (and any λ, γ)
    ranks them without scoring again. Arrays are (P, C), column 0 the true reply."""

    candidates: np.ndarray  # pair indices of the candidate replies
    forward: np.ndarray  # log p(c | x_i), summed over c's tokens and EOS
    tokens: np.ndarray  # |c| + 1: the forward model's tokens of c, EOS included
    words: np.ndarray  # whitespace words of c
    backward: np.ndarray | None  # log p(m_i | c) under a backward model, if one was given

    def ranks(self, rule: str = "sum", rerank: RerankOptions | None = None) -> np.ndarray:
        """The true reply's rank in each row by `rule`: sum, mean or mmi (`rerank` gives
        λ and γ)."""
        if rule == "sum":
            return rank_of_true(self.forward)
        if rule == "mean":
            return rank_of_true(self.forward / self.tokens)
        if rule == "mmi" and self.backward is not None and rerank is not None:
            combined = np.vectorize(lambda f, b, w: mmi_score(f, b, int(w), rerank))
            return rank_of_true(combined(self.forward, self.backward, self.words))
        raise ValueError(f"cannot rank by {rule!r} here")

    def scores(self, rerank: RerankOptions | None = None) -> dict[str, float]:
        """hits_1 and mrr (by the summed log-probability), hits_1_mean and mrr_mean (per
        token), with a backward model and `rerank` also hits_1_mmi and mrr_mmi; and
        ranked (the pairs ranked)."""
        rules = ["sum", "mean"] + (["mmi"] if self.backward is not None and rerank else [])
        found: dict[str, float] = {"ranked": float(len(self.candidates))}
        for rule in rules:
            ranks = self.ranks(rule, rerank)
            tail = "" if rule == "sum" else f"_{rule}"
            found[f"hits_1{tail}"] = float(np.mean(ranks == 1)) if len(ranks) else 0.0
            found[f"mrr{tail}"] = float(np.mean(1.0 / ranks)) if len(ranks) else 0.0
        return found


def relevance(
    translator: Translator,
    corpus: TokenizedCorpus,
    sources: Sequence[str],
    references: Sequence[str],
    conversations: Sequence[str],
    *,
    reranker: Reranker | None = None,
    pairs: int | None = None,
    seed: int = SEED,
) -> Relevance:
    """Score the candidates of each ranked pair of a dialogue split: `corpus` is the split
    tokenized by `translator`'s run, `sources` and `references` its lines, `conversations`
    each pair's conversation id. With `reranker`, also the backward log-probability of
    each pair's message given each candidate. Pairs are scored in batches of the run's
    train.batch_tokens."""
    candidates = draw_candidates(conversations, references, pairs=pairs, seed=seed)
    owners = np.repeat(candidates[:, 0], candidates.shape[1])  # (P*C,) the ranked pair
    flat = candidates.reshape(-1)  # (P*C,) the pair whose reply is the candidate
    pairs_corpus = TokenizedCorpus.from_ids(
        [corpus.src(int(i)).tolist() for i in owners], [corpus.tgt(int(j)).tolist() for j in flat]
    )
    batch_tokens = translator.config.train.batch_tokens
    forward = sequence_log_probs(
        translator.model, pairs_corpus, batch_tokens, translator.device, translator.dtype
    )
    shape = candidates.shape
    backward = None
    if reranker is not None:
        replies = [references[int(j)] for j in flat]
        messages = [last_turn(sources[int(i)]) for i in owners]
        backward = reranker.backward_log_probs(replies, messages).reshape(shape)
    return Relevance(
        candidates=candidates,
        forward=forward.reshape(shape),
        tokens=(corpus.tgt_lengths[flat] + 1).reshape(shape),
        words=np.asarray([len(references[int(j)].split()) for j in flat]).reshape(shape),
        backward=backward,
    )
