"""Bridges: how the encoder's final state becomes the decoder's initial state.

- ``zero``:   s_0 = 0
- ``last``:   s_0 = h_final  (Sutskever et al. 2014; Cho et al. 2014)
- ``bridge``: s_0 = tanh(W_s h_final + b)  (Bahdanau et al. 2015, A.2.2, which uses ←h_1)

Layer counts may differ: decoder layer l takes encoder layer l counted from the top,
and extra decoder layers below reuse the bottom encoder layer. For an LSTM the cell
state is bridged the same way (zeros, copied, or through its own linear map).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from attnmt.nn.rnn import RNNState, map_state


def align_layers(state: Tensor, layers: int) -> Tensor:
    """(L_enc, B, D) -> (layers, B, D): keep the top `layers`, or repeat the bottom one."""
    have = state.size(0)
    if have >= layers:
        return state[have - layers :]
    extra = state[:1].expand(layers - have, -1, -1)
    return torch.cat([extra, state], dim=0)


class Bridge(nn.Module):
    """Maps an encoder final state (L_enc, B, Dk) to a decoder state (L_dec, B, H)."""

    def __init__(self, kind: str, enc_dim: int, dec_dim: int, dec_layers: int, lstm: bool) -> None:
        super().__init__()
        if kind not in ("zero", "last", "bridge"):
            raise ValueError(f"unknown bridge {kind!r}; choose one of zero, last, bridge")
        if kind == "last" and enc_dim != dec_dim:
            raise ValueError(
                f"bridge 'last' copies the encoder state, so its size {enc_dim} must equal "
                f"the decoder's {dec_dim}; use bridge 'bridge'"
            )
        self.kind = kind
        self.dec_dim = dec_dim
        self.dec_layers = dec_layers
        self.project_h = nn.Linear(enc_dim, dec_dim) if kind == "bridge" else None
        self.project_c = nn.Linear(enc_dim, dec_dim) if kind == "bridge" and lstm else None

    def forward(self, final: RNNState) -> RNNState:
        aligned = map_state(final, lambda t: align_layers(t, self.dec_layers))
        if self.kind == "zero":
            return map_state(
                aligned, lambda t: t.new_zeros(self.dec_layers, t.size(1), self.dec_dim)
            )
        if self.kind == "last":
            return aligned
        assert self.project_h is not None
        if isinstance(aligned, tuple):
            assert self.project_c is not None
            return self.project_h(aligned[0]).tanh(), self.project_c(aligned[1]).tanh()
        return self.project_h(aligned).tanh()
