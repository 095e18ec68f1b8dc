"""The recurrent family: a (bi)directional RNN encoder and three decoders.

Encoder (Bahdanau et al. 2015, 3.2): embeddings and an RNN over packed sequences,

    h_j = [→h_j ; ←h_j]

so padding never enters a state. Decoders, all sharing one step loop:

- ``none``: Sutskever et al. 2014 / Cho et al. 2014, no attention;
- ``bahdanau``: attention queried with the previous state s_{i-1};
- ``luong``: attention queried with the current state h_t, with or without input feeding.

This module builds the family from its config (the encoder is in :mod:`.rnn_encoder`,
the decoders in :mod:`.rnn_decoders`). Everything RNN-shaped (states, bridges) stays
inside these three modules; the rest of attnmt sees only the model interface of
:mod:`attnmt.models.interface`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from attnmt.config import ModelConfig
from attnmt.models.rnn_decoders import BahdanauDecoder, Decoder, LuongDecoder, PlainDecoder
from attnmt.models.rnn_encoder import RNNEncoder
from attnmt.models.seq2seq import Seq2Seq
from attnmt.nn.attention import Attention
from attnmt.nn.bridge import Bridge
from attnmt.nn.scores import build_score
from attnmt.nn.windows import build_window
from attnmt.special import PAD_ID

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
    encoder = RNNEncoder(
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
    location = config.attention.score == "location" and config.decoder != "none"
    max_src_len = config.attention.max_src_len if location else None  # a weight row a position
    return Seq2Seq(encoder, decoder, generator, max_src_len)
