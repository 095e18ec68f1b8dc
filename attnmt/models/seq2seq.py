"""Seq2Seq: an encoder, a decoder and an output layer, for any model family.

    p(y | x) = Π_t softmax(W_out o_t)[y_t],   o_t = decoder(y_<t, encoder(x))_t

This class implements :class:`attnmt.models.interface.Seq2SeqModel` once for every family.
A family supplies two modules with these duties:

- the encoder: ``encoder(src, src_lengths) -> encoded`` (the family's encoder output);
- the decoder:
  ``decoder.prepare(encoded) -> memory``: a new, frozen memory with what can be computed
  once per sentence (attention keys), the :class:`EncoderMemory` that decoding passes on;
  ``decoder.init_state(memory) -> state``;
  ``decoder(tgt_in, memory, state, need_weights) -> (o (B, T, D), weights (B, heads, T,
  S) or None, state)``;
  ``decoder.step(tokens, memory, state, need_weights) -> (o (B, D), weights (B, heads, S)
  or None, state)``.

The family's builder also says how long a source the model can read (``max_src_len``).

The default attention map that search and the Translator show is the mean over heads
(for a single-head score there is one head, so it is that head).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnmt.device import fp32_on_cpu
from attnmt.models.interface import Seq2SeqModel
from attnmt.special import BOS_ID, EOS_ID, PAD_ID


class DecoderModule(Protocol):
    """What Seq2Seq needs of a family's decoder (see the module docstring)."""

    has_attention: bool

    def prepare(self, encoded: Any) -> Any: ...

    def init_state(self, enc: Any) -> Any: ...

    def step(
        self, tokens: Tensor, enc: Any, state: Any, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None, Any]: ...

    def __call__(
        self, tgt_in: Tensor, enc: Any, state: Any, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None, Any]: ...


def head_mean(weights: Tensor | None) -> Tensor | None:
    """The default attention map: weights (B, heads, ..., S) averaged over the heads."""
    return None if weights is None else weights.mean(dim=1)


class Seq2Seq(nn.Module):
    """p(y | x) = Π_t softmax(W_out o_t)[y_t], with o_t from the decoder."""

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        generator: nn.Linear,
        max_src_len: int | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.generator = generator
        self._max_src_len = max_src_len
        self.pad_id, self.bos_id, self.eos_id = PAD_ID, BOS_ID, EOS_ID

    @property
    def _decoder(self) -> DecoderModule:
        return self.decoder  # type: ignore[return-value]

    @property
    def tgt_vocab_size(self) -> int:
        return self.generator.out_features

    @property
    def has_attention(self) -> bool:
        return self._decoder.has_attention

    @property
    def max_src_len(self) -> int | None:
        return self._max_src_len

    @property
    def output_layer(self) -> nn.Linear:
        return self.generator

    def encode(self, src: Tensor, src_lengths: Tensor) -> Any:
        """Run the encoder and what the decoder precomputes (keys), once per sentence."""
        with fp32_on_cpu():
            return self._decoder.prepare(self.encoder(src, src_lengths))

    def init_state(self, enc: Any) -> Any:
        with fp32_on_cpu():
            return self._decoder.init_state(enc)

    def step(
        self, tokens: Tensor, enc: Any, state: Any, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None, Any]:
        """Previous tokens (B,) -> log-probabilities (B, V) in float32, attention (B, S)."""
        with fp32_on_cpu():
            output, weights, state = self._decoder.step(tokens, enc, state, need_weights)
        logits = self.generator(output)  # (B, V), bf16 under autocast
        log_probs = F.log_softmax(logits, dim=-1, dtype=torch.float32)  # no float copy first
        return log_probs, head_mean(weights), state

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: logits (B, T, V) and attention weights (B, T, S) (None without
        attention or `need_weights`). `tgt_in` starts with BOS; the loss compares with the
        target shifted."""
        output, weights = self.decoder_outputs(src, src_lengths, tgt_in, need_weights)
        return self.generator(output), head_mean(weights)

    def decoder_outputs(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing up to the output layer: o_t (B, T, H) and, with `need_weights`,
        every head's attention weights, for a loss that applies ``output_layer`` itself (in
        chunks)."""
        enc = self.encode(src, src_lengths)
        with fp32_on_cpu():
            state = self._decoder.init_state(enc)
            output, weights, _ = self._decoder(tgt_in, enc, state, need_weights)
        return output, weights

    def attention_maps(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> dict[str, Tensor]:
        """Every head, teacher-forced: ``cross`` (B, layers, heads, T, S); one layer here.
        Families with self-attention override this to add ``encoder`` and ``decoder``."""
        _, weights = self.decoder_outputs(src, src_lengths, tgt_in, need_weights=True)
        if weights is None:
            return {}
        return {"cross": weights.unsqueeze(1)}


def count_parameters(model: nn.Module | Seq2SeqModel) -> int:
    """Trainable parameters, each shared tensor counted once; 0 for a model that is no
    torch module (an ONNX export on onnxruntime)."""
    if not isinstance(model, nn.Module):
        return 0
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
