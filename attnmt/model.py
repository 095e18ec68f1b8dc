"""Seq2Seq: encoder, decoder and output layer, wired from a :class:`ModelConfig`.

The model has one interface that training, search and serving share:

- ``forward(src, src_lengths, tgt_in)`` -> logits (B, T, V) and attention (B, T, S);
- ``encode(src, src_lengths)`` -> :class:`EncoderOutput` with attention keys projected
  once per sentence;
- ``init_state(enc)`` and ``step(tokens, enc, state)`` -> log-probabilities (B, V),
  attention (B, S) and the next :class:`DecoderState`, for incremental decoding.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from attnmt.attention import Attention, build_score, build_window
from attnmt.bridge import Bridge
from attnmt.config import ModelConfig
from attnmt.decoder import (
    BahdanauDecoder,
    Decoder,
    DecoderState,
    LuongDecoder,
    PlainDecoder,
)
from attnmt.encoder import Encoder, EncoderOutput
from attnmt.special import BOS_ID, EOS_ID, PAD_ID


class Seq2Seq(nn.Module):
    """p(y | x) = Π_t softmax(W_out o_t)[y_t], with o_t from the decoder."""

    def __init__(self, encoder: Encoder, decoder: Decoder, generator: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.generator = generator
        self.pad_id, self.bos_id, self.eos_id = PAD_ID, BOS_ID, EOS_ID

    @property
    def has_attention(self) -> bool:
        return self.decoder.attention is not None

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """Run the encoder and project the attention keys, once per sentence."""
        enc = self.encoder(src, src_lengths)
        if self.decoder.attention is not None:
            enc.keys = self.decoder.attention.project_keys(enc.memory)
        return enc

    def init_state(self, enc: EncoderOutput) -> DecoderState:
        return self.decoder.init_state(enc)

    def step(
        self, tokens: Tensor, enc: EncoderOutput, state: DecoderState
    ) -> tuple[Tensor, Tensor | None, DecoderState]:
        """Previous tokens (B,) -> log-probabilities (B, V) in float32, attention (B, S)."""
        output, weights, state = self.decoder.step(tokens, enc, state)
        log_probs = F.log_softmax(self.generator(output).float(), dim=-1)
        return log_probs, weights, state

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: logits (B, T, V) and attention weights (B, T, S) (None without
        attention). `tgt_in` starts with BOS; the loss compares with the target shifted."""
        enc = self.encode(src, src_lengths)
        output, weights, _ = self.decoder(tgt_in, enc, self.init_state(enc))
        return self.generator(output), weights


def build_model(config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
    """Wire a Seq2Seq from its config; the only place that reads ModelConfig."""
    dec_layers = config.decoder_layers or config.layers
    hidden = config.hidden_dim
    encoder = Encoder(
        vocab_size=src_vocab_size,
        embed_dim=config.embed_dim,
        hidden_dim=hidden,
        layers=config.layers,
        rnn=config.rnn,
        bidirectional=config.bidirectional,
        dropout=config.dropout,
        pad_id=PAD_ID,
        reverse_source=config.reverse_source,
    )
    key_dim = encoder.output_dim
    bridge = Bridge(config.bridge, key_dim, hidden, dec_layers, lstm=config.rnn == "lstm")
    common: dict[str, Any] = dict(
        vocab_size=tgt_vocab_size,
        embed_dim=config.embed_dim,
        hidden_dim=hidden,
        layers=dec_layers,
        rnn=config.rnn,
        dropout=config.dropout,
        pad_id=PAD_ID,
        bridge=bridge,
    )
    decoder: Decoder
    if config.decoder == "none":
        decoder = PlainDecoder(**common, context_dim=key_dim, feed_context=config.feed_context)
    else:
        attention = build_attention(config, query_dim=hidden, key_dim=key_dim)
        if config.decoder == "bahdanau":
            decoder = BahdanauDecoder(**common, attention=attention, key_dim=key_dim)
        else:
            decoder = LuongDecoder(
                **common, attention=attention, key_dim=key_dim, input_feeding=config.input_feeding
            )
    generator = nn.Linear(decoder.output_dim, tgt_vocab_size)
    if config.tie_embeddings:
        generator.weight = decoder.embedding.weight
    return Seq2Seq(encoder, decoder, generator)


def build_attention(config: ModelConfig, query_dim: int, key_dim: int) -> Attention:
    attn = config.attention
    attn_dim = attn.attn_dim or config.hidden_dim
    score = build_score(attn.score, query_dim, key_dim, attn_dim, attn.heads, attn.max_src_len)
    window = build_window(attn.window, query_dim, attn_dim, attn.window_half_width)
    return Attention(score, window)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, each shared tensor counted once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
