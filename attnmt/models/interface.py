"""The model interface: what search, ensembles, the Translator, evaluation and training
may assume of a model. Nothing else. A model family (RNN, Transformer, a test's toy
model) is any object with these methods; none of the callers tests for a concrete class.

Decoding goes

    enc   = model.encode(src, src_lengths)          once per batch
    state = model.init_state(enc)
    log_probs, attention, state = model.step(tokens, enc, state)     once per position
    enc, state = enc.index_select(rows), state.index_select(rows)    to follow beams

and training calls ``model(src, src_lengths, tgt_in)`` for teacher-forced logits.

Shapes (batch-first): src (B, S) ids, src_lengths (B,), tokens (B,) the previous output,
log_probs (B, V) float32, attention (B, S) or None, logits (B, T, V), attention (B, T, S).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from torch import Tensor

T = TypeVar("T")


class EncoderOutput(Protocol):
    """Everything the decoder needs about the source, computed once per batch.

    `src_mask` (B, S) is True on real source tokens. `index_select(index)` reorders or
    repeats the sentences (dim 0 of every tensor), e.g. to follow beams.
    """

    @property
    def src_mask(self) -> Tensor: ...

    def index_select(self: T, index: Tensor) -> T: ...


class DecoderState(Protocol):
    """What one decoding step hands to the next; `index_select` follows beams."""

    def index_select(self: T, index: Tensor) -> T: ...


class Seq2SeqModel(Protocol):
    """p(y | x) = Π_t p(y_t | y_<t, x): the interface of every model family and ensemble."""

    bos_id: int
    eos_id: int
    pad_id: int
    training: bool

    @property
    def tgt_vocab_size(self) -> int:
        """V, the size of the output distribution."""
        ...

    @property
    def has_attention(self) -> bool:
        """Whether `step` and `forward` return attention weights (else None)."""
        ...

    def train(self, mode: bool = True) -> Any: ...

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """Encode a padded batch src (B, S) of real lengths src_lengths (B,)."""
        ...

    def init_state(self, enc: Any) -> DecoderState:
        """The decoder state before the first output token."""
        ...

    def step(self, tokens: Tensor, enc: Any, state: Any) -> tuple[Tensor, Tensor | None, Any]:
        """Previous tokens (B,) -> log-probabilities (B, V) in float32, attention (B, S)
        (the default map; None without attention) and the next state."""
        ...

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: tgt_in (B, T) starting with BOS -> logits (B, T, V) and the
        default attention map (B, T, S) (None without attention)."""
        ...

    def __call__(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor
    ) -> tuple[Tensor, Tensor | None]: ...


class HasAttentionMaps(Protocol):
    """Optional: models that can show every head of every attention layer."""

    def attention_maps(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> dict[str, Tensor]:
        """Teacher-forced attention, per layer and head, by kind:

        - ``cross``: (B, layers, heads, T, S), decoder over source (always present);
        - ``encoder``: (B, layers, heads, S, S), source self-attention (if the model has it);
        - ``decoder``: (B, layers, heads, T, T), causal target self-attention (if any).
        """
        ...
