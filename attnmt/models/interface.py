"""The model interface: what search, ensembles, the Translator, evaluation, training and
the server may assume of a model. Nothing else. A model family (RNN, Transformer, a
test's toy model, later an exported or quantised model) is any object with these
methods; none of the callers tests for a concrete class or reads the config to learn
about a model.

Decoding goes

    memory = model.encode(src, src_lengths)            once per batch: frozen, keys included
    state  = model.init_state(memory)
    log_probs, attention, state = model.step(tokens, memory, state)   once per position
    memory, state = memory.index_select(rows), state.index_select(rows)   to follow beams

teacher forcing calls ``model(src, src_lengths, tgt_in)`` for logits, and training (a
:class:`TrainableModel`) ``model.decoder_outputs(...)`` with ``model.output_layer``, so
that the loss can apply the output layer in chunks.

``need_weights=False`` tells ``step``, ``forward`` and ``decoder_outputs`` that nobody
will look at the attention weights (training, decoding without attention output): a
family may then take a fused path that never forms them, and returns None for them.

Shapes (batch-first): src (B, S) ids, src_lengths (B,), tokens (B,) the previous output,
log_probs (B, V) float32, attention (B, S) or None, logits (B, T, V), attention (B, T, S).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, TypeVar

from torch import Tensor, nn

T = TypeVar("T")


class EncoderMemory(Protocol):
    """Everything the decoder needs about the source, computed once per batch and never
    changed afterwards (attention keys included).

    `src_mask` (B, S) is True on real source tokens. `index_select(index)` returns the
    memory of the sentences `index` (dim 0 of every tensor), e.g. to follow beams.
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

    @property
    def max_src_len(self) -> int | None:
        """The longest source, in tokens, the model can read (a location score or learned
        positions have one weight row per source position); None: no limit."""
        ...

    def train(self, mode: bool = True) -> Any: ...

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderMemory:
        """Encode a padded batch src (B, S) of real lengths src_lengths (B,)."""
        ...

    def init_state(self, enc: Any) -> DecoderState:
        """The decoder state before the first output token."""
        ...

    def step(
        self, tokens: Tensor, enc: Any, state: Any, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None, Any]:
        """Previous tokens (B,) -> log-probabilities (B, V) in float32, attention (B, S)
        (the default map; None without attention or without `need_weights`) and the next
        state."""
        ...

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: tgt_in (B, T) starting with BOS -> logits (B, T, V) and the
        default attention map (B, T, S) (None without attention or `need_weights`)."""
        ...

    def __call__(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None]: ...

    def attention_maps(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> dict[str, Tensor]:
        """Teacher-forced attention, every layer and head, by kind (empty for a model
        without attention, or one that cannot show its heads, such as an ensemble):

        - ``cross``: (B, layers, heads, T, S), decoder over source;
        - ``encoder``: (B, layers, heads, S, S), source self-attention (if the model has it);
        - ``decoder``: (B, layers, heads, T, T), causal target self-attention (if any).
        """
        ...


class TrainableModel(Seq2SeqModel, Protocol):
    """A model that training can update: its parameters, and teacher forcing split before
    the output layer, so that the loss applies ``output_layer`` in chunks of target
    positions and the (B, T, V) logits are never all alive at once."""

    @property
    def output_layer(self) -> nn.Linear:
        """logits = output_layer(o_t): the (V, D) projection onto the target vocabulary."""
        ...

    def decoder_outputs(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing up to the output layer: o_t (B, T, D), and every head's
        attention weights (B, heads, T, S) when `need_weights` (else None)."""
        ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...

    def named_parameters(self, *args: Any, **kwargs: Any) -> Iterator[tuple[str, nn.Parameter]]: ...

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> Any: ...

    def to(self, *args: Any, **kwargs: Any) -> Any: ...
