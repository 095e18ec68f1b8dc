"""Attention: score modules, windows, and the one function that attends.

Every variant computes the same three things (Bahdanau et al. 2015; Luong et al. 2015;
Vaswani et al. 2017):

    e_tj  = score(q_t, h_j)                        scores          (B, T, S)
    α_tj  = softmax_j(e_tj + b_tj)  over allowed j  attention weights (B, T, S)
    c_t   = Σ_j α_tj v_j                            context         (B, T, D)

`score` is one of the small modules in :data:`SCORES`; `b` and the set of allowed
positions come from a window in :data:`WINDOWS`; the masking, softmax and weighted sum
happen once, in :func:`attend`.

When nobody asks for the weights (training, the loss) and the score is a dot product
scaled by a constant (dot, scaled_dot, general, multihead) over the global window, the
same α and c come from one fused kernel,
:func:`torch.nn.functional.scaled_dot_product_attention`, that never hands α back;
tests/nn/test_attention_fused.py checks the two paths agree to rounding.

Mask convention, everywhere in attnmt: a bool mask is True where a position is real
(may be attended) and False where it is padding. Masked scores are filled with
``torch.finfo(dtype).min``, never a magic -1e9, so bf16 and fp16 are safe.

Keys are projected once per sentence by ``Score.project_keys`` and handed back in by the
caller at every decoding step; no module stores them on ``self``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnmt.nn.scores import Keys, Score
from attnmt.nn.windows import GlobalWindow, Window


def attend(
    scores: Tensor,
    values: Tensor,
    mask: Tensor,
    bias: Tensor | None = None,
    dropout: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Attention(Q, K, V): mask, softmax and weighted sum, shared by every score.

        α = softmax(e + b)  with α_j = 0 wherever mask_j is False
        c = Dropout(α) V

    Args:
        scores: e, shape (..., T, S).
        values: V, shape (..., S, D).
        mask: bool, broadcastable to scores; True marks positions that may be attended.
        bias: optional additive log-weights b (e.g. a Gaussian window), like scores.
        dropout: drop attention weights with this probability before the weighted sum
            (Vaswani et al. 2017 regularise this way); callers pass 0 outside training.
            The weights returned are the ones before dropout.

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
    used = nn.functional.dropout(weights, dropout) if dropout > 0 else weights
    context = torch.matmul(used.to(values.dtype), values)  # (..., T, D)
    return context, weights


class Attention(nn.Module):
    """A score and a window, attended through :func:`attend`; `dropout` drops attention
    weights while training (the Transformer's attention dropout; 0 for the RNN family)."""

    def __init__(self, score: Score, window: Window, dropout: float = 0.0) -> None:
        super().__init__()
        self.score = score
        self.window = window
        self.dropout = dropout
        # The global window adds no mask and no bias: the fused kernel can take its place.
        self.fusable = isinstance(window, GlobalWindow)

    def project_keys(self, memory: Tensor) -> Keys:
        """Once per sentence: memory (B, S, Dk) -> Keys to pass to every `forward`."""
        return self.score.project_keys(memory)

    def forward(
        self,
        query: Tensor,
        keys: Keys,
        mask: Tensor,
        src_lengths: Tensor,
        positions: Tensor,
        need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend with queries (B, T, Dq) at target steps `positions` (T,).

        `mask` is any bool mask the caller chooses, (B, S) or (B, T, S), True where a
        position may be attended: padding, a causal mask, or both. The window's own mask
        is combined with it.

        Returns the context (B, T, Dk) and the weights of every head (B, heads, T, S),
        each row summing to 1 (one head for the single-head scores). The usual map to
        show is their mean over dim 1. Without `need_weights` the weights may be None:
        the fused path (see the module docstring) when the score and window allow it.
        """
        if not need_weights and self.fusable:
            dot = self.score.dot_query(query)
            if dot is not None:
                return self._fused(*dot, keys, mask), None
        src_len = mask.size(-1)
        scores = self.score(query, keys.keys)  # (B, T, S) or (B, h, T, S)
        window_mask, bias = self.window(query, src_lengths, positions, src_len)
        if mask.dim() == 2:
            mask = mask.unsqueeze(1)  # (B, 1, S)
        if window_mask is not None:
            mask = mask & window_mask  # (B, T, S)
        if scores.dim() == 3:  # one head: give it its own dim, like the multi-head scores
            scores = scores.unsqueeze(1)  # (B, 1, T, S)
        values = keys.values if keys.values.dim() == 4 else keys.values.unsqueeze(1)
        mask = mask.unsqueeze(1)  # broadcast over heads: (B, 1, T or 1, S)
        bias = bias.unsqueeze(1) if bias is not None else None
        dropout = self.dropout if self.training else 0.0
        context, weights = attend(scores, values, mask, bias, dropout)  # (B,h,T,D'), (B,h,T,S)
        if keys.values.dim() == 3:
            context = context.squeeze(1)  # (B, T, Dk)
        return self.score.merge(context), weights

    def _fused(self, query: Tensor, scale: float, keys: Keys, mask: Tensor) -> Tensor:
        """c = softmax(scale · q kᵀ, masked) v in one kernel, for the global window:
        query (B, h, T, d) from ``score.dot_query`` -> context (B, T, Dk)."""
        values, key_heads = keys.values, keys.keys
        if values.dim() == 3:  # one head: give it its own dim, like the multi-head keys
            values, key_heads = values.unsqueeze(1), key_heads.unsqueeze(1)  # (B, 1, S, ·)
        mask = (mask.unsqueeze(1) if mask.dim() == 2 else mask).unsqueeze(1)  # (B, 1, T|1, S)
        dtype = values.dtype  # one dtype for the kernel, as attend's matmul casts α to V's
        context = nn.functional.scaled_dot_product_attention(
            query.to(dtype),
            key_heads.to(dtype),
            values,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            scale=scale,
        )  # (B, h, T, D')
        if keys.values.dim() == 3:
            context = context.squeeze(1)  # (B, T, Dk)
        return self.score.merge(context)
