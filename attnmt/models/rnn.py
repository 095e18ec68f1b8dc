"""The recurrent family: a (bi)directional RNN encoder and three decoders.

Encoder (Bahdanau et al. 2015, 3.2): embeddings and an RNN over packed sequences,

    h_j = [→h_j ; ←h_j]

so padding never enters a state. Decoders, all sharing one step loop:

- ``none``: Sutskever et al. 2014 / Cho et al. 2014, no attention;
- ``bahdanau``: attention queried with the previous state s_{i-1};
- ``luong``: attention queried with the current state h_t, with or without input feeding.

Everything RNN-shaped (states (L, B, H), bridges) stays inside this module; the rest of
attnmt sees only the model interface of :mod:`attnmt.models.interface`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnmt.config import ModelConfig
from attnmt.models.seq2seq import Seq2Seq
from attnmt.nn.attention import Attention, Keys
from attnmt.nn.bridge import Bridge
from attnmt.nn.rnn import RNNState, make_rnn, map_state, reverse_padded, select_batch, top_layer
from attnmt.nn.scores import build_score
from attnmt.nn.windows import build_window
from attnmt.special import PAD_ID


@dataclass
class EncoderOutput:
    """Everything a decoder needs about the source, computed once per sentence."""

    memory: Tensor  # encoder states h_j, (B, S, Dk), in source order
    src_mask: Tensor  # (B, S) bool, True marks a real token
    src_lengths: Tensor  # (B,) long
    final: RNNState  # final encoder state per layer, (L_enc, B, Dk)
    keys: Keys | None = None  # attention keys projected once (None without attention)

    def index_select(self, index: Tensor) -> EncoderOutput:
        """Reorder or repeat sentences, e.g. to follow beams."""
        return EncoderOutput(
            memory=self.memory.index_select(0, index),
            src_mask=self.src_mask.index_select(0, index),
            src_lengths=self.src_lengths.index_select(0, index.to(self.src_lengths.device)),
            final=map_state(self.final, lambda t: t.index_select(1, index)),
            keys=self.keys.index_select(index) if self.keys is not None else None,
        )


class Encoder(nn.Module):
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

    def forward(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """src (B, S) token ids, src_lengths (B,) -> EncoderOutput (keys not yet projected)."""
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
        return EncoderOutput(
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


@dataclass
class DecoderState:
    """What one decoding step hands to the next."""

    hidden: RNNState  # decoder RNN state, (L, B, H) (a pair for LSTM)
    feed: Tensor | None = None  # Luong h~_{t-1} with input feeding, or Cho's context c: (B, ·)
    step: int = 0  # index t of the next target position

    def index_select(self, index: Tensor) -> DecoderState:
        """Reorder or repeat sentences, e.g. to follow beams."""
        feed = self.feed.index_select(0, index) if self.feed is not None else None
        return DecoderState(select_batch(self.hidden, index), feed, self.step)


class Decoder(nn.Module):
    """Shared parts: target embedding, dropout, bridge, the RNN and the step loop."""

    attention: Attention | None
    output_dim: int

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        dropout: float,
        pad_id: int,
        bridge: Bridge,
        attention: Attention | None = None,
    ) -> None:
        super().__init__()
        self.attention = attention
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.bridge = bridge

    @property
    def has_attention(self) -> bool:
        return self.attention is not None

    def prepare(self, enc: EncoderOutput) -> EncoderOutput:
        """Project the attention keys W h_j once per sentence (nothing without attention)."""
        if self.attention is not None:
            enc.keys = self.attention.project_keys(enc.memory)
        return enc

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        return DecoderState(hidden=self.bridge(enc.final))

    def step(
        self, tokens: Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[Tensor, Tensor | None, DecoderState]:
        """One step: previous tokens (B,) -> output (B, D), attention (B, heads, S), state."""
        embedded = self.dropout(self.embedding(tokens.unsqueeze(1)))  # (B, 1, E)
        output, weights, state = self._steps(embedded, enc, state)
        return output.squeeze(1), (weights.squeeze(2) if weights is not None else None), state

    def forward(
        self, tgt_in: Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[Tensor, Tensor | None, DecoderState]:
        """Teacher forcing: tgt_in (B, T) -> outputs (B, T, D), attention (B, heads, T, S)."""
        embedded = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        return self._steps(embedded, enc, state)

    def _steps(
        self, embedded: Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[Tensor, Tensor | None, DecoderState]:  # pragma: no cover
        raise NotImplementedError


class PlainDecoder(Decoder):
    """No attention: the encoder's final state is all the decoder knows of the source.

        s_0 = bridge(h_final)
        s_t = RNN(E y_{t-1}, s_{t-1})                     (Sutskever et al. 2014)

    With ``feed_context`` the summary c = h_final (top layer) also enters every step and
    the output layer (Cho et al. 2014, eq. 2 and A.1.2):

        s_t = RNN([E y_{t-1}; c], s_{t-1}),   o_t = tanh(W_o [s_t; c; E y_{t-1}])

    c never changes, so the whole target runs through the RNN in one call.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        layers: int,
        rnn: str,
        dropout: float,
        pad_id: int,
        bridge: Bridge,
        context_dim: int,
        feed_context: bool,
    ) -> None:
        super().__init__(vocab_size, embed_dim, dropout, pad_id, bridge)
        self.feed_context = feed_context
        extra = context_dim if feed_context else 0
        self.rnn = make_rnn(rnn, embed_dim + extra, hidden_dim, layers, dropout, False)
        self.W_o = (
            nn.Linear(hidden_dim + context_dim + embed_dim, hidden_dim) if feed_context else None
        )
        self.output_dim = hidden_dim

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        context = top_layer(enc.final) if self.feed_context else None  # (B, Dk)
        return DecoderState(hidden=self.bridge(enc.final), feed=context)

    def _steps(
        self, embedded: Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[Tensor, Tensor | None, DecoderState]:
        steps = embedded.size(1)
        inputs = embedded  # (B, T, E)
        if state.feed is not None:
            context = state.feed.unsqueeze(1).expand(-1, steps, -1)  # (B, T, Dk)
            inputs = torch.cat([embedded, context], dim=-1)
        output, hidden = self.rnn(inputs, state.hidden)  # (B, T, H)
        if self.W_o is not None:
            output = torch.tanh(self.W_o(torch.cat([output, context, embedded], dim=-1)))
        return self.dropout(output), None, replace(state, hidden=hidden, step=state.step + steps)


class BahdanauDecoder(Decoder):
    """Attention queried with the previous state (Bahdanau et al. 2015, 3.1 and A.2.2):

        e_ij = score(s_{i-1}, h_j),   α_ij = softmax_j(e_ij),   c_i = Σ_j α_ij h_j
        s_i  = RNN([E y_{i-1}; c_i], s_{i-1})
        t_i  = tanh(W_o [s_i; c_i; E y_{i-1}])
        p(y_i | y_<i, x) = softmax(W_out t_i)

    c_i feeds s_i, so the steps run one after another; the output layer t_i runs once
    over all steps afterwards.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        layers: int,
        rnn: str,
        dropout: float,
        pad_id: int,
        bridge: Bridge,
        attention: Attention,
        key_dim: int,
    ) -> None:
        super().__init__(vocab_size, embed_dim, dropout, pad_id, bridge, attention)
        self.rnn = make_rnn(rnn, embed_dim + key_dim, hidden_dim, layers, dropout, False)
        self.W_o = nn.Linear(hidden_dim + key_dim + embed_dim, hidden_dim)
        self.output_dim = hidden_dim

    def _steps(
        self, embedded: Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[Tensor, Tensor | None, DecoderState]:
        assert self.attention is not None and enc.keys is not None
        hidden = state.hidden
        states, contexts, weights = [], [], []
        for t in range(embedded.size(1)):
            query = top_layer(hidden).unsqueeze(1)  # s_{i-1}: (B, 1, H)
            positions = torch.tensor([state.step + t], device=embedded.device)
            context, alpha = self.attention(
                query, enc.keys, enc.src_mask, enc.src_lengths, positions
            )  # (B, 1, Dk), (B, heads, 1, S)
            rnn_in = torch.cat([embedded[:, t : t + 1], context], dim=-1)  # (B, 1, E + Dk)
            output, hidden = self.rnn(rnn_in, hidden)  # s_i: (B, 1, H)
            states.append(output)
            contexts.append(context)
            weights.append(alpha)
        s = torch.cat(states, dim=1)  # (B, T, H)
        c = torch.cat(contexts, dim=1)  # (B, T, Dk)
        readout = torch.tanh(self.W_o(torch.cat([s, c, embedded], dim=-1)))  # (B, T, H)
        next_state = DecoderState(hidden, None, state.step + embedded.size(1))
        return self.dropout(readout), torch.cat(weights, dim=2), next_state


class LuongDecoder(Decoder):
    """Attention queried with the current state (Luong et al. 2015, 3 and 3.3):

        h_t  = RNN([E y_{t-1}; h~_{t-1}], h_{t-1})     (input feeding; without it: E y_{t-1})
        c_t  = Σ_j α_tj h̄_j,   α_tj = softmax_j(score(h_t, h̄_j))
        h~_t = tanh(W_c [c_t; h_t])                     (eq. 5)
        p(y_t | y_<t, x) = softmax(W_s h~_t)            (eq. 6)

    Without input feeding nothing flows from attention back into the RNN, so teacher
    forcing runs the RNN over the whole target in one call and attends for all steps in
    one batched operation (the fast path).
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        hidden_dim: int,
        layers: int,
        rnn: str,
        dropout: float,
        pad_id: int,
        bridge: Bridge,
        attention: Attention,
        key_dim: int,
        input_feeding: bool,
    ) -> None:
        super().__init__(vocab_size, embed_dim, dropout, pad_id, bridge, attention)
        self.input_feeding = input_feeding
        feed_dim = hidden_dim if input_feeding else 0
        self.rnn = make_rnn(rnn, embed_dim + feed_dim, hidden_dim, layers, dropout, False)
        self.W_c = nn.Linear(key_dim + hidden_dim, hidden_dim, bias=False)
        self.output_dim = hidden_dim

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        hidden = self.bridge(enc.final)
        feed = None
        if self.input_feeding:
            h = top_layer(hidden)
            feed = h.new_zeros(h.size(0), self.output_dim)  # h~_0 = 0
        return DecoderState(hidden=hidden, feed=feed)

    def _attend(self, output: Tensor, enc: EncoderOutput, first_step: int) -> tuple[Tensor, Tensor]:
        """h~_t and α_t for RNN outputs h_t (B, T, H) at steps first_step, first_step + 1, …"""
        assert self.attention is not None and enc.keys is not None
        positions = torch.arange(first_step, first_step + output.size(1), device=output.device)
        context, weights = self.attention(
            output, enc.keys, enc.src_mask, enc.src_lengths, positions
        )  # (B, T, Dk), (B, heads, T, S)
        attentional = torch.tanh(self.W_c(torch.cat([context, output], dim=-1)))  # (B, T, H)
        return self.dropout(attentional), weights

    def _steps(
        self, embedded: Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[Tensor, Tensor | None, DecoderState]:
        steps = embedded.size(1)
        if not self.input_feeding:  # fast path: one RNN call, one attention call
            output, hidden = self.rnn(embedded, state.hidden)  # (B, T, H)
            attentional, weights = self._attend(output, enc, state.step)
            return attentional, weights, DecoderState(hidden, None, state.step + steps)
        hidden, feed = state.hidden, state.feed
        assert feed is not None
        outputs, alphas = [], []
        for t in range(steps):
            rnn_in = torch.cat([embedded[:, t], feed], dim=-1).unsqueeze(1)  # (B, 1, E + H)
            output, hidden = self.rnn(rnn_in, hidden)  # h_t: (B, 1, H)
            attentional, alpha = self._attend(output, enc, state.step + t)
            feed = attentional.squeeze(1)
            outputs.append(attentional)
            alphas.append(alpha)
        next_state = DecoderState(hidden, feed, state.step + steps)
        return torch.cat(outputs, dim=1), torch.cat(alphas, dim=2), next_state


# ---------------------------------------------------------------------------
# Building the family from its config


def build_attention(config: ModelConfig, query_dim: int, key_dim: int) -> Attention:
    """The score and window that model.attention names."""
    attn = config.attention
    attn_dim = attn.attn_dim or config.hidden_dim
    score = build_score(attn.score, query_dim, key_dim, attn_dim, attn.heads, attn.max_src_len)
    window = build_window(attn.window, query_dim, attn_dim, attn.window_half_width)
    return Attention(score, window)


@dataclass
class DecoderParts:
    """What every decoder is built from: sizes, the bridge and the encoder output size."""

    vocab_size: int
    key_dim: int
    bridge: Bridge


def _plain(config: ModelConfig, parts: DecoderParts) -> Decoder:
    return PlainDecoder(
        **_common(config, parts), context_dim=parts.key_dim, feed_context=config.feed_context
    )


def _bahdanau(config: ModelConfig, parts: DecoderParts) -> Decoder:
    attention = build_attention(config, query_dim=config.hidden_dim, key_dim=parts.key_dim)
    return BahdanauDecoder(**_common(config, parts), attention=attention, key_dim=parts.key_dim)


def _luong(config: ModelConfig, parts: DecoderParts) -> Decoder:
    attention = build_attention(config, query_dim=config.hidden_dim, key_dim=parts.key_dim)
    return LuongDecoder(
        **_common(config, parts),
        attention=attention,
        key_dim=parts.key_dim,
        input_feeding=config.input_feeding,
    )


def _common(config: ModelConfig, parts: DecoderParts) -> dict[str, Any]:
    return dict(
        vocab_size=parts.vocab_size,
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        layers=config.decoder_layers or config.layers,
        rnn=config.rnn,
        dropout=config.dropout,
        pad_id=PAD_ID,
        bridge=parts.bridge,
    )


DECODERS: dict[str, Callable[[ModelConfig, DecoderParts], Decoder]] = {
    "none": _plain,
    "bahdanau": _bahdanau,
    "luong": _luong,
}
"""model.decoder -> its builder. A new decoder is one class and one entry here."""


def build(config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
    """The RNN encoder-decoder that `config` describes."""
    encoder = Encoder(
        vocab_size=src_vocab_size,
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        layers=config.layers,
        rnn=config.rnn,
        bidirectional=config.bidirectional,
        dropout=config.dropout,
        pad_id=PAD_ID,
        reverse_source=config.reverse_source,
    )
    dec_layers = config.decoder_layers or config.layers
    bridge = Bridge(
        config.bridge, encoder.output_dim, config.hidden_dim, dec_layers, config.rnn == "lstm"
    )
    parts = DecoderParts(tgt_vocab_size, encoder.output_dim, bridge)
    decoder = DECODERS[config.decoder](config, parts)
    generator = nn.Linear(decoder.output_dim, tgt_vocab_size)
    if config.tie_embeddings:
        generator.weight = decoder.embedding.weight
    return Seq2Seq(encoder, decoder, generator)
