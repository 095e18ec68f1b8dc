"""Positions for models without recurrence (Vaswani et al. 2017, 3.5).

Self-attention is blind to order: permuting the inputs permutes the outputs. So each
input embedding gets a vector that depends on its position alone, added before the first
layer. Both kinds are asked for a span of positions ``first .. first + count - 1`` (an
incremental decoder asks for one position per step) and return (count, d).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

MAX_LEARNED_POSITIONS = 1024
"""Rows of the learned position table: the longest source or output it can place."""


class Positions(nn.Module):
    """Base class: `forward(first, count, device)` -> (count, d) position vectors."""

    def forward(self, first: int, count: int, device: torch.device) -> Tensor:  # pragma: no cover
        raise NotImplementedError


class SinusoidalPositions(Positions):
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)),   PE(pos, 2i+1) = cos(pos / 10000^(2i/d))
    (Vaswani et al. 2017, 3.5).

    No parameters and no longest length: the vectors are computed for the positions
    asked. Each dimension pair is a rotation at its own wavelength (2π to 10000·2π), so
    PE(pos + k) is a linear function of PE(pos) for every offset k.
    """

    inv_freq: Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        inv_freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * -math.log(1e4) / dim)
        # Not saved with the weights: it follows from dim alone.
        self.register_buffer("inv_freq", inv_freq.float(), persistent=False)

    def forward(self, first: int, count: int, device: torch.device) -> Tensor:
        positions = torch.arange(first, first + count, device=device, dtype=self.inv_freq.dtype)
        angles = positions.unsqueeze(1) * self.inv_freq  # (count, ceil(d/2))
        table = angles.new_zeros(count, self.dim)
        table[:, 0::2] = torch.sin(angles)
        table[:, 1::2] = torch.cos(angles[:, : self.dim // 2])
        return table  # (count, d)


class LearnedPositions(Positions):
    """PE(pos) = P[pos]: one trained vector per position (Gehring et al. 2017; Vaswani et
    al. 2017 found it as good as the sinusoid). Places at most `max_positions` tokens."""

    def __init__(self, dim: int, max_positions: int = MAX_LEARNED_POSITIONS) -> None:
        super().__init__()
        self.max_positions = max_positions
        self.table = nn.Embedding(max_positions, dim)
        nn.init.normal_(self.table.weight, 0.0, dim**-0.5)

    def forward(self, first: int, count: int, device: torch.device) -> Tensor:
        if first + count > self.max_positions:
            raise ValueError(
                f"position {first + count - 1} is past the {self.max_positions} positions "
                "of model.positions 'learned'"
            )
        return self.table.weight[first : first + count]  # (count, d)


def build_positions(kind: str, dim: int) -> Positions:
    """The position vectors that model.positions names: sinusoidal or learned."""
    if kind == "sinusoidal":
        return SinusoidalPositions(dim)
    if kind == "learned":
        return LearnedPositions(dim)
    raise ValueError(f"unknown positions {kind!r}; choose sinusoidal or learned")
