"""Hypotheses and how search ranks them (GNMT, Wu et al. 2016, eq. 14):

    s(Y, X)  = log P(Y | X) / lp(Y) + cp(X; Y)
    lp(Y)    = ((5 + |Y|) / 6)^α                  length penalty; |Y| counts EOS
    cp(X; Y) = β Σ_j log(min(Σ_i α_ij, 1.0))      coverage penalty, j over source tokens

α = β = 0 ranks by log-probability alone."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

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


def best_first(hypotheses: list[Hypothesis], n: int) -> list[Hypothesis]:
    return sorted(hypotheses, key=lambda h: h.rank_score, reverse=True)[:n]
