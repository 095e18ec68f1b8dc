"""MMI-bidi reranking (Li et al. 2016, "A Diversity-Promoting Objective Function for
Neural Conversation Models", sec. 4): a backward model picks, among a dialogue run's
candidate replies T to a message S, the one that best explains the message.

    score(T) = (1 - λ) log p(T | S) + λ log p(S | T) + γ |T|

- log p(T | S): the forward (dialogue) run's log-probability of the reply, summed over
  its tokens and EOS, as search found it (the candidate's ``score``);
- log p(S | T): the backward run's (``data.task: dialogue_backward``) log-probability of
  the user's message, without the older context, given the reply: summed the same way,
  by teacher forcing (:func:`attnmt.search.forced.sequence_log_probs`);
- |T|: the reply's whitespace words; λ = ``rerank.mmi_weight``, γ = ``rerank.length_bonus``
  (:class:`attnmt.config.RerankOptions`).

A generic reply ("i don't know") is likely under p(T | S) whatever S is, but says
little about S, so p(S | T) is low: the backward term favours replies that answer *this*
message. The two models keep their own tokenizers: they meet only as text.

Candidates with the same text are merged before scoring (the first, best-ranked by
search, is kept), and so are empty ones while a non-empty candidate is left: an empty
reply explains nothing. The backward model scores every candidate of a turn in one
batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnmt.config import RerankOptions
from attnmt.data.corpus import TokenizedCorpus
from attnmt.errors import UserError
from attnmt.io.run import Run
from attnmt.search.forced import sequence_log_probs
from attnmt.translate.schema import Translation
from attnmt.translate.translator import Translator

TRAIN_HINT = "attnmt data chitchat && attnmt train configs/chitchat_backward.yaml"


def mmi_score(forward: float, backward: float, words: int, options: RerankOptions) -> float:
    """(1 - λ)·forward + λ·backward + γ·words; the backward term is left out at λ = 0."""
    score = (1.0 - options.mmi_weight) * forward + options.length_bonus * words
    if options.mmi_weight:
        score += options.mmi_weight * backward
    return score


@dataclass(frozen=True, eq=False)
class Candidate:
    """One candidate reply and its scores."""

    translation: Translation  # as search found it: text, tokens, attention
    forward: float  # log p(T | S) under the dialogue run, summed (EOS included)
    backward: float | None  # log p(S | T) under the backward run; None: not reranked
    score: float
    """What the candidates are ordered by: the MMI score when reranked, else search's
    own rank score (log p(T | S) with its length penalty)."""

    @property
    def text(self) -> str:
        return self.translation.text

    @property
    def words(self) -> int:
        """|T|: whitespace words of the reply."""
        return len(self.text.split())

    def to_dict(self) -> dict[str, Any]:
        """{"text", "forward", "backward", "score"}: the candidate as JSON."""
        return {
            "text": self.text,
            "forward": self.forward,
            "backward": self.backward,
            "score": self.score,
        }


def distinct_candidates(translations: Sequence[Translation]) -> list[Translation]:
    """`translations` (an n-best list, best first) with each text once, the first kept;
    empty texts dropped unless nothing else is left."""
    seen: dict[str, Translation] = {}
    for translation in translations:
        seen.setdefault(translation.text, translation)
    kept = [translation for text, translation in seen.items() if text.strip()]
    return kept or list(seen.values())[:1]


def plain_candidates(translations: Sequence[Translation]) -> list[Candidate]:
    """The distinct candidates as search ranked them, without a backward score."""
    return [
        Candidate(translation, translation.score, None, translation.rank_score)
        for translation in distinct_candidates(translations)
    ]


def check_backward(translator: Translator, name: str | Path) -> None:
    """Refuse, in one line, a run that is not a backward dialogue model."""
    task = translator.config.data.task
    if task != "dialogue_backward":
        raise UserError(
            f"{name} is not a backward dialogue model, so it cannot rerank (its data.task "
            f"is {task!r}, not 'dialogue_backward'); train one with: {TRAIN_HINT}"
        )


class Reranker:
    """A backward dialogue model p(S | T), ready to score and rerank candidate replies.

    Args:
        backward: the backward run's :class:`Translator` (its model, tokenizers, device).
        name: what to call it in messages (default: its run directory).
    """

    def __init__(self, backward: Translator, name: str | Path | None = None) -> None:
        self.name = str(name or backward.config.run_dir)
        check_backward(backward, self.name)
        self.backward = backward
        self.batch_tokens = backward.config.train.batch_tokens  # as its training batches

    @classmethod
    def load(
        cls, run: str | Path | Run | Reranker, *, device: str = "auto", which: str = "best"
    ) -> Reranker:
        """A backward run given as a directory, a loaded :class:`Run` or a Reranker."""
        if isinstance(run, Reranker):
            return run
        if isinstance(run, Run):
            translator, name = Translator.from_run(run), str(run.run_dir)
        else:
            translator, name = Translator.load(run, device=device, which=which), str(run)
        return cls(translator, name)

    def backward_log_probs(
        self, replies: Sequence[str], messages: Sequence[str], turns: Sequence[int] = ()
    ) -> np.ndarray:
        """log p(message_k | reply_k) under the backward model for every k: (N,) float64.
        Each side is tokenized by the backward run's own tokenizers; a reply must have a
        token. Batches hold at most the run's train.batch_tokens padded tokens, or more
        where `turns` (the turn of each row) has a turn that needs more: the rows of one
        turn fit in one batch, so a call for one turn is one forward pass."""
        src = [self.backward.src_tok.encode(reply) for reply in replies]
        tgt = [self.backward.tgt_tok.encode(message) for message in messages]
        if any(not row for row in src):
            raise ValueError("every reply to score needs at least one token")
        corpus = TokenizedCorpus.from_ids(src, tgt)
        widths = np.maximum(corpus.src_lengths, corpus.tgt_lengths + 1)  # as BatchSampler pads
        budget = self.batch_tokens
        for turn in set(turns):
            rows = np.flatnonzero(np.asarray(turns) == turn)
            budget = max(budget, len(rows) * int(widths[rows].max()))  # (rows, widest)
        backward = self.backward
        return sequence_log_probs(backward.model, corpus, budget, backward.device, backward.dtype)

    def rerank(
        self,
        messages: Sequence[str],
        candidates: Sequence[Sequence[Translation]],
        options: RerankOptions,
    ) -> list[list[Candidate]]:
        """For each message, its candidates (an n-best list from the forward run)
        merged (:func:`distinct_candidates`), scored and sorted best first by the MMI
        score. One backward pass for all of them, the candidates of a turn in one batch."""
        if len(messages) != len(candidates):
            raise ValueError(f"{len(messages)} messages for {len(candidates)} candidate lists")
        turns = [distinct_candidates(found) for found in candidates]
        rows = [
            (turn, translation)
            for turn, found in enumerate(turns)
            for translation in found
            if translation.text.strip()
        ]
        replies = [translation.text for _, translation in rows]
        asked = [messages[turn] for turn, _ in rows]
        turn_of = [turn for turn, _ in rows]
        scores = self.backward_log_probs(replies, asked, turn_of) if rows else np.zeros(0)
        backward = {
            id(translation): float(score)
            for (_, translation), score in zip(rows, scores, strict=True)
        }
        ranked = []
        for found in turns:
            scored = [self._candidate(t, backward.get(id(t)), options) for t in found]
            ranked.append(sorted(scored, key=lambda candidate: -candidate.score))
        return ranked

    def _candidate(
        self, translation: Translation, backward: float | None, options: RerankOptions
    ) -> Candidate:
        """A candidate with its MMI score; an unscored (empty) one keeps search's rank."""
        if backward is None:
            return Candidate(translation, translation.score, None, translation.rank_score)
        words = len(translation.text.split())
        score = mmi_score(translation.score, backward, words, options)
        return Candidate(translation, translation.score, backward, score)
