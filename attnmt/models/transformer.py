"""The Transformer family (Vaswani et al. 2017): attention all the way down.

    x = √d · E[w] + PE(pos)                                    (3.4, 3.5)
    encoder layer:  z = x + MultiHead(x, x, x),          y = z + FFN(z)
    decoder layer:  z_1 = x + MultiHead(x, y_≤t, y_≤t)          causal self-attention
                    z_2 = z_1 + MultiHead(z_1, h, h)            cross-attention
                    y   = z_2 + FFN(z_2)
    p(y_t | y_<t, x) = softmax(W_out y_t)

(layer normalisation before or after each residual sum: ``model.norm``). The layers are
in :mod:`.transformer_layers`; every attention in them is the :class:`Attention` module
with the multi-head score, through the same ``attend`` as Bahdanau's and Luong's.

The family plugs into :class:`Seq2Seq` like the RNN family: search, training, evaluation,
ensembles and the Translator need no change. Incremental decoding keeps a per-layer
key/value cache in the decoder state (it follows beams through ``index_select``), and
cross-attention keys and values are projected once per sentence in ``prepare``.

**The attention map people see.** ``step`` and ``forward`` report the last decoder
layer's cross-attention, every head; the default map (``Translation.attention``) is its
mean over the heads, one (T, S) matrix like the RNN family's. The last layer is the one
whose output feeds the prediction, and averaging the heads gives one distribution per
row. :meth:`TransformerSeq2Seq.attention_maps` gives every layer and head, of the
cross-attention and of both self-attentions.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from attnmt.config import ModelConfig
from attnmt.models.seq2seq import Seq2Seq
from attnmt.models.transformer_layers import (
    DecoderLayer,
    Embedder,
    EncoderLayer,
    TransformerDecoder,
    TransformerEncoder,
)
from attnmt.nn.positions import MAX_LEARNED_POSITIONS, build_positions
from attnmt.special import PAD_ID


class TransformerSeq2Seq(Seq2Seq):
    """Seq2Seq with a Transformer encoder and decoder; adds the self-attention maps."""

    def attention_maps(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> dict[str, Tensor]:
        """Every layer and head, teacher-forced on tgt_in (B, T):

        - ``cross``: (B, decoder layers, heads, T, S);
        - ``encoder``: (B, encoder layers, heads, S, S), source self-attention (rows of
          padded positions are not meaningful);
        - ``decoder``: (B, decoder layers, heads, T, T), causal target self-attention
          (column j is decoder input j: BOS, y_1, ...).
        """
        encoder = cast(TransformerEncoder, self.encoder)
        decoder = cast(TransformerDecoder, self.decoder)
        encoded = encoder(src, src_lengths, record=True)
        memory = decoder.prepare(encoded)
        result = decoder.run(tgt_in, memory, decoder.init_state(memory), "all")
        assert encoded.self_attention is not None  # recorded, as asked
        cross = [layer.cross_weights for layer in result.attention]
        self_weights = [layer.self_weights for layer in result.attention]
        return {
            "cross": torch.stack(_formed(cross), dim=1),
            "encoder": encoded.self_attention,
            "decoder": torch.stack(_formed(self_weights), dim=1),
        }


def _formed(weights: list[Tensor | None]) -> list[Tensor]:
    """The weights of every layer, all formed (as ``wanted="all"`` asks)."""
    formed = [w for w in weights if w is not None]
    assert len(formed) == len(weights)
    return formed


def build(config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
    """The Transformer that `config` describes: d_model = model.embed_dim, model.layers
    encoder and model.decoder_layers (default: as many) decoder layers, model.attention.heads
    heads, d_ff = model.ff_dim (default 4 d_model)."""
    dim, heads = config.embed_dim, config.attention.heads
    ff_dim = config.ff_dim or 4 * dim
    pre_norm = config.norm == "pre"
    sizes = (dim, heads, ff_dim, config.dropout, config.attention_dropout, pre_norm)

    def embedder(vocab_size: int) -> Embedder:
        positions = build_positions(config.positions, dim)
        return Embedder(vocab_size, dim, PAD_ID, positions, config.dropout)

    encoder = TransformerEncoder(
        embedder(src_vocab_size), [EncoderLayer(*sizes) for _ in range(config.layers)], pre_norm
    )
    decoder_layers = config.decoder_layers or config.layers
    decoder = TransformerDecoder(
        embedder(tgt_vocab_size),
        [DecoderLayer(*sizes) for _ in range(decoder_layers)],
        pre_norm,
        PAD_ID,
    )
    generator = nn.Linear(dim, tgt_vocab_size)
    if config.tie_embeddings:
        generator.weight = decoder.embedding.weight
    max_src_len = MAX_LEARNED_POSITIONS if config.positions == "learned" else None
    return TransformerSeq2Seq(encoder, decoder, generator, max_src_len)
