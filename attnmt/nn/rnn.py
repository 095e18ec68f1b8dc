"""Recurrent building blocks shared by encoder and decoders.

An RNN state is a tensor (L, B, H), or for an LSTM a pair (h, c) of such tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

RNNState = Tensor | tuple[Tensor, Tensor]


class _StandardStrides:
    """A padded output comes back with standard strides.

    A batch-first RNN returns its (T, B, H) result transposed. For one step (T = 1) the
    strides (H, B·H, 1) still count as contiguous, but under CPU bf16 autocast a linear
    layer on them ran as a batched matmul over a copy of its weight per row, far slower
    (BENCHMARKS.md, "Issue 11, second pass").
    """

    def forward(self, input: Any, hx: Any = None) -> Any:  # noqa: A002 (nn.RNNBase's name)
        output, state = super().forward(input, hx)  # type: ignore[misc]
        if isinstance(output, Tensor):
            output = output.view(output.shape)  # standard strides
        return output, state


class GRU(_StandardStrides, nn.GRU):
    """nn.GRU, with standard output strides."""


class LSTM(_StandardStrides, nn.LSTM):
    """nn.LSTM, with standard output strides."""


class RNN(_StandardStrides, nn.RNN):
    """nn.RNN (tanh), with standard output strides."""


RNN_CLASSES: dict[str, Callable[..., nn.RNNBase]] = {"rnn": RNN, "gru": GRU, "lstm": LSTM}


def make_rnn(
    kind: str, input_size: int, hidden_size: int, layers: int, dropout: float, bidirectional: bool
) -> nn.RNNBase:
    """A batch-first recurrent layer stack; dropout applies between layers only."""
    if kind not in RNN_CLASSES:
        raise ValueError(f"unknown rnn {kind!r}; choose one of {', '.join(RNN_CLASSES)}")
    return RNN_CLASSES[kind](
        input_size,
        hidden_size,
        num_layers=layers,
        dropout=dropout if layers > 1 else 0.0,
        bidirectional=bidirectional,
        batch_first=True,
    )


def map_state(state: RNNState, fn: Callable[[Tensor], Tensor]) -> RNNState:
    """Apply `fn` to h (and c)."""
    if isinstance(state, tuple):
        return fn(state[0]), fn(state[1])
    return fn(state)


def top_layer(state: RNNState) -> Tensor:
    """The last layer's hidden state h, shape (B, H)."""
    hidden = state[0] if isinstance(state, tuple) else state
    return hidden[-1]


def select_batch(state: RNNState, index: Tensor) -> RNNState:
    """Reorder or repeat the batch dimension (dim 1) of a state."""
    return map_state(state, lambda t: t.index_select(1, index))


def reverse_padded(tokens: Tensor, lengths: Tensor) -> Tensor:
    """Reverse the first `lengths[b]` entries of each row; padding stays where it is.

    tokens (B, S, ...) -> same shape. Sutskever et al. 2014 reverse the source so that
    the first source words sit close to the first target words.
    """
    src_len = tokens.size(1)
    positions = torch.arange(src_len, device=tokens.device).unsqueeze(0)  # (1, S)
    lengths = lengths.to(tokens.device).unsqueeze(1)  # (B, 1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)  # (B, S)
    if tokens.dim() > 2:
        index = index.view(*index.shape, *([1] * (tokens.dim() - 2))).expand_as(tokens)
    return tokens.gather(1, index)
