"""The recurrent encoder: embeddings and a (bi)directional RNN over packed sequences.

    h_j = [→h_j ; ←h_j]   (Bahdanau et al. 2015, 3.2)

Sequences are packed, so padding never enters a state: the output at a padded position
is zero and the final state is the one after each sentence's last real token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnmt.nn.rnn import RNNState, make_rnn, map_state, reverse_padded
from attnmt.nn.scores import Keys


@dataclass(frozen=True)
class RNNEncoderOutput:
    """What the recurrent encoder computes about the source, once per sentence."""

    memory: Tensor  # encoder states h_j, (B, S, Dk), in source order
    src_mask: Tensor  # (B, S) bool, True marks a real token
    src_lengths: Tensor  # (B,) long
    final: RNNState  # final encoder state per layer, (L_enc, B, Dk)


@dataclass(frozen=True)
class RNNMemory(RNNEncoderOutput):
    """The encoder output with the attention keys projected once (the decoder's
    ``prepare``): the frozen memory every decoding step reads. `keys` is None exactly
    when the decoder has no attention."""

    keys: Keys | None = None  # W h_j for the score, and the values to average

    def index_select(self, index: Tensor) -> RNNMemory:
        """The memory of sentences `index` (reordered or repeated), e.g. to follow beams."""
        return RNNMemory(
            memory=self.memory.index_select(0, index),
            src_mask=self.src_mask.index_select(0, index),
            src_lengths=self.src_lengths.index_select(0, index.to(self.src_lengths.device)),
            final=map_state(self.final, lambda t: t.index_select(1, index)),
            keys=self.keys.index_select(index) if self.keys is not None else None,
        )


class RNNEncoder(nn.Module):
    """Embedding + RNN. The output size is `hidden_dim` in total (split across directions)."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        layers: int,
        rnn: str,
        bidirectional: bool,
        dropout: float,
        pad_id: int,
        reverse_source: bool,
    ) -> None:
        super().__init__()
        self.directions = 2 if bidirectional else 1
        self.layers = layers
        self.output_dim = hidden_dim
        self.reverse_source = reverse_source
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.rnn = make_rnn(
            rnn, embed_dim, hidden_dim // self.directions, layers, dropout, bidirectional
        )

    def forward(self, src: Tensor, src_lengths: Tensor) -> RNNEncoderOutput:
        """src (B, S) token ids, src_lengths (B,) -> what the decoder's ``prepare`` turns
        into the frozen :class:`RNNMemory`."""
        src_len = src.size(1)
        # An empty sentence is read as one padding token, so every row has a state.
        src_lengths = src_lengths.clamp(min=1)
        if self.reverse_source:
            src = reverse_padded(src, src_lengths)
        embedded = self.dropout(self.embedding(src))  # (B, S, E)
        packed = pack_padded_sequence(
            embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        packed_out, final = self.rnn(packed)
        memory, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=src_len)
        if self.reverse_source:
            # The RNN read the sentence backwards; put its states back in source order so
            # that attention position j always names source token j.
            memory = reverse_padded(memory, src_lengths)
        src_mask = torch.arange(src_len, device=src.device).unsqueeze(0) < src_lengths.to(
            src.device
        ).unsqueeze(1)  # (B, S)
        return RNNEncoderOutput(
            memory=memory,  # (B, S, Dk)
            src_mask=src_mask,
            src_lengths=src_lengths,
            final=map_state(final, self._join_directions),  # (L, B, Dk)
        )

    def _join_directions(self, state: Tensor) -> Tensor:
        """(L * dirs, B, H) -> (L, B, dirs * H): forward and backward side by side."""
        _, batch, hidden = state.shape
        state = state.view(self.layers, self.directions, batch, hidden)
        return torch.cat([state[:, d] for d in range(self.directions)], dim=-1)
