"""The recurrent decoders: Sutskever/Cho (no attention), Bahdanau (query s_{i-1}) and
Luong (query h_t), sharing one step loop.

Each has the decoder duties of :class:`attnmt.models.seq2seq.Seq2Seq`:

- ``prepare(enc)``: project the attention keys once per sentence;
- ``init_state(enc)``: the initial :class:`DecoderState` from the encoder's final state,
  through the bridge;
- ``forward(tgt_in, enc, state)``: teacher forcing over a whole target (B, T);
- ``step(tokens, enc, state)``: one incremental step for tokens (B,).

Both return the output features that the model's output layer turns into logits, and the
attention weights of every head ((B, heads, T, S) or (B, heads, S); None for the decoder
without attention).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnmt.models.rnn_encoder import EncoderOutput
from attnmt.nn.attention import Attention
from attnmt.nn.bridge import Bridge
from attnmt.nn.rnn import RNNState, make_rnn, select_batch, top_layer


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

    ``fused_gru = True`` runs a one-layer GRU through :meth:`_gru_steps` instead: the
    GRU's input projection splits as W_i [E y_{i-1}; c_i] = W_iE E y_{i-1} + W_ic c_i,
    and the first term, which does not depend on the previous state, is computed for all
    steps in one matmul before the loop. It is off because it measured no faster than
    nn.GRU's own step on the AMD EPYC (BENCHMARKS.md, "Decoder loop"); tests keep the two
    equal so that it can be measured again on other machines.
    """

    fused_gru: bool = False

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
        rnn = self.rnn
        if self.fused_gru and isinstance(rnn, nn.GRU) and rnn.num_layers == 1 and rnn.bias:
            return self._gru_steps(embedded, enc, state)
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

    def _gru_steps(
        self, embedded: Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[Tensor, Tensor | None, DecoderState]:
        """The same recurrence with the GRU cell written out (equal to nn.GRU within
        rounding, tests/models/test_rnn_decoders.py) and W_iE E y hoisted out of the loop:

            r = σ(W_ir x + b_ir + W_hr s + b_hr),   z = σ(W_iz x + b_iz + W_hz s + b_hz)
            n = tanh(W_in x + b_in + r ⊙ (W_hn s + b_hn)),   s' = (1 - z) ⊙ n + z ⊙ s
        """
        assert self.attention is not None and enc.keys is not None
        weight = self.rnn.get_parameter
        embed_dim = embedded.size(-1)
        w_ih, w_hh = weight("weight_ih_l0"), weight("weight_hh_l0")  # (3H, E + Dk), (3H, H)
        b_ih, b_hh = weight("bias_ih_l0"), weight("bias_hh_l0")  # (3H,)
        x_embedded = F.linear(embedded, w_ih[:, :embed_dim], b_ih)  # (B, T, 3H)
        w_context = w_ih[:, embed_dim:]  # (3H, Dk)
        hidden = state.hidden
        assert isinstance(hidden, Tensor)
        s = hidden[0]  # s_{i-1}: (B, H)
        states, contexts, weights = [], [], []
        for t in range(embedded.size(1)):
            positions = torch.tensor([state.step + t], device=embedded.device)
            context, alpha = self.attention(
                s.unsqueeze(1), enc.keys, enc.src_mask, enc.src_lengths, positions
            )  # (B, 1, Dk), (B, heads, 1, S)
            x_gates = x_embedded[:, t] + F.linear(context.squeeze(1), w_context)  # (B, 3H)
            h_gates = F.linear(s, w_hh, b_hh)  # (B, 3H)
            x_r, x_z, x_n = x_gates.chunk(3, dim=-1)  # (B, H) each
            h_r, h_z, h_n = h_gates.chunk(3, dim=-1)
            r = torch.sigmoid(x_r + h_r)
            z = torch.sigmoid(x_z + h_z)
            n = torch.tanh(x_n + r * h_n)
            s = torch.lerp(n, s.to(n.dtype), z)  # (1 - z) n + z s: (B, H)
            states.append(s)
            contexts.append(context)
            weights.append(alpha)
        s_all = torch.stack(states, dim=1)  # (B, T, H)
        c = torch.cat(contexts, dim=1)  # (B, T, Dk)
        readout = torch.tanh(self.W_o(torch.cat([s_all, c, embedded], dim=-1)))  # (B, T, H)
        next_state = DecoderState(s.unsqueeze(0), None, state.step + embedded.size(1))
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
