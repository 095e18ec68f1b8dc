"""Search: turn a model's p(y_t | y_<t, x) into output sentences, one token at a time.

Three ways to choose the next token:

- greedy search: the most likely token;
- beam search: keep the K best partial hypotheses of every sentence;
- sampling: draw from the distribution, sharpened by a temperature and cut to the
  top-k tokens or the top-p nucleus.

Everything is batched. The sentences × beams (or samples) of a batch are the rows of
one tensor. The source is encoded, and its attention keys projected, once; beams then
follow their origins with ``state.index_select``. Each step

    1. runs the decoder on every live row                    model.step
    2. forbids what the rules forbid (min/max length, PAD,   constrain
       BOS, repeated n-grams) by setting it to -inf
    3. chooses tokens; rows that chose EOS become Hypotheses
    4. drops the rows of sentences that are finished, so later steps do less work.

Finished hypotheses are ranked as in GNMT (Wu et al. 2016, eq. 14):

    s(Y, X)  = log P(Y | X) / lp(Y) + cp(X; Y)
    lp(Y)    = ((5 + |Y|) / 6)^α                  length penalty; |Y| counts EOS
    cp(X; Y) = β Σ_j log(min(Σ_i α_ij, 1.0))      coverage penalty, j over source tokens

α = β = 0 ranks by log-probability alone. This module knows nothing of tokenizers or
files: it maps id tensors to lists of :class:`Hypothesis`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, cast

import torch
from torch import Tensor, nn

from attnmt.config import DecodeConfig
from attnmt.model import Seq2Seq

NEG_INF = float("-inf")
COVERAGE_FLOOR = 1e-6
"""Coverage below this counts as this in cp: a source token that a local window never
reached costs β·log(1e-6) ≈ -13.8β instead of -inf, so such hypotheses can still rank."""


@dataclass
class Hypothesis:
    """One output sentence and what the model thinks of it."""

    tokens: list[int]  # output ids, without BOS and without EOS
    score: float  # log p(tokens + EOS | src) under the model, no penalties
    attention: Tensor | None  # (len(tokens) + 1, S_real): one row per output incl. EOS
    rank_score: float  # score / lp(Y) + cp(X; Y): what search ranks by


# ---------------------------------------------------------------------------
# The GNMT ranking


def length_penalty(length: Tensor, alpha: float) -> Tensor:
    """lp(Y) = ((5 + |Y|) / 6)^α  (Wu et al. 2016, eq. 14), |Y| counting EOS."""
    return ((5 + length.double()) / 6) ** alpha


def coverage_penalty(attention: Tensor | None, src_lengths: Tensor, beta: float) -> Tensor:
    """cp(X; Y) = β Σ_j log(min(Σ_i α_ij, 1.0))  (Wu et al. 2016, eq. 14).

    attention (R, T, S) holds α_ij for target step i and source position j; only the
    first src_lengths[r] positions count. Returns (R,); zero without attention or β.
    """
    if attention is None or beta == 0:
        return torch.zeros(src_lengths.shape, dtype=torch.float64, device=src_lengths.device)
    coverage = attention.sum(1).double().clamp(COVERAGE_FLOOR, 1.0)  # (R, S)
    positions = torch.arange(attention.size(2), device=attention.device)
    real = positions.unsqueeze(0) < src_lengths.unsqueeze(1)  # (R, S)
    return beta * coverage.log().masked_fill(~real, 0.0).sum(1)


# ---------------------------------------------------------------------------
# What search needs of a model, and an ensemble of models


class Decodable(Protocol):
    """The step interface of :class:`Seq2Seq`; :class:`Ensemble` has it too."""

    bos_id: int
    eos_id: int
    pad_id: int
    training: bool

    def train(self, mode: bool = True) -> Any: ...

    def encode(self, src: Tensor, src_lengths: Tensor) -> Any: ...

    def init_state(self, enc: Any) -> Any: ...

    def step(self, tokens: Tensor, enc: Any, state: Any) -> tuple[Tensor, Tensor | None, Any]: ...


@dataclass
class PerMember:
    """One encoder output (or decoder state) per ensemble member, reordered together."""

    items: list[Any]

    def index_select(self, index: Tensor) -> PerMember:
        return PerMember([item.index_select(index) for item in self.items])


class Ensemble(nn.Module):
    """Several models decoded as one by averaging their probabilities:

        p(y_t | y_<t, x) = (1/M) Σ_m p_m(y_t | y_<t, x)

    The attention returned is the mean over the members that have attention (None if
    none has). All members must share the target vocabulary and special ids.
    """

    def __init__(self, models: Sequence[Seq2Seq]) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        if len({model.generator.out_features for model in models}) > 1:
            raise ValueError("ensemble members must share one target vocabulary")
        if len({(model.bos_id, model.eos_id, model.pad_id) for model in models}) > 1:
            raise ValueError("ensemble members must share the special token ids")
        first = models[0]
        self.members = nn.ModuleList(models)
        self.bos_id, self.eos_id, self.pad_id = first.bos_id, first.eos_id, first.pad_id

    @property
    def models(self) -> list[Seq2Seq]:
        return cast(list[Seq2Seq], list(self.members))

    @property
    def has_attention(self) -> bool:
        return any(model.has_attention for model in self.models)

    def encode(self, src: Tensor, src_lengths: Tensor) -> PerMember:
        return PerMember([model.encode(src, src_lengths) for model in self.models])

    def init_state(self, enc: PerMember) -> PerMember:
        return PerMember(
            [model.init_state(e) for model, e in zip(self.models, enc.items, strict=True)]
        )

    def step(
        self, tokens: Tensor, enc: PerMember, state: PerMember
    ) -> tuple[Tensor, Tensor | None, PerMember]:
        """log (1/M) Σ_m p_m, computed as logsumexp_m(log p_m) - log M: (B, V)."""
        outputs = [
            model.step(tokens, e, s)
            for model, e, s in zip(self.models, enc.items, state.items, strict=True)
        ]
        log_probs = torch.stack([out[0] for out in outputs])  # (M, B, V)
        log_probs = torch.logsumexp(log_probs, dim=0) - math.log(len(outputs))  # (B, V)
        weights = [out[1] for out in outputs if out[1] is not None]
        attention = torch.stack(weights).mean(0) if weights else None  # (B, S)
        return log_probs, attention, PerMember([out[2] for out in outputs])


@contextmanager
def _inference(model: Decodable) -> Iterator[None]:
    """Eval mode (no dropout) and no autograd while decoding; the mode is restored after."""
    was_training = model.training
    model.train(False)
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------------
# Length limits and the constraints on the next token


@dataclass(frozen=True)
class Limits:
    """The rules every search obeys; see :func:`length_bounds` and :func:`constrain`."""

    max_len: int  # longest output in tokens (EOS not counted)
    max_len_ratio: float = math.inf  # ... and at most int(ratio * src_len) + 5 tokens
    min_len: int = 0  # shortest output in tokens
    min_len_ratio: float = 0.0  # ... and at least ceil(ratio * src_len) tokens
    no_repeat_ngram: int = 0  # no n-gram of this size twice in one output; 0: off


def length_bounds(src_lengths: Tensor, limits: Limits) -> tuple[Tensor, Tensor]:
    """Shortest and longest allowed output per sentence, each (B,) long:

    longest  = min(max_len, int(max_len_ratio · |x|) + 5)
    shortest = min(max(min_len, ceil(min_len_ratio · |x|)), longest)
    """
    length = src_lengths.double()
    longest = torch.clamp((limits.max_len_ratio * length).floor() + 5, max=limits.max_len)
    shortest = torch.clamp((limits.min_len_ratio * length).ceil(), min=limits.min_len)
    return torch.minimum(shortest, longest).long(), longest.long()


def repeated_ngrams(history: Tensor, n: int, vocab: int) -> Tensor:
    """history (R, t) -> (R, V) bool: True for each token that would complete an n-gram
    already in its row (the row's last n-1 tokens followed by that token)."""
    rows, length = history.shape
    if n <= 0 or length < n:
        return torch.zeros(rows, vocab, dtype=torch.bool, device=history.device)
    banned = torch.zeros(rows, vocab, device=history.device)
    ngrams = history.unfold(1, n, 1)  # (R, t-n+1, n)
    prefix = history[:, length - n + 1 :]  # (R, n-1)
    same_prefix = (ngrams[:, :, :-1] == prefix.unsqueeze(1)).all(-1)  # (R, t-n+1)
    banned.scatter_add_(1, ngrams[:, :, -1], same_prefix.float())
    return banned > 0


def constrain(
    log_probs: Tensor,
    history: Tensor,
    shortest: Tensor,
    longest: Tensor,
    special: tuple[int, int, int],
    no_repeat_ngram: int,
) -> Tensor:
    """Set to -inf every token the rules forbid as the next output of each row.

    log_probs (R, V); history (R, t) the outputs so far; shortest, longest (R,) length
    bounds; special = (eos_id, bos_id, pad_id). PAD and BOS are never output; EOS is
    blocked while t < shortest; at t = longest only EOS is allowed. If the rules leave a
    row nothing (repeats forbid every token), EOS is allowed, so each row can finish.

    Only the columns and rows a rule touches are written, in place when `log_probs` is
    contiguous; a full (R, V) mask is built only for no-repeat-ngram blocking.
    """
    eos_id, bos_id, pad_id = special
    t = history.size(1)
    log_probs = log_probs.contiguous()  # a fresh model output is written in place
    eos = log_probs[:, eos_id].clone()  # (R,): EOS follows its own rules below
    if no_repeat_ngram > 0:
        log_probs.masked_fill_(
            repeated_ngrams(history, no_repeat_ngram, log_probs.size(1)), NEG_INF
        )
    log_probs[:, [bos_id, pad_id, eos_id]] = NEG_INF
    at_longest = t >= longest  # (R,)
    if bool(at_longest.any()):
        log_probs[at_longest] = NEG_INF
    allow_eos = at_longest | (t >= shortest)
    if no_repeat_ngram > 0:  # stuck: no token left, so EOS is allowed after all
        allow_eos |= torch.isneginf(log_probs).all(1)
    log_probs[:, eos_id] = eos.masked_fill(~allow_eos, NEG_INF)
    return log_probs


# ---------------------------------------------------------------------------
# Live hypotheses: the rows of the search


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


def best_first(hypotheses: list[Hypothesis], n: int) -> list[Hypothesis]:
    return sorted(hypotheses, key=lambda h: h.rank_score, reverse=True)[:n]


@dataclass
class Rules:
    """The limits turned into tensors: bounds per input sentence, applied to any rows."""

    shortest: Tensor  # (B,) long
    longest: Tensor  # (B,) long
    special: tuple[int, int, int]  # eos, bos, pad
    no_repeat_ngram: int

    @classmethod
    def of(cls, model: Decodable, src_lengths: Tensor, limits: Limits) -> Rules:
        shortest, longest = length_bounds(src_lengths, limits)
        special = (model.eos_id, model.bos_id, model.pad_id)
        return cls(shortest, longest, special, limits.no_repeat_ngram)

    def apply(self, log_probs: Tensor, paths: Paths) -> Tensor:
        rows = paths.sentence
        return constrain(
            log_probs,
            paths.tokens,
            self.shortest[rows],
            self.longest[rows],
            self.special,
            self.no_repeat_ngram,
        )


def _start(
    model: Decodable, src: Tensor, src_lengths: Tensor, copies: int
) -> tuple[Paths, Any, Any]:
    """Encode once, then repeat each sentence `copies` times (beams or samples): empty
    paths with score 0, the encoder output and the first decoder state, B*copies rows."""
    sentence = torch.arange(src.size(0), device=src.device).repeat_interleave(copies)
    enc = model.encode(src, src_lengths).index_select(sentence)  # (B*copies, ...)
    scores = torch.zeros(len(sentence), device=src.device)
    paths = Paths(sentence, sentence.new_zeros(len(sentence), 0), scores, None)
    return paths, enc, model.init_state(enc)


def _step(
    model: Decodable, paths: Paths, enc: Any, state: Any, rules: Rules
) -> tuple[Tensor, Tensor | None, Any]:
    """One decoder step on every live row: constrained log-probs (R, V), attention (R, S)."""
    log_probs, attn, state = model.step(paths.last_tokens(model.bos_id), enc, state)
    return rules.apply(log_probs, paths), attn, state


def _collect(
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


# ---------------------------------------------------------------------------
# Greedy search and sampling: each row on its own


def greedy(
    model: Decodable,
    src: Tensor,
    src_lengths: Tensor,
    *,
    max_len: int,
    max_len_ratio: float = math.inf,
    min_len: int = 0,
    min_len_ratio: float = 0.0,
    no_repeat_ngram: int = 0,
    alpha: float = 0.0,
    beta: float = 0.0,
) -> list[list[Hypothesis]]:
    """y_t = argmax_y p(y | y_<t, x) until EOS. One hypothesis per sentence.

    src (B, S), src_lengths (B,). alpha and beta only set each hypothesis's rank_score.
    The defaults switch each rule off; :class:`DecodeConfig` holds the usual settings.
    """
    limits = Limits(max_len, max_len_ratio, min_len, min_len_ratio, no_repeat_ngram)
    return _decode_rows(model, src, src_lengths, limits, _argmax, 1, alpha, beta)


def sample(
    model: Decodable,
    src: Tensor,
    src_lengths: Tensor,
    *,
    max_len: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    n_best: int = 1,
    generator: torch.Generator | None = None,
    max_len_ratio: float = math.inf,
    min_len: int = 0,
    min_len_ratio: float = 0.0,
    no_repeat_ngram: int = 0,
    alpha: float = 0.0,
    beta: float = 0.0,
) -> list[list[Hypothesis]]:
    """y_t ~ p(y | y_<t, x)^(1/T), cut to the top_k tokens and the top_p nucleus.

    n_best independent samples per sentence, best rank_score first (duplicates are
    possible). Each score is the model's own log-probability, not the tempered one.
    A seeded `generator` makes the draws reproducible for the same batch.
    """
    limits = Limits(max_len, max_len_ratio, min_len, min_len_ratio, no_repeat_ngram)
    draw = _sampler(temperature, top_k, top_p, generator)
    return _decode_rows(model, src, src_lengths, limits, draw, n_best, alpha, beta)


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


def _sampler(
    temperature: float, top_k: int, top_p: float, generator: torch.Generator | None
) -> Callable[[Tensor], Tensor]:
    def draw(log_probs: Tensor) -> Tensor:
        logits = top_p_filter(top_k_filter(log_probs / temperature, top_k), top_p)  # (R, V)
        probs = logits.softmax(dim=-1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (R,)

    return draw


def _decode_rows(
    model: Decodable,
    src: Tensor,
    src_lengths: Tensor,
    limits: Limits,
    choose: Callable[[Tensor], Tensor],
    copies: int,
    alpha: float,
    beta: float,
) -> list[list[Hypothesis]]:
    """Decode `copies` independent rows per sentence, each taking choose(log_probs)."""
    lengths = src_lengths.to(src.device)
    rules = Rules.of(model, lengths, limits)
    results: list[list[Hypothesis]] = [[] for _ in range(src.size(0))]
    with _inference(model):
        paths, enc, state = _start(model, src, src_lengths, copies)
        finished = torch.zeros(len(paths.sentence), dtype=torch.bool, device=src.device)
        while len(paths.sentence):
            log_probs, attn, state = _step(model, paths, enc, state, rules)
            tokens = choose(log_probs)  # (R,)
            scores = paths.scores + log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1)
            every = torch.arange(len(tokens), device=tokens.device)
            paths = paths.extend(every, tokens, scores, attn)
            ended = (tokens == model.eos_id) & ~finished
            if ended.any():  # move finished rows out
                _collect(results, paths.select(ended.nonzero().squeeze(1)), lengths, alpha, beta)
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


# ---------------------------------------------------------------------------
# Beam search: K rows per sentence, competing


def beam_search(
    model: Decodable,
    src: Tensor,
    src_lengths: Tensor,
    *,
    beam: int,
    max_len: int,
    n_best: int = 1,
    alpha: float = 0.0,
    beta: float = 0.0,
    max_len_ratio: float = math.inf,
    min_len: int = 0,
    min_len_ratio: float = 0.0,
    no_repeat_ngram: int = 0,
) -> list[list[Hypothesis]]:
    """The n_best hypotheses per sentence by s(Y, X) = log P(Y | X) / lp(Y) + cp(X; Y).

    Each step extends every live hypothesis by every token and takes the 2K best
    candidates per sentence (K = beam). Those among the first K that end in EOS are
    finished; the K best that do not stay live, so a finished one never takes a live slot.

    Termination: a sentence stops once it has n_best finished hypotheses and no live one
    can still beat the n_best-th. Scores only fall (log-probabilities are ≤ 0), lp grows
    to at most lp(longest + 1) and cp ≤ 0, so no descendant of a live hypothesis with
    score s can rank above s / lp(longest + 1). When the best live one's bound is ≤ the
    n_best-th finished rank score, the answer is final: exactly what running every beam
    to its maximum length would return.
    """
    if n_best > beam:
        raise ValueError(f"n_best ({n_best}) must be at most beam ({beam})")
    limits = Limits(max_len, max_len_ratio, min_len, min_len_ratio, no_repeat_ngram)
    lengths = src_lengths.to(src.device)
    rules = Rules.of(model, lengths, limits)
    results: list[list[Hypothesis]] = [[] for _ in range(src.size(0))]
    with _inference(model):
        paths, enc, state = _start(model, src, src_lengths, beam)
        # Only beam 0 starts alive, so the K identical rows give each candidate once.
        paths.scores.view(-1, beam)[:, 1:] = NEG_INF
        kept = paths.scores.new_full((src.size(0), n_best), NEG_INF)  # (N, n) best finished
        while len(paths.sentence):
            log_probs, attn, state = _step(model, paths, enc, state, rules)
            candidates = Candidates.top(paths.scores, log_probs, beam)
            ending = candidates.ending(model.eos_id, beam)  # (N, 2K)
            ended = paths.extend(*candidates.pick(ending), attn)
            ranks = _collect(results, ended, lengths, alpha, beta)
            kept = keep_best(kept, ending, ranks)
            origin, tokens, scores = candidates.pick(candidates.live(model.eos_id, beam))
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
    return [best_first(hypotheses, n_best) for hypotheses in results]


@dataclass
class Candidates:
    """The 2K best one-token extensions of each sentence's K beams, best first; (N, 2K)."""

    scores: Tensor  # total log-probability with the new token
    origin: Tensor  # the row (in N*K) that the candidate extends
    tokens: Tensor  # the new token

    @classmethod
    def top(cls, scores: Tensor, log_probs: Tensor, beam: int) -> Candidates:
        """scores (N*K,) of the live rows, log_probs (N*K, V) of their next token."""
        rows, vocab = log_probs.shape
        total = (scores.unsqueeze(1) + log_probs).view(rows // beam, beam * vocab)  # (N, K*V)
        best, flat = total.topk(2 * beam, dim=1)  # (N, 2K)
        first_row = torch.arange(0, rows, beam, device=flat.device).unsqueeze(1)  # (N, 1)
        return cls(best, first_row + flat // vocab, flat % vocab)

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


# ---------------------------------------------------------------------------
# Decoding as the config says


def decode(
    model: Decodable,
    src: Tensor,
    src_lengths: Tensor,
    config: DecodeConfig,
    generator: torch.Generator | None = None,
) -> list[list[Hypothesis]]:
    """Sample, search greedily (beam 1) or with a beam, as `config` says.

    The batch is cut into groups of at most config.batch_tokens padded source tokens
    (longest sentences first, see :func:`length_batches`); results come back in input
    order, one list of config.n_best hypotheses per sentence, best first.
    """
    results: list[list[Hypothesis]] = [[] for _ in range(src.size(0))]
    for group in length_batches(src_lengths.tolist(), config.batch_tokens):
        lengths = src_lengths[torch.tensor(group, device=src_lengths.device)]
        longest = int(lengths.max())
        part_src = src[torch.tensor(group, device=src.device), :longest]
        part = _decode_group(model, part_src, lengths, config, generator)
        for b, hypotheses in zip(group, part, strict=True):
            results[b] = hypotheses
    return results


def _decode_group(
    model: Decodable,
    src: Tensor,
    src_lengths: Tensor,
    config: DecodeConfig,
    generator: torch.Generator | None,
) -> list[list[Hypothesis]]:
    rules: dict[str, Any] = dict(
        max_len=config.max_len,
        max_len_ratio=config.max_len_ratio,
        min_len=config.min_len,
        min_len_ratio=config.min_len_ratio,
        no_repeat_ngram=config.no_repeat_ngram,
        alpha=config.alpha,
        beta=config.beta,
    )
    if config.sample:
        return sample(
            model,
            src,
            src_lengths,
            temperature=config.temperature,
            top_k=config.top_k,
            top_p=config.top_p,
            n_best=config.n_best,
            generator=generator,
            **rules,
        )
    if config.beam == 1 and config.n_best == 1:
        return greedy(model, src, src_lengths, **rules)
    return beam_search(model, src, src_lengths, beam=config.beam, n_best=config.n_best, **rules)


def length_batches(src_lengths: list[int], batch_tokens: int) -> list[list[int]]:
    """Group sentence indices so that each group's padded size (sentences × longest
    length) stays within batch_tokens: sentences of similar length go together (groups
    are filled longest first), in input order inside a group. A sentence longer than
    the budget goes alone."""
    order = sorted(range(len(src_lengths)), key=lambda i: -src_lengths[i])
    groups: list[list[int]] = []
    for i in order:
        if groups and (len(groups[-1]) + 1) * src_lengths[groups[-1][0]] <= batch_tokens:
            groups[-1].append(i)
        else:
            groups.append([i])
    return [sorted(group) for group in groups]  # input order within a group
