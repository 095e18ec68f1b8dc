"""The live rows of a search: one partial hypothesis each, with its tokens, score and
attention. Every search starts, steps, collects finished rows and prunes through here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from attnmt.models.interface import Seq2SeqModel
from attnmt.search.ranking import Hypothesis, coverage_penalty, length_penalty
from attnmt.search.rules import Rules


def finish(
    paths: Paths, src_lengths: Tensor, alpha: float, beta: float
) -> tuple[list[Hypothesis], Tensor]:
    """Hypotheses for paths whose last token is EOS, and their rank scores (R,)."""
    lengths = src_lengths.index_select(0, paths.sentence)  # (R,)
    steps = torch.full_like(lengths, paths.tokens.size(1))  # |Y|, EOS included
    ranks = paths.scores.double() / length_penalty(steps, alpha)
    ranks = ranks + coverage_penalty(paths.attention, lengths, beta)  # (R,)
    hypotheses = []
    columns = (paths.tokens.tolist(), paths.scores.tolist(), ranks.tolist(), lengths.tolist())
    weights = paths.attention.float() if paths.attention is not None else None  # (R, |Y|, S)
    for r, (tokens, score, rank, src_len) in enumerate(zip(*columns, strict=True)):
        attention = weights[r, :, :src_len].clone() if weights is not None else None
        hypotheses.append(Hypothesis(tokens[:-1], score, attention, rank))
    return hypotheses, ranks.float()


@dataclass
class Paths:
    """The outputs the live rows have chosen so far, one row per hypothesis."""

    sentence: Tensor  # (R,) index of the row's sentence in the input batch
    tokens: Tensor  # (R, t) outputs so far
    scores: Tensor  # (R,) log p(tokens | src), float32
    attention: Tensor | None  # (R, t, S) attention of every output so far

    def last_tokens(self, bos_id: int) -> Tensor:
        """The decoder input of the next step: (R,)."""
        if self.tokens.size(1) == 0:
            return torch.full_like(self.scores, bos_id, dtype=torch.long)
        return self.tokens[:, -1]

    def select(self, rows: Tensor) -> Paths:
        """Keep (or repeat) the rows `rows`."""
        attention = self.attention.index_select(0, rows) if self.attention is not None else None
        return Paths(
            self.sentence.index_select(0, rows),
            self.tokens.index_select(0, rows),
            self.scores.index_select(0, rows),
            attention,
        )

    def extend(self, rows: Tensor, tokens: Tensor, scores: Tensor, attn: Tensor | None) -> Paths:
        """Follow `rows` (beam origins, (R',)) and append one token each, with the new
        total score (R',) and that step's attention attn (R, S) of the old rows."""
        paths = self.select(rows)
        paths.tokens = torch.cat([paths.tokens, tokens.unsqueeze(1)], dim=1)  # (R', t+1)
        paths.scores = scores
        if attn is not None:
            new = attn.index_select(0, rows).unsqueeze(1)  # (R', 1, S)
            old = paths.attention
            paths.attention = new if old is None else torch.cat([old, new], dim=1)
        return paths


def start(
    model: Seq2SeqModel, src: Tensor, src_lengths: Tensor, copies: int
) -> tuple[Paths, Any, Any]:
    """Encode once, then repeat each sentence `copies` times (beams or samples): empty
    paths with score 0, the encoder output and the first decoder state, B*copies rows."""
    sentence = torch.arange(src.size(0), device=src.device).repeat_interleave(copies)
    enc = model.encode(src, src_lengths)
    if copies > 1:  # one copy is the encoder output itself: no (B, S, ...) copies to make
        enc = enc.index_select(sentence)  # (B*copies, ...)
    scores = torch.zeros(len(sentence), device=src.device)
    paths = Paths(sentence, sentence.new_zeros(len(sentence), 0), scores, None)
    return paths, enc, model.init_state(enc)


def step_rows(
    model: Seq2SeqModel, paths: Paths, enc: Any, state: Any, rules: Rules
) -> tuple[Tensor, Tensor | None, Any]:
    """One decoder step on every live row: constrained log-probs (R, V), attention (R, S)."""
    log_probs, attn, state = model.step(paths.last_tokens(model.bos_id), enc, state)
    return rules.apply(log_probs, paths.sentence, paths.tokens), attn, state


def collect(
    results: list[list[Hypothesis]], ended: Paths, src_lengths: Tensor, alpha: float, beta: float
) -> Tensor:
    """Add the ended paths to their sentences' results; return their rank scores."""
    hypotheses, ranks = finish(ended, src_lengths, alpha, beta)
    for hypothesis, b in zip(hypotheses, ended.sentence.tolist(), strict=True):
        results[b].append(hypothesis)
    return ranks


def worth_pruning(done: Tensor) -> bool:
    """Prune when at least a quarter of the rows (or sentences) are done, or all are.

    Pruning copies the encoder output, keys and state of every live row, so doing it
    each time one sentence ends costs more than stepping a few finished rows along."""
    count = int(done.sum())
    return count > 0 and (count == len(done) or 4 * count >= len(done))
