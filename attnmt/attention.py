"""Attention: score modules, windows, and the one function that attends.

Every variant computes the same three things (Bahdanau et al. 2015; Luong et al. 2015;
Vaswani et al. 2017):

    e_tj  = score(q_t, h_j)                        scores          (B, T, S)
    α_tj  = softmax_j(e_tj + b_tj)  over allowed j  attention weights (B, T, S)
    c_t   = Σ_j α_tj v_j                            context         (B, T, D)

`score` is one of the small modules in :data:`SCORES`; `b` and the set of allowed
positions come from a window in :data:`WINDOWS`; the masking, softmax and weighted sum
happen once, in :func:`attend`.

Mask convention, everywhere in attnmt: a bool mask is True where a position is real
(may be attended) and False where it is padding. Masked scores are filled with
``torch.finfo(dtype).min``, never a magic -1e9, so bf16 and fp16 are safe.

Keys are projected once per sentence by ``Score.project_keys`` and handed back in by the
caller at every decoding step; no module stores them on ``self``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn


class Keys(NamedTuple):
    """What a score precomputes from the encoder memory, once per sentence."""

    keys: Tensor  # compared with the query: (B, S, ·) or (B, heads, S, ·)
    values: Tensor  # averaged into the context: (B, S, D) or (B, heads, S, D/heads)

    def index_select(self, index: Tensor) -> Keys:
        """Reorder or repeat sentences (beam search)."""
        return Keys(self.keys.index_select(0, index), self.values.index_select(0, index))


def attend(
    scores: Tensor, values: Tensor, mask: Tensor, bias: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Attention(Q, K, V): mask, softmax and weighted sum, shared by every score.

        α = softmax(e + b)  with α_j = 0 wherever mask_j is False
        c = α V

    Args:
        scores: e, shape (..., T, S).
        values: V, shape (..., S, D).
        mask: bool, broadcastable to scores; True marks positions that may be attended.
        bias: optional additive log-weights b (e.g. a Gaussian window), like scores.

    Returns:
        context (..., T, D) in the dtype of `values`, and weights (..., T, S) in float32
        (float64 for float64 scores).
        Masked positions get exactly zero weight.
    """
    if bias is not None:
        scores = scores + bias
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    # Softmax in at least float32, so bf16/fp16 scores still give weights that sum to 1.
    weights = torch.softmax(scores, dim=-1, dtype=torch.promote_types(scores.dtype, torch.float32))
    context = torch.matmul(weights.to(values.dtype), values)  # (..., T, D)
    return context, weights


# ---------------------------------------------------------------------------
# Scores


class Score(nn.Module):
    """Base class: `project_keys` once per sentence, then `forward` at every step."""

    heads: int = 1

    def project_keys(self, memory: Tensor) -> Keys:
        """Precompute from encoder states h (B, S, Dk); by default keys = values = h."""
        return Keys(memory, memory)

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:  # pragma: no cover
        """Scores e (B, T, S) of queries (B, T, Dq) against projected keys."""
        raise NotImplementedError

    def merge(self, context: Tensor) -> Tensor:
        """Turn the attended values into the context vector (B, T, Dk)."""
        return context


class DotScore(Score):
    """score(s_t, h_j) = s_tᵀ h_j   (Luong et al. 2015, eq. 8, "dot").

    Needs query and key of the same size.
    """

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(1, 2)  # (B, T, S)


class ScaledDotScore(Score):
    """score(s_t, h_j) = s_tᵀ h_j / √d   (Vaswani et al. 2017, eq. 1).

    Dividing by √d keeps the variance of the scores near 1 as d grows, so the softmax
    does not saturate.
    """

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(1, 2) / math.sqrt(query.size(-1))  # (B, T, S)


class GeneralScore(Score):
    """score(s_t, h_j) = s_tᵀ W_a h_j   (Luong et al. 2015, eq. 8, "general").

    W_a h_j is computed once per sentence, so each step is a plain dot product.
    """

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.W_a = nn.Linear(key_dim, query_dim, bias=False)

    def project_keys(self, memory: Tensor) -> Keys:
        return Keys(self.W_a(memory), memory)  # keys (B, S, Dq)

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(1, 2)  # (B, T, S)


class ConcatScore(Score):
    """score(s_t, h_j) = v_aᵀ tanh(W_q s_t + W_k h_j)
    (Bahdanau et al. 2015, A.1.2; Luong et al. 2015, eq. 8, "concat").

    W_k h_j is computed once per sentence; each step adds W_q s_t to it.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.W_q = nn.Linear(query_dim, attn_dim, bias=False)
        self.W_k = nn.Linear(key_dim, attn_dim, bias=False)
        self.v_a = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, memory: Tensor) -> Keys:
        return Keys(self.W_k(memory), memory)  # keys (B, S, A)

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        hidden = torch.tanh(self.W_q(query).unsqueeze(2) + keys.unsqueeze(1))  # (B, T, S, A)
        return self.v_a(hidden).squeeze(-1)  # (B, T, S)


class LocationScore(Score):
    """α_t = softmax(W_a s_t)   (Luong et al. 2015, eq. 9, "location").

    The weights depend on the query alone, never on the source content: one row of W_a
    per source position, up to `max_src_len`. Positions past the real length are masked.
    """

    def __init__(self, query_dim: int, max_src_len: int) -> None:
        super().__init__()
        self.max_src_len = max_src_len
        self.W_a = nn.Linear(query_dim, max_src_len, bias=False)

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        src_len = keys.size(1)
        if src_len > self.max_src_len:
            raise ValueError(
                f"source length {src_len} exceeds model.attention.max_src_len="
                f"{self.max_src_len} of the location score"
            )
        return self.W_a(query)[..., :src_len]  # (B, T, S)


class MultiHeadScore(Score):
    """head_i = softmax(Q W_i^Q (K W_i^K)ᵀ / √d_k) V W_i^V;  context = [head_1; …; head_h] W^O
    (Vaswani et al. 2017, 3.2.2).

    Keys and values are projected and split into heads once per sentence. The returned
    attention weights are the mean over heads.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int, heads: int) -> None:
        super().__init__()
        if attn_dim % heads:
            raise ValueError(f"attn_dim {attn_dim} must divide by heads {heads}")
        self.heads = heads
        self.head_dim = attn_dim // heads
        self.W_q = nn.Linear(query_dim, attn_dim, bias=False)
        self.W_k = nn.Linear(key_dim, attn_dim, bias=False)
        self.W_v = nn.Linear(key_dim, attn_dim, bias=False)
        self.W_o = nn.Linear(attn_dim, key_dim, bias=False)

    def _split(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)  # (B, h, L, d)

    def project_keys(self, memory: Tensor) -> Keys:
        return Keys(self._split(self.W_k(memory)), self._split(self.W_v(memory)))

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        q = self._split(self.W_q(query))  # (B, h, T, d)
        return q @ keys.transpose(-1, -2) / math.sqrt(self.head_dim)  # (B, h, T, S)

    def merge(self, context: Tensor) -> Tensor:
        batch, _, steps, _ = context.shape  # (B, h, T, d)
        joined = context.transpose(1, 2).reshape(batch, steps, self.heads * self.head_dim)
        return self.W_o(joined)  # (B, T, Dk)


SCORES: dict[str, type[Score]] = {
    "dot": DotScore,
    "scaled_dot": ScaledDotScore,
    "general": GeneralScore,
    "concat": ConcatScore,
    "location": LocationScore,
    "multihead": MultiHeadScore,
}


def build_score(
    name: str, query_dim: int, key_dim: int, attn_dim: int, heads: int, max_src_len: int
) -> Score:
    """Construct the score called `name`; the sizes each one needs are checked here."""
    if name not in SCORES:
        raise ValueError(f"unknown attention score {name!r}; choose one of {', '.join(SCORES)}")
    if name in ("dot", "scaled_dot"):
        if query_dim != key_dim:
            raise ValueError(
                f"score {name!r} needs query and key of one size (got {query_dim} and {key_dim})"
            )
        return SCORES[name]()
    if name == "general":
        return GeneralScore(query_dim, key_dim)
    if name == "concat":
        return ConcatScore(query_dim, key_dim, attn_dim)
    if name == "location":
        return LocationScore(query_dim, max_src_len)
    return MultiHeadScore(query_dim, key_dim, attn_dim, heads)


# ---------------------------------------------------------------------------
# Windows


class Window(nn.Module):
    """Which positions each query may see, and an optional additive log-weight.

    `forward(query, src_lengths, positions, src_len)` returns (mask (B, T, S) or None,
    bias (B, T, S) or None). `positions` (T,) holds the target step index of each query.
    """

    def forward(
        self, query: Tensor, src_lengths: Tensor, positions: Tensor, src_len: int
    ) -> tuple[Tensor | None, Tensor | None]:
        return None, None


class GlobalWindow(Window):
    """Global attention: every real source position (Luong et al. 2015, 3.1)."""


def _window_mask(centre: Tensor, half_width: int, src_len: int) -> Tensor:
    """True where |j - p_t| <= D, for centres p (B, T) -> (B, T, S)."""
    j = torch.arange(src_len, device=centre.device, dtype=centre.dtype)
    return (j - centre.unsqueeze(-1)).abs() <= half_width


class LocalMonotonicWindow(Window):
    """local-m: p_t = t, and only [p_t - D, p_t + D] is attended (Luong et al. 2015, 3.2).

    We clamp p_t to the last real position, so a target longer than its source still
    has a non-empty window.
    """

    def __init__(self, half_width: int) -> None:
        super().__init__()
        self.half_width = half_width

    def forward(
        self, query: Tensor, src_lengths: Tensor, positions: Tensor, src_len: int
    ) -> tuple[Tensor | None, Tensor | None]:
        last = (src_lengths - 1).to(query.device).unsqueeze(1)  # (B, 1)
        centre = torch.minimum(positions.to(query.device).unsqueeze(0), last)  # (B, T)
        return _window_mask(centre.float(), self.half_width, src_len), None


class LocalPredictiveWindow(Window):
    """local-p (Luong et al. 2015, eq. 9-10):

        p_t  = (S_x - 1) · sigmoid(v_pᵀ tanh(W_p q_t))
        α_tj ∝ align(q_t, h_j) · exp(-(j - p_t)² / (2σ²)),   σ = D / 2,   |j - p_t| <= D

    S_x is the sentence's real length (we use S_x - 1 so p_t lies on a real position).
    Luong multiplies the softmax by the Gaussian; we add its logarithm to the scores
    before the softmax instead, which is the same up to renormalisation and keeps each
    row a distribution that sums to 1.
    """

    def __init__(self, query_dim: int, attn_dim: int, half_width: int) -> None:
        super().__init__()
        self.half_width = half_width
        self.sigma = half_width / 2
        self.W_p = nn.Linear(query_dim, attn_dim, bias=False)
        self.v_p = nn.Linear(attn_dim, 1, bias=False)

    def centre(self, query: Tensor, src_lengths: Tensor) -> Tensor:
        """The predicted centre p_t, shape (B, T)."""
        gate = torch.sigmoid(self.v_p(torch.tanh(self.W_p(query)))).squeeze(-1)  # (B, T)
        last = (src_lengths - 1).to(device=query.device, dtype=gate.dtype).unsqueeze(1)
        return last * gate

    def forward(
        self, query: Tensor, src_lengths: Tensor, positions: Tensor, src_len: int
    ) -> tuple[Tensor | None, Tensor | None]:
        centre = self.centre(query, src_lengths)  # (B, T)
        j = torch.arange(src_len, device=query.device, dtype=centre.dtype)
        distance = j - centre.unsqueeze(-1)  # (B, T, S)
        bias = -(distance**2) / (2 * self.sigma**2)
        return distance.abs() <= self.half_width, bias


WINDOWS: dict[str, type[Window]] = {
    "global": GlobalWindow,
    "local-m": LocalMonotonicWindow,
    "local-p": LocalPredictiveWindow,
}


def build_window(name: str, query_dim: int, attn_dim: int, half_width: int) -> Window:
    if name not in WINDOWS:
        raise ValueError(f"unknown attention window {name!r}; choose one of {', '.join(WINDOWS)}")
    if name == "local-m":
        return LocalMonotonicWindow(half_width)
    if name == "local-p":
        return LocalPredictiveWindow(query_dim, attn_dim, half_width)
    return GlobalWindow()


# ---------------------------------------------------------------------------
# Score + window


class Attention(nn.Module):
    """A score and a window, attended through :func:`attend`."""

    def __init__(self, score: Score, window: Window) -> None:
        super().__init__()
        self.score = score
        self.window = window

    def project_keys(self, memory: Tensor) -> Keys:
        """Once per sentence: memory (B, S, Dk) -> Keys to pass to every `forward`."""
        return self.score.project_keys(memory)

    def forward(
        self,
        query: Tensor,
        keys: Keys,
        src_mask: Tensor,
        src_lengths: Tensor,
        positions: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """Attend with queries (B, T, Dq) at target steps `positions` (T,).

        Returns context (B, T, Dk) and attention weights (B, T, S), each row summing to 1.
        """
        src_len = src_mask.size(1)
        scores = self.score(query, keys.keys)  # (B, T, S) or (B, h, T, S)
        window_mask, bias = self.window(query, src_lengths, positions, src_len)
        mask = src_mask.unsqueeze(1)  # (B, 1, S)
        if window_mask is not None:
            mask = mask & window_mask  # (B, T, S)
        if scores.dim() == 4:  # heads: broadcast mask and bias over dim 1
            mask = mask.unsqueeze(1)
            bias = bias.unsqueeze(1) if bias is not None else None
        context, weights = attend(scores, keys.values, mask, bias)
        if weights.dim() == 4:
            weights = weights.mean(dim=1)  # (B, T, S)
        return self.score.merge(context), weights
