"""Building a model from its config: ``model.arch`` picks the family from a registry.

Adding a model family means adding one module with a ``build(config, src_vocab_size,
tgt_vocab_size)`` function that returns a :class:`attnmt.models.interface.TrainableModel`
and one entry in :data:`ARCHITECTURES`.
"""

from __future__ import annotations

from collections.abc import Callable

from attnmt.config import ModelConfig
from attnmt.models import rnn, transformer
from attnmt.models.interface import TrainableModel

ARCHITECTURES: dict[str, Callable[[ModelConfig, int, int], TrainableModel]] = {
    "rnn": rnn.build,
    "transformer": transformer.build,
}
"""model.arch -> the builder of that model family."""


def build_model(config: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> TrainableModel:
    """Wire the model `config` describes; the only place that reads ModelConfig."""
    arch = config.arch
    return ARCHITECTURES[arch](config, src_vocab_size, tgt_vocab_size)
