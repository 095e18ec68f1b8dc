"""Greedy search and sampling: each row decodes on its own.

- greedy search: the most likely token;
- sampling: draw from the distribution, sharpened by a temperature and cut to the
  top-k tokens or the top-p nucleus."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from attnmt.config import DecodeOptions
from attnmt.models.interface import Seq2SeqModel
from attnmt.models.modes import evaluating
from attnmt.search.paths import collect, start, step_rows, worth_pruning
from attnmt.search.ranking import NEG_INF, Hypothesis, best_first
from attnmt.search.rules import Rules


def greedy(
    model: Seq2SeqModel, src: Tensor, src_lengths: Tensor, settings: DecodeOptions
) -> list[list[Hypothesis]]:
    """y_t = argmax_y p(y | y_<t, x) until EOS. One hypothesis per sentence.

    src (B, S), src_lengths (B,). `settings` gives the length rules and no_repeat_ngram;
    its alpha and beta only set each hypothesis's rank_score.
    """
    return _decode_rows(model, src, src_lengths, settings, _argmax, 1)


def sample(
    model: Seq2SeqModel,
    src: Tensor,
    src_lengths: Tensor,
    settings: DecodeOptions,
    generator: torch.Generator | None = None,
) -> list[list[Hypothesis]]:
    """y_t ~ p(y | y_<t, x)^(1/T), cut to the top_k tokens and the top_p nucleus.

    settings.n_best independent samples per sentence, best rank_score first (duplicates
    are possible). Each score is the model's own log-probability, not the tempered one.
    A seeded `generator` makes the draws reproducible for the same batch.
    """
    draw = _sampler(settings.temperature, settings.top_k, settings.top_p, generator)
    return _decode_rows(model, src, src_lengths, settings, draw, settings.n_best)


def _argmax(log_probs: Tensor) -> Tensor:
    return log_probs.argmax(dim=-1)


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the k largest logits of each row (R, V), -inf elsewhere; k = 0 keeps all."""
    if k <= 0 or k >= logits.size(-1):
        return logits
    kth = logits.topk(k, dim=-1).values[:, -1:]  # (R, 1)
    return logits.masked_fill(logits < kth, NEG_INF)


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus (Holtzman et al. 2020): keep the smallest set of most likely tokens whose
    probability reaches p; a token stays if the tokens ranked above it hold less than p."""
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)  # (R, V)
    probs = sorted_logits.softmax(dim=-1)
    above = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked higher
    drop = torch.zeros_like(above, dtype=torch.bool).scatter(1, order, above >= p)
    return logits.masked_fill(drop, NEG_INF)


NUCLEUS_CANDIDATES = 256
"""How many of a row's most likely tokens :func:`nucleus` looks among first (one top-k
instead of a sort of the whole vocabulary)."""


def nucleus(logits: Tensor, p: float) -> tuple[Tensor, Tensor, Tensor]:
    """The top-p nucleus of every row of `logits` (R, V) that lies within its
    NUCLEUS_CANDIDATES most likely tokens: (kept logits (R, K), -inf where cut; their
    token ids (R, K); found (R,), False for a row whose nucleus reaches past the K
    candidates (their mass is below p): only a sort of the whole row finds that one).
    For the found rows, the same tokens with the same probabilities as
    :func:`top_p_filter` (up to the rounding of the cumulative sums).

    A sort of (R, V) costs several times the output layer's matmul on a CPU; a top-k of
    K columns and a draw over them cost a fraction of it (BENCHMARKS.md, "Chitchat,
    part 3")."""
    k = min(NUCLEUS_CANDIDATES, logits.size(-1))
    values, ids = logits.topk(k, dim=-1)  # (R, K), most likely first
    probs = (values - logits.logsumexp(dim=-1, keepdim=True)).exp()  # p(token), (R, K)
    total = probs.cumsum(dim=-1)
    above = total - probs  # mass of the tokens ranked higher, as top_p_filter computes it
    return values.masked_fill(above >= p, NEG_INF), ids, total[:, -1] >= p


def _sampler(
    temperature: float, top_k: int, top_p: float, generator: torch.Generator | None
) -> Callable[[Tensor], Tensor]:
    def draw_all(logits: Tensor) -> Tensor:  # (R, V) -> (R,)
        logits = top_p_filter(top_k_filter(logits, top_k), top_p)
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator).squeeze(1)

    def draw(log_probs: Tensor) -> Tensor:
        logits = log_probs / temperature  # (R, V)
        if top_k > 0 or top_p >= 1.0:
            return draw_all(logits)
        kept, ids, found = nucleus(logits, top_p)
        pick = torch.multinomial(kept.softmax(dim=-1), 1, generator=generator)  # (R, 1)
        tokens = ids.gather(1, pick).squeeze(1)  # (R,)
        if not bool(found.all()):  # rows with a wide nucleus: sort them whole
            rest = (~found).nonzero().squeeze(1)
            tokens[rest] = draw_all(logits[rest])
        return tokens

    return draw


def _decode_rows(
    model: Seq2SeqModel,
    src: Tensor,
    src_lengths: Tensor,
    settings: DecodeOptions,
    choose: Callable[[Tensor], Tensor],
    copies: int,
) -> list[list[Hypothesis]]:
    """Decode `copies` independent rows per sentence, each taking choose(log_probs)."""
    lengths = src_lengths.to(src.device)
    rules = Rules.of(model, lengths, settings)
    results: list[list[Hypothesis]] = [[] for _ in range(src.size(0))]
    with evaluating(model):
        paths, enc, state = start(model, src, src_lengths, copies)
        finished = torch.zeros(len(paths.sentence), dtype=torch.bool, device=src.device)
        while len(paths.sentence):
            log_probs, attn, state = step_rows(model, paths, enc, state, rules)
            tokens = choose(log_probs)  # (R,)
            scores = paths.scores + log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1)
            every = torch.arange(len(tokens), device=tokens.device)
            paths = paths.extend(every, tokens, scores, attn)
            ended = (tokens == model.eos_id) & ~finished
            if ended.any():  # move finished rows out
                collect(
                    results,
                    paths.select(ended.nonzero().squeeze(1)),
                    lengths,
                    settings.alpha,
                    settings.beta,
                )
                finished |= ended
            if worth_pruning(finished):  # and drop them from every tensor
                keep = (~finished).nonzero().squeeze(1)
                paths, enc, state = (
                    paths.select(keep),
                    enc.index_select(keep),
                    state.index_select(keep),
                )
                finished = finished[keep]
    return [best_first(hypotheses, copies) for hypotheses in results]
