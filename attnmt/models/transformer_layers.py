"""The Transformer's pieces (Vaswani et al. 2017): sub-layers, layers, encoder and decoder.

Every attention here, encoder self-attention, decoder causal self-attention and
cross-attention, is an :class:`attnmt.nn.attention.Attention` with the multi-head score
(:class:`attnmt.nn.scores.MultiHeadScore`) and the global window, so the masking, the
softmax and the weighted sum happen in the one :func:`attnmt.nn.attention.attend` that
Bahdanau's and Luong's decoders use too. Only the mask differs:

- encoder self-attention: the source padding mask, (B, 1, S);
- decoder self-attention: causal (position i sees j ≤ i) and the target padding mask;
- cross-attention: the source padding mask, keys and values projected once per sentence.

A sub-layer is wrapped in a residual connection with layer normalisation, before the
sub-layer (``pre``, the default) or after the sum (``post``, the paper's):

    pre:   x + Dropout(Sublayer(LayerNorm(x)))      and one LayerNorm after the last layer
    post:  LayerNorm(x + Dropout(Sublayer(x)))      (Vaswani et al. 2017, 5.4)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar, cast

import torch
from torch import Tensor, nn

from attnmt.nn.attention import Attention
from attnmt.nn.positions import Positions
from attnmt.nn.scores import Keys, MultiHeadScore
from attnmt.nn.windows import GlobalWindow

T = TypeVar("T")

# ---------------------------------------------------------------------------
# Sub-layers


def multi_head(dim: int, heads: int, dropout: float) -> Attention:
    """MultiHead(Q, K, V) = [head_1; …; head_h] W^O,
    head_i = softmax(Q W_i^Q (K W_i^K)ᵀ / √d_k + mask) V W_i^V,   d_k = d_model / h
    (Vaswani et al. 2017, 3.2.2), through the one `attend`, with attention dropout."""
    attention = Attention(MultiHeadScore(dim, dim, dim, heads), GlobalWindow(), dropout)
    for linear in attention.score.modules():
        if isinstance(linear, nn.Linear):
            nn.init.xavier_uniform_(linear.weight)
    return attention


class FeedForward(nn.Module):
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2, applied at every position alike
    (Vaswani et al. 2017, eq. 2); W_1 is d_model × d_ff."""

    def __init__(self, dim: int, inner_dim: int) -> None:
        super().__init__()
        self.W_1 = nn.Linear(dim, inner_dim)
        self.W_2 = nn.Linear(inner_dim, dim)
        nn.init.xavier_uniform_(self.W_1.weight)
        nn.init.xavier_uniform_(self.W_2.weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.W_2(torch.relu(self.W_1(x)))


class Residual(nn.Module):
    """The residual connection around one sub-layer, with layer normalisation:

        pre-norm:   y = x + Dropout(f(LayerNorm(x)))
        post-norm:  y = LayerNorm(x + Dropout(f(x)))          (Vaswani et al. 2017, 5.4)

    `f` returns its output and anything else to pass on (attention weights, keys).
    """

    def __init__(self, dim: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.pre_norm = pre_norm

    def forward(self, x: Tensor, f: Callable[[Tensor], tuple[Tensor, T]]) -> tuple[Tensor, T]:
        out, extra = f(self.norm(x) if self.pre_norm else x)
        y = x + self.dropout(out)
        return (y if self.pre_norm else self.norm(y)), extra


def self_attention_keys(attention: Attention, x: Tensor, cache: Keys | None) -> Keys:
    """K = x W^K and V = x W^V of the new positions (B, h, T, d_k), after the cached ones."""
    new = attention.project_keys(x)
    if cache is None:
        return new
    return Keys(torch.cat([cache.keys, new.keys], dim=2), torch.cat([cache.values, new.values], 2))


# ---------------------------------------------------------------------------
# Layers


class EncoderLayer(nn.Module):
    """One encoder layer: self-attention over the source, then the feed-forward network.

    z = x + MultiHead(x, x, x; padding mask)      (residuals as in :class:`Residual`)
    y = z + FFN(z)
    """

    def __init__(
        self, dim: int, heads: int, ff_dim: int, dropout: float, attn_dropout: float, pre_norm: bool
    ) -> None:
        super().__init__()
        self.self_attention = multi_head(dim, heads, attn_dropout)
        self.feed_forward = FeedForward(dim, ff_dim)
        self.attention_block = Residual(dim, dropout, pre_norm)
        self.feed_forward_block = Residual(dim, dropout, pre_norm)

    def forward(
        self,
        x: Tensor,
        mask: Tensor,
        src_lengths: Tensor,
        positions: Tensor,
        need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, S, D), mask (B, 1, S) True on real tokens -> y (B, S, D), weights
        (B, heads, S, S) (None without `need_weights`: the fused path)."""

        def attend_self(h: Tensor) -> tuple[Tensor, Tensor | None]:
            keys = self.self_attention.project_keys(h)
            return self.self_attention(h, keys, mask, src_lengths, positions, need_weights)

        x, weights = self.attention_block(x, attend_self)
        x, _ = self.feed_forward_block(x, lambda h: (self.feed_forward(h), None))
        return x, weights


Wanted = Literal["all", "last cross", "none"]
"""Which attention weights a decoder pass forms: every layer's (the maps), the last
layer's cross-attention only (what search shows), or none (training): the others take
the fused path."""


@dataclass
class LayerAttention:
    """The attention weights of one decoder layer: (B, heads, T, past + T) and (B, heads,
    T, S); None where they were not asked for."""

    self_weights: Tensor | None
    cross_weights: Tensor | None


class DecoderLayer(nn.Module):
    """One decoder layer: causal self-attention, cross-attention, feed-forward.

    z_1 = x + MultiHead(x, y_≤t, y_≤t; causal and padding mask)
    z_2 = z_1 + MultiHead(z_1, h, h; source padding mask)        h: encoder output
    y   = z_2 + FFN(z_2)
    """

    def __init__(
        self, dim: int, heads: int, ff_dim: int, dropout: float, attn_dropout: float, pre_norm: bool
    ) -> None:
        super().__init__()
        self.self_attention = multi_head(dim, heads, attn_dropout)
        self.cross_attention = multi_head(dim, heads, attn_dropout)
        self.feed_forward = FeedForward(dim, ff_dim)
        self.self_block = Residual(dim, dropout, pre_norm)
        self.cross_block = Residual(dim, dropout, pre_norm)
        self.feed_forward_block = Residual(dim, dropout, pre_norm)

    def forward(
        self,
        x: Tensor,
        cache: Keys | None,
        self_mask: Tensor,
        memory_keys: Keys,
        src_mask: Tensor,
        src_lengths: Tensor,
        positions: Tensor,
        need_self: bool = True,
        need_cross: bool = True,
    ) -> tuple[Tensor, Keys, LayerAttention]:
        """x (B, T, D) at target positions `positions` (T,), after the `cache` of earlier
        positions -> y (B, T, D), the cache extended by these positions, the weights
        (self-attention with `need_self`, cross-attention with `need_cross`)."""

        def attend_self(h: Tensor) -> tuple[Tensor, tuple[Tensor | None, Keys]]:
            keys = self_attention_keys(self.self_attention, h, cache)
            context, weights = self.self_attention(
                h, keys, self_mask, src_lengths, positions, need_self
            )
            return context, (weights, keys)

        def attend_source(h: Tensor) -> tuple[Tensor, Tensor | None]:
            return self.cross_attention(
                h, memory_keys, src_mask, src_lengths, positions, need_cross
            )

        x, (self_weights, keys) = self.self_block(x, attend_self)
        x, cross_weights = self.cross_block(x, attend_source)
        x, _ = self.feed_forward_block(x, lambda h: (self.feed_forward(h), None))
        return x, keys, LayerAttention(self_weights, cross_weights)


# ---------------------------------------------------------------------------
# Embeddings


class Embedder(nn.Module):
    """x_i = √d_model · E[w_i] + PE(i), then dropout (Vaswani et al. 2017, 3.4 and 3.5).

    E is initialised from N(0, 1/d_model), so √d_model · E[w] has entries of variance 1,
    the same scale as the position vectors (entries in [-1, 1]); without the factor the
    positions would drown the words. With tied embeddings the output layer uses E itself,
    where the small initial scale keeps the first logits small.
    """

    def __init__(
        self, vocab_size: int, dim: int, pad_id: int, positions: Positions, dropout: float
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        nn.init.normal_(self.embedding.weight, 0.0, dim**-0.5)
        with torch.no_grad():
            self.embedding.weight[pad_id].zero_()
        self.scale = dim**0.5
        self.positions = positions
        self.dropout = nn.Dropout(dropout)

    def forward(self, tokens: Tensor, first: int = 0) -> Tensor:
        """tokens (B, T) at positions first .. first + T - 1 -> (B, T, D)."""
        embedded = self.embedding(tokens) * self.scale
        position = self.positions(first, tokens.size(1), tokens.device)  # (T, D)
        return self.dropout(embedded + position.to(embedded.dtype))


# ---------------------------------------------------------------------------
# Encoder and decoder


@dataclass(frozen=True)
class TransformerEncoderOutput:
    """What the encoder computes about the source, once per sentence."""

    memory: Tensor  # encoder output h_j, (B, S, D), zero at padding
    src_mask: Tensor  # (B, S) bool, True on real tokens
    src_lengths: Tensor  # (B,) long
    self_attention: Tensor | None = field(default=None, repr=False)
    """(B, layers, heads, S, S), only when the encoder was asked to record it."""


@dataclass(frozen=True)
class TransformerMemory:
    """The frozen memory every decoding step reads: the encoder output with every decoder
    layer's cross-attention keys and values projected once (the decoder's ``prepare``)."""

    memory: Tensor  # (B, S, D)
    src_mask: Tensor  # (B, S)
    src_lengths: Tensor  # (B,)
    keys: tuple[Keys, ...]  # one per decoder layer

    def index_select(self, index: Tensor) -> TransformerMemory:
        """The memory of sentences `index` (reordered or repeated), e.g. to follow beams."""
        return TransformerMemory(
            memory=self.memory.index_select(0, index),
            src_mask=self.src_mask.index_select(0, index),
            src_lengths=self.src_lengths.index_select(0, index.to(self.src_lengths.device)),
            keys=tuple(keys.index_select(index) for keys in self.keys),
        )


class TransformerEncoder(nn.Module):
    """N encoder layers over the embedded source (Vaswani et al. 2017, 3.1)."""

    def __init__(self, embedder: Embedder, layers: list[EncoderLayer], final_norm: bool) -> None:
        super().__init__()
        self.embedder = embedder
        self.layers = nn.ModuleList(layers)
        dim = embedder.embedding.embedding_dim
        self.final_norm = nn.LayerNorm(dim) if final_norm else nn.Identity()

    def forward(
        self, src: Tensor, src_lengths: Tensor, record: bool = False
    ) -> TransformerEncoderOutput:
        """src (B, S) token ids, src_lengths (B,) -> what the decoder's ``prepare`` turns
        into the frozen :class:`TransformerMemory`; with `record`, the self-attention of
        every layer and head too."""
        # An empty sentence is read as one padding token, so every query has a key.
        src_lengths = src_lengths.clamp(min=1)
        positions = torch.arange(src.size(1), device=src.device)  # (S,)
        src_mask = positions.unsqueeze(0) < src_lengths.to(src.device).unsqueeze(1)  # (B, S)
        x = self.embedder(src)  # (B, S, D)
        recorded = []
        for layer in self.layers:
            x, weights = layer(x, src_mask.unsqueeze(1), src_lengths, positions, record)
            if record:
                recorded.append(weights)
        memory = self.final_norm(x).masked_fill(~src_mask.unsqueeze(-1), 0.0)
        return TransformerEncoderOutput(
            memory=memory,
            src_mask=src_mask,
            src_lengths=src_lengths,
            self_attention=torch.stack(recorded, dim=1) if record else None,
        )


@dataclass
class TransformerDecoderState:
    """The key/value cache of the decoder's self-attention: for every layer, K and V of
    every target position so far, (B, heads, t, d_k). Only real tokens are cached (search
    feeds no padding). Follows beams through `index_select`."""

    cache: tuple[Keys, ...] = ()  # one per layer (init_state: of length 0)
    step: int = 0  # index t of the next target position

    def index_select(self, index: Tensor) -> TransformerDecoderState:
        return TransformerDecoderState(
            tuple(keys.index_select(index) for keys in self.cache), self.step
        )


@dataclass
class DecoderRun:
    """What a decoder pass returns: outputs, every layer's attention, the next state."""

    output: Tensor  # (B, T, D)
    attention: list[LayerAttention]
    state: TransformerDecoderState


class TransformerDecoder(nn.Module):
    """N decoder layers over the embedded target prefix (Vaswani et al. 2017, 3.1), with
    the decoder duties of :class:`attnmt.models.seq2seq.Seq2Seq`.

    Teacher forcing and incremental decoding run the same code: a pass over T new target
    positions appends their keys and values to each layer's cache and attends over the
    cache, so `step` is a pass with T = 1 and only the new position is computed.
    The attention it reports is the last layer's cross-attention, every head.
    """

    has_attention = True

    def __init__(
        self, embedder: Embedder, layers: list[DecoderLayer], final_norm: bool, pad_id: int
    ) -> None:
        super().__init__()
        self.embedder = embedder
        self.layers = nn.ModuleList(layers)
        self.pad_id = pad_id
        self.output_dim = embedder.embedding.embedding_dim
        self.final_norm = nn.LayerNorm(self.output_dim) if final_norm else nn.Identity()

    @property
    def embedding(self) -> nn.Embedding:
        """The target embedding matrix (what tie_embeddings shares with the output layer)."""
        return self.embedder.embedding

    def prepare(self, encoded: TransformerEncoderOutput) -> TransformerMemory:
        """The frozen memory: every layer's cross-attention keys and values projected once
        per sentence."""
        keys = tuple(layer.cross_attention.project_keys(encoded.memory) for layer in self._layers)
        return TransformerMemory(encoded.memory, encoded.src_mask, encoded.src_lengths, keys)

    @property
    def _layers(self) -> list[DecoderLayer]:
        return cast(list[DecoderLayer], list(self.layers))

    def init_state(self, enc: TransformerMemory) -> TransformerDecoderState:
        """An empty key/value cache for every layer, (B, heads, 0, d_k), cut from the
        cross-attention keys (same heads and d_k): the state has one structure at every
        step, which an exported step graph needs (attnmt/export/graphs.py)."""
        return TransformerDecoderState(
            tuple(Keys(keys.keys[:, :, :0], keys.values[:, :, :0]) for keys in enc.keys)
        )

    def run(
        self,
        tokens: Tensor,
        enc: TransformerMemory,
        state: TransformerDecoderState,
        wanted: Wanted = "all",
    ) -> DecoderRun:
        """tokens (B, T) at positions state.step .. state.step + T - 1; the attention
        weights `wanted` (see :data:`Wanted`)."""
        past, steps = state.step, tokens.size(1)
        positions = torch.arange(past, past + steps, device=tokens.device)  # (T,)
        keys_at = torch.arange(past + steps, device=tokens.device)  # (past + T,)
        causal = keys_at.unsqueeze(0) <= positions.unsqueeze(1)  # (T, past + T)
        real = torch.cat(  # the cache holds real tokens only
            [tokens.new_ones(tokens.size(0), past, dtype=torch.bool), tokens != self.pad_id], 1
        )  # (B, past + T)
        self_mask = causal.unsqueeze(0) & real.unsqueeze(1)  # (B, T, past + T)
        x = self.embedder(tokens, past)
        caches, weights = [], []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            cache = state.cache[i] if state.cache else None
            need_cross = wanted == "all" or (wanted == "last cross" and i == last)
            x, keys, attention = layer(
                x,
                cache,
                self_mask,
                enc.keys[i],
                enc.src_mask,
                enc.src_lengths,
                positions,
                need_self=wanted == "all",
                need_cross=need_cross,
            )
            caches.append(keys)
            weights.append(attention)
        return DecoderRun(
            self.final_norm(x), weights, TransformerDecoderState(tuple(caches), past + steps)
        )

    def forward(
        self,
        tgt_in: Tensor,
        enc: TransformerMemory,
        state: TransformerDecoderState,
        need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None, TransformerDecoderState]:
        """Teacher forcing: tgt_in (B, T) -> outputs (B, T, D), the last layer's
        cross-attention (B, heads, T, S) (None without `need_weights`), the state after T
        positions."""
        result = self.run(tgt_in, enc, state, "last cross" if need_weights else "none")
        weights = result.attention[-1].cross_weights
        return result.output, weights, result.state

    def step(
        self,
        tokens: Tensor,
        enc: TransformerMemory,
        state: TransformerDecoderState,
        need_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None, TransformerDecoderState]:
        """One position: tokens (B,) -> output (B, D), attention (B, heads, S) (None
        without `need_weights`), state."""
        result = self.run(tokens.unsqueeze(1), enc, state, "last cross" if need_weights else "none")
        weights = result.attention[-1].cross_weights
        cross = weights.squeeze(2) if weights is not None else None
        return result.output.squeeze(1), cross, result.state
