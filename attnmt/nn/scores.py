"""Attention scores: e_tj = score(q_t, h_j), one small stateless module each.

Keys are projected once per sentence by ``Score.project_keys`` and handed back in by the
caller at every decoding step; no module stores them on ``self``."""

from __future__ import annotations

import math
from typing import NamedTuple

from torch import Tensor, nn

from attnmt.nn.additive import additive_scores


class Keys(NamedTuple):
    """What a score precomputes from the encoder memory, once per sentence."""

    keys: Tensor  # compared with the query: (B, S, ·) or (B, heads, S, ·)
    values: Tensor  # averaged into the context: (B, S, D) or (B, heads, S, D/heads)

    def index_select(self, index: Tensor) -> Keys:
        """Reorder or repeat sentences (beam search)."""
        return Keys(self.keys.index_select(0, index), self.values.index_select(0, index))


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

    def dot_query(self, query: Tensor) -> tuple[Tensor, float] | None:
        """For a score of the form e = scale · q'ᵀ k (k the projected keys): the query q'
        with a head dim, (B, h, T, d), and the scale, so that attention may run as one
        fused kernel; None for any other score."""
        return None


class DotScore(Score):
    """score(s_t, h_j) = s_tᵀ h_j   (Luong et al. 2015, eq. 8, "dot").

    Needs query and key of the same size.
    """

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(1, 2)  # (B, T, S)

    def dot_query(self, query: Tensor) -> tuple[Tensor, float] | None:
        return query.unsqueeze(1), 1.0  # (B, 1, T, D)


class ScaledDotScore(Score):
    """score(s_t, h_j) = s_tᵀ h_j / √d   (Vaswani et al. 2017, eq. 1).

    Dividing by √d keeps the variance of the scores near 1 as d grows, so the softmax
    does not saturate.
    """

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        return query @ keys.transpose(1, 2) / math.sqrt(query.size(-1))  # (B, T, S)

    def dot_query(self, query: Tensor) -> tuple[Tensor, float] | None:
        return query.unsqueeze(1), 1 / math.sqrt(query.size(-1))  # (B, 1, T, D)


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

    def dot_query(self, query: Tensor) -> tuple[Tensor, float] | None:
        return query.unsqueeze(1), 1.0  # (B, 1, T, Dq): the keys are W_a h already


class ConcatScore(Score):
    """score(s_t, h_j) = v_aᵀ tanh(W_q s_t + W_k h_j)
    (Bahdanau et al. 2015, A.1.2; Luong et al. 2015, eq. 8, "concat").

    W_k h_j is computed once per sentence; each step adds W_q s_t to it. The tanh and
    v_a run as one autograd function (:mod:`attnmt.nn.additive`) that recomputes the
    (B, T, S, A) hidden layer in backward instead of keeping it.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.W_q = nn.Linear(query_dim, attn_dim, bias=False)
        self.W_k = nn.Linear(key_dim, attn_dim, bias=False)
        self.v_a = nn.Linear(attn_dim, 1, bias=False)

    def project_keys(self, memory: Tensor) -> Keys:
        return Keys(self.W_k(memory), memory)  # keys (B, S, A)

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        return additive_scores(self.W_q(query), keys, self.v_a.weight[0])  # (B, T, S)


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

    def dot_query(self, query: Tensor) -> tuple[Tensor, float] | None:
        return self._split(self.W_q(query)), 1 / math.sqrt(self.head_dim)  # (B, h, T, d)

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
