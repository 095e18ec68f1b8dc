"""Beam search: K rows per sentence, competing."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from attnmt.config import DecodeOptions
from attnmt.models.interface import Seq2SeqModel
from attnmt.models.modes import evaluating
from attnmt.search.paths import Paths, collect, start, step_rows, worth_pruning
from attnmt.search.ranking import NEG_INF, Hypothesis, best_first, length_penalty
from attnmt.search.rules import Rules
from attnmt.search.trace import BeamTrace


def beam_search(
    model: Seq2SeqModel,
    src: Tensor,
    src_lengths: Tensor,
    settings: DecodeOptions,
    trace: BeamTrace | None = None,
) -> list[list[Hypothesis]]:
    """The settings.n_best hypotheses per sentence by s(Y, X) = log P(Y | X) / lp(Y) + cp(X; Y).

    Each step extends every live hypothesis by every token and takes the 2K best
    candidates per sentence (K = beam). Those among the first K that end in EOS are
    finished; the K best that do not stay live, so a finished one never takes a live slot.

    Termination: a sentence stops once it has n_best finished hypotheses and no live one
    can still beat the n_best-th. Scores only fall (log-probabilities are ≤ 0), lp grows
    to at most lp(longest + 1) and cp ≤ 0, so no descendant of a live hypothesis with
    score s can rank above s / lp(longest + 1). When the best live one's bound is ≤ the
    n_best-th finished rank score, the answer is final: exactly what running every beam
    to its maximum length would return.

    `trace`, when given, records every candidate of every step and its fate (the search
    tree that ``attnmt plot beam`` draws); the search itself is the same either way.
    """
    beam, n_best, alpha = settings.beam, settings.n_best, settings.alpha
    if n_best > beam:
        raise ValueError(f"n_best ({n_best}) must be at most beam ({beam})")
    lengths = src_lengths.to(src.device)
    rules = Rules.of(model, lengths, settings)
    results: list[list[Hypothesis]] = [[] for _ in range(src.size(0))]
    with evaluating(model):
        paths, enc, state = start(model, src, src_lengths, beam)
        # Only beam 0 starts alive, so the K identical rows give each candidate once.
        paths.scores.view(-1, beam)[:, 1:] = NEG_INF
        kept = paths.scores.new_full((src.size(0), n_best), NEG_INF)  # (N, n) best finished
        while len(paths.sentence):
            log_probs, attn, state = step_rows(model, paths, enc, state, rules)
            candidates = Candidates.top(paths.scores, log_probs, beam)
            ending = candidates.ending(model.eos_id, beam)  # (N, 2K)
            ended = paths.extend(*candidates.pick(ending), attn)
            ranks = collect(results, ended, lengths, alpha, settings.beta)
            kept = keep_best(kept, ending, ranks)
            live = candidates.live(model.eos_id, beam)  # (N, K)
            if trace is not None:
                sentences = paths.sentence[::beam]  # (N,)
                found = (candidates.origin, candidates.tokens, candidates.scores)
                trace.record(sentences, *found, ending, live, ranks)
            origin, tokens, scores = candidates.pick(live)
            paths = paths.extend(origin, tokens, scores, attn)  # (N*K,) rows
            state = state.index_select(origin)  # enc is the same for all of a sentence's beams
            done = no_better_to_come(paths, kept, rules.longest, beam, alpha)  # (N,)
            if worth_pruning(done):  # drop finished sentences from every tensor
                keep = (~done).nonzero().squeeze(1)  # (N',)
                rows = (keep.unsqueeze(1) * beam + torch.arange(beam, device=keep.device)).view(-1)
                paths, enc, state = (
                    paths.select(rows),
                    enc.index_select(rows),
                    state.index_select(rows),
                )
                kept = kept.index_select(0, keep)
            elif done.any():  # too few to prune yet: freeze them, they add nothing more
                paths.scores.view(-1, beam)[done] = NEG_INF
    best = [best_first(hypotheses, n_best) for hypotheses in results]
    if trace is not None:
        trace.mark_won(best)
    return best


@dataclass
class Candidates:
    """The 2K best one-token extensions of each sentence's K beams, best first; (N, 2K)."""

    scores: Tensor  # total log-probability with the new token
    origin: Tensor  # the row (in N*K) that the candidate extends
    tokens: Tensor  # the new token

    @classmethod
    def top(cls, scores: Tensor, log_probs: Tensor, beam: int) -> Candidates:
        """scores (N*K,) of the live rows, log_probs (N*K, V) of their next token.

        A sentence's 2K best extensions are among the 2K best tokens of each of its rows
        (a row's score adds the same to all its tokens), so the top-k runs per row over
        V, and then per sentence over those K * 2K: the same candidates as a top-k over
        all K * V, without adding the scores to every (row, token)."""
        rows, vocab = log_probs.shape
        width = min(2 * beam, vocab)
        row_best, row_tokens = log_probs.topk(width, dim=1)  # (N*K, 2K)
        total = (scores.unsqueeze(1) + row_best).view(rows // beam, beam * width)  # (N, K*2K)
        best, flat = total.topk(2 * beam, dim=1)  # (N, 2K)
        first_row = torch.arange(0, rows, beam, device=flat.device).unsqueeze(1)  # (N, 1)
        tokens = row_tokens.view(rows // beam, beam * width).gather(1, flat)
        return cls(best, first_row + flat // width, tokens)

    def ending(self, eos_id: int, beam: int) -> Tensor:
        """(N, 2K) bool: finite EOS candidates among the K best finish."""
        ending = (self.tokens == eos_id) & torch.isfinite(self.scores)
        ending[:, beam:] = False
        return ending

    def pick(self, which: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Origins, tokens and scores of the candidates chosen by `which`: a bool mask
        (N, 2K) or column indices (N, K). Each comes back flat, row-major."""
        if which.dtype == torch.bool:
            return self.origin[which], self.tokens[which], self.scores[which]
        origin, tokens, scores = (
            t.gather(1, which) for t in (self.origin, self.tokens, self.scores)
        )
        return origin.view(-1), tokens.view(-1), scores.view(-1)  # (N*K,)

    def live(self, eos_id: int, beam: int) -> Tensor:
        """(N, K) columns of the K best candidates that do not end (there are at least K,
        since each of the K rows adds at most one EOS candidate)."""
        is_eos = (self.tokens == eos_id).long()
        return is_eos.sort(dim=1, stable=True).indices[:, :beam]


def keep_best(kept: Tensor, ending: Tensor, ranks: Tensor) -> Tensor:
    """Merge the rank scores (F,) of the candidates marked in `ending` (N, 2K) into each
    sentence's n best so far, kept (N, n); returns the new (N, n), best first."""
    new = torch.full(ending.shape, NEG_INF, device=kept.device)
    new[ending] = ranks
    return torch.cat([kept, new], dim=1).topk(kept.size(1), dim=1).values


def no_better_to_come(
    paths: Paths, kept: Tensor, longest: Tensor, beam: int, alpha: float
) -> Tensor:
    """(N,) True where no live hypothesis can still enter the n-best list kept (N, n):

    max_k score_k / lp(longest + 1) <= the n-th best finished rank score
    """
    best_live = paths.scores.view(-1, beam).max(dim=1).values  # (N,)
    longest = longest[paths.sentence[::beam]]  # (N,)
    bound = best_live.double() / length_penalty(longest + 1, alpha)
    return bound <= kept[:, -1]
