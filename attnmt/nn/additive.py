"""The additive (concat) score as one autograd function that keeps little for backward.

    e_tj = v_aᵀ tanh(q_t + k_j),   q_t = W_q s_t,   k_j = W_k h_j
    (Bahdanau et al. 2015, A.1.2; Luong et al. 2015, eq. 8, "concat")

Written as tensor operations, autograd keeps the (B, T, S, A) tanh for backward, and
``v_a``'s matmul keeps a second copy of it: two tensors the size of the whole batch's
attention hidden layer, most of what a training step keeps for backward (BENCHMARKS.md,
"Training memory: fused output layer and loss, fused concat score"). This function keeps only
q (B, T, A), k (B, S, A) and v_a, and recomputes the tanh in backward, one step at a
time in the decoder loop:

    a = tanh(q_t + k_j)                        the hidden layer, (B, T, S, A)
    de/dv_a = Σ_btj (de)_btj a_btj
    dpre = (de)_btj v_a (1 - a²)               through tanh' = 1 - tanh²
    de/dq_t = Σ_j dpre_tj = v_a ⊙ (Σ_j (de)_tj - Σ_j (de)_tj a²_tj),   de/dk_j likewise over t

It costs one more add and tanh per step in backward. Both passes work in place on one
(B, T, S, A) tensor: in fp32, 7 passes over it in backward where the written-out dpre
takes 10 (bf16 keeps dpre, see below).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def hidden_layer(query: Tensor, keys: Tensor) -> Tensor:
    """a = tanh(q_t + k_j): queries (B, T, A) and keys (B, S, A) -> (B, T, S, A).
    The tanh overwrites the fresh sum, so only one such tensor is ever allocated."""
    return (query.unsqueeze(2) + keys.unsqueeze(1)).tanh_()


def additive_scores_plain(query: Tensor, keys: Tensor, v_a: Tensor) -> Tensor:
    """v_aᵀ tanh(q_t + k_j) as plain tensor operations: the reference.

    query (B, T, A), keys (B, S, A), v_a (A,) -> scores (B, T, S)."""
    return hidden_layer(query, keys) @ v_a  # (B, T, S)


class _AdditiveScores(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, query: Tensor, keys: Tensor, v_a: Tensor) -> Tensor:
        ctx.save_for_backward(query, keys, v_a)
        return additive_scores_plain(query, keys, v_a)

    @staticmethod
    def backward(ctx: Any, grad_scores: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        query, keys, v_a = ctx.saved_tensors
        hidden = hidden_layer(query, keys)  # a: (B, T, S, A), again
        g = grad_scores.to(hidden.dtype)  # (B, T, S)
        grad_v = g.reshape(1, -1) @ hidden.reshape(-1, hidden.size(-1))  # (1, A)
        if hidden.dtype not in (torch.float32, torch.float64):
            # bf16/fp16 (CUDA autocast): Σ g - Σ g a² would cancel in 8 bits of mantissa,
            # so form dpre = g v_a (1 - a²) itself
            grad_pre = hidden.square_().neg_().add_(1).mul_(v_a).mul_(g.unsqueeze(-1))
            return grad_pre.sum(2), grad_pre.sum(1), grad_v.squeeze(0)
        squared = hidden.square_()  # a², in place
        # de/dq_t = v_a ⊙ Σ_j g_tj (1 - a²_tj) = v_a ⊙ (Σ_j g_tj - Σ_j g_tj a²_tj), and
        # likewise over t for k_j: two reductions of a², never a (B, T, S, A) dpre
        g_a2_query = (g.unsqueeze(2) @ squared).squeeze(2)  # Σ_j g_tj a²_tj: (B, T, A)
        g_a2_keys = squared.mul_(g.unsqueeze(-1)).sum(1)  # Σ_t g_tj a²_tj: (B, S, A)
        grad_query = v_a * (g.sum(2, keepdim=True) - g_a2_query)
        grad_keys = v_a * (g.sum(1).unsqueeze(-1) - g_a2_keys)
        return grad_query, grad_keys, grad_v.squeeze(0)


def additive_scores(query: Tensor, keys: Tensor, v_a: Tensor) -> Tensor:
    """v_aᵀ tanh(q_t + k_j) for projected queries (B, T, A) and keys (B, S, A): scores
    (B, T, S), equal to :func:`additive_scores_plain`, with less kept for backward.
    `v_a` (A,) is cast to the queries' dtype (bf16 under autocast, as ``nn.Linear``
    would)."""
    keys = keys.to(query.dtype)
    result: Tensor = _AdditiveScores.apply(query, keys, v_a.to(query.dtype))
    return result
