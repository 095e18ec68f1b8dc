"""The recurrent decoders: Sutskever/Cho (no attention), Bahdanau (query s_{i-1}) and
Luong (query h_t), sharing one step loop.

Each has the decoder duties of :class:`attnmt.models.seq2seq.Seq2Seq`:

- ``prepare(enc)``: project the attention keys once per sentence;
- ``init_state(enc)``: the initial :class:`RNNDecoderState` from the encoder's final state,
  through the bridge;
- ``forward(tgt_in, enc, state)``: teacher forcing over a whole target (B, T);
- ``step(tokens, enc, state)``: one incremental step for tokens (B,).

Both return the output features that the model's output layer turns into logits, and the
attention weights of every head ((B, heads, T, S) or (B, heads, S); None for the decoder
without attention).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from attnmt.models.rnn_encoder import RNNEncoderOutput, RNNMemory
from attnmt.nn.attention import Attention
from attnmt.nn.bridge import Bridge
from attnmt.nn.rnn import RNNState, make_rnn, select_batch, top_layer


@dataclass
class RNNDecoderState:
    """What one decoding step hands to the next."""

    hidden: RNNState  # decoder RNN state, (L, B, H) (a pair for LSTM)
    feed: Tensor | None = None  # Luong h~_{t-1} with input feeding, or Cho's context c: (B, ·)
    step: int = 0  # index t of the next target position

    def index_select(self, index: Tensor) -> RNNDecoderState:
        """Reorder or repeat sentences, e.g. to follow beams."""
        feed = self.feed.index_select(0, index) if self.feed is not None else None
        return RNNDecoderState(select_batch(self.hidden, index), feed, self.step)


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

    def prepare(self, encoded: RNNEncoderOutput) -> RNNMemory:
        """The frozen memory: the encoder output with the attention keys W h_j projected
        once per sentence (None without attention)."""
        keys = self.attention.project_keys(encoded.memory) if self.attention else None
        fields = {field.name: getattr(encoded, field.name) for field in dataclasses.fields(encoded)}
        return RNNMemory(**fields, keys=keys)

    def init_state(self, enc: RNNMemory) -> RNNDecoderState:
        return RNNDecoderState(hidden=self.bridge(enc.final))

    def step(
        self, tokens: Tensor, enc: RNNMemory, state: RNNDecoderState, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None, RNNDecoderState]:
        """One step: previous tokens (B,) -> output (B, D), attention (B, heads, S), state.
        The weights are formed anyway (the context needs them); without `need_weights`
        they are not returned."""
        embedded = self.dropout(self.embedding(tokens.unsqueeze(1)))  # (B, 1, E)
        output, weights, state = self._steps(embedded, enc, state)
        if weights is None or not need_weights:
            return output.squeeze(1), None, state
        return output.squeeze(1), weights.squeeze(2), state

    def forward(
        self, tgt_in: Tensor, enc: RNNMemory, state: RNNDecoderState, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None, RNNDecoderState]:
        """Teacher forcing: tgt_in (B, T) -> outputs (B, T, D), attention (B, heads, T, S)
        (None without `need_weights`)."""
        embedded = self.dropout(self.embedding(tgt_in))  # (B, T, E)
        output, weights, state = self._steps(embedded, enc, state)
        return output, weights if need_weights else None, state

    def _steps(
        self, embedded: Tensor, enc: RNNMemory, state: RNNDecoderState
    ) -> tuple[Tensor, Tensor | None, RNNDecoderState]:  # pragma: no cover
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

    def init_state(self, enc: RNNMemory) -> RNNDecoderState:
        context = top_layer(enc.final) if self.feed_context else None  # (B, Dk)
        return RNNDecoderState(hidden=self.bridge(enc.final), feed=context)

    def _steps(
        self, embedded: Tensor, enc: RNNMemory, state: RNNDecoderState
    ) -> tuple[Tensor, Tensor | None, RNNDecoderState]:
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
        self, embedded: Tensor, enc: RNNMemory, state: RNNDecoderState
    ) -> tuple[Tensor, Tensor | None, RNNDecoderState]:
        assert self.attention is not None and enc.keys is not None
        hidden = state.hidden
        states, contexts, weights = [], [], []
        for t in range(embedded.size(1)):
            query = top_layer(hidden).unsqueeze(1)  # s_{i-1}: (B, 1, H)
            step = state.step + t  # an int, or a traced scalar in an exported graph
            positions = torch.arange(step, step + 1, device=embedded.device)  # (1,)
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
        next_state = RNNDecoderState(hidden, None, state.step + embedded.size(1))
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

    def init_state(self, enc: RNNMemory) -> RNNDecoderState:
        hidden = self.bridge(enc.final)
        feed = None
        if self.input_feeding:
            h = top_layer(hidden)
            feed = h.new_zeros(h.size(0), self.output_dim)  # h~_0 = 0
        return RNNDecoderState(hidden=hidden, feed=feed)

    def _attend(self, output: Tensor, enc: RNNMemory, first_step: int) -> tuple[Tensor, Tensor]:
        """h~_t and α_t for RNN outputs h_t (B, T, H) at steps first_step, first_step + 1, …"""
        assert self.attention is not None and enc.keys is not None
        positions = torch.arange(first_step, first_step + output.size(1), device=output.device)
        context, weights = self.attention(
            output, enc.keys, enc.src_mask, enc.src_lengths, positions
        )  # (B, T, Dk), (B, heads, T, S)
        attentional = torch.tanh(self.W_c(torch.cat([context, output], dim=-1)))  # (B, T, H)
        return self.dropout(attentional), weights

    def _steps(
        self, embedded: Tensor, enc: RNNMemory, state: RNNDecoderState
    ) -> tuple[Tensor, Tensor | None, RNNDecoderState]:
        steps = embedded.size(1)
        if not self.input_feeding:  # fast path: one RNN call, one attention call
            output, hidden = self.rnn(embedded, state.hidden)  # (B, T, H)
            attentional, weights = self._attend(output, enc, state.step)
            return attentional, weights, RNNDecoderState(hidden, None, state.step + steps)
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
        next_state = RNNDecoderState(hidden, feed, state.step + steps)
        return torch.cat(outputs, dim=1), torch.cat(alphas, dim=2), next_state
