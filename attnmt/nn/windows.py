"""Attention windows: which source positions each query may see (Luong et al. 2015, 3.1-3.2),
and an optional additive log-weight."""

from __future__ import annotations

import torch
from torch import Tensor, nn


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
