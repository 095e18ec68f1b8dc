"""Several models decoded as one by averaging their probabilities."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn

from attnmt.models.interface import Seq2SeqModel


@dataclass
class PerMember:
    """One encoder output (or decoder state) per ensemble member, reordered together."""

    items: list[Any]

    @property
    def src_mask(self) -> Tensor:
        """(B, S): the members read the same source."""
        return cast(Tensor, self.items[0].src_mask)

    def index_select(self, index: Tensor) -> PerMember:
        return PerMember([item.index_select(index) for item in self.items])


class Ensemble(nn.Module):
    """Several models decoded as one by averaging their probabilities:

        p(y_t | y_<t, x) = (1/M) Σ_m p_m(y_t | y_<t, x)

    The attention returned is the mean over the members that have attention (None if
    none has). All members must share the target vocabulary and special ids.
    """

    def __init__(self, models: Sequence[Seq2SeqModel]) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        if not all(isinstance(model, nn.Module) for model in models):
            raise ValueError("ensemble members must be torch modules")
        if len({model.tgt_vocab_size for model in models}) > 1:
            raise ValueError("ensemble members must share one target vocabulary")
        if len({(model.bos_id, model.eos_id, model.pad_id) for model in models}) > 1:
            raise ValueError("ensemble members must share the special token ids")
        first = models[0]
        self.members = nn.ModuleList(cast(Sequence[nn.Module], models))
        self.bos_id, self.eos_id, self.pad_id = first.bos_id, first.eos_id, first.pad_id

    @property
    def models(self) -> list[Seq2SeqModel]:
        return cast(list[Seq2SeqModel], list(self.members))

    @property
    def tgt_vocab_size(self) -> int:
        return self.models[0].tgt_vocab_size

    @property
    def has_attention(self) -> bool:
        return any(model.has_attention for model in self.models)

    @property
    def max_src_len(self) -> int | None:
        """The shortest limit of any member (None: no member has one)."""
        limits = [model.max_src_len for model in self.models if model.max_src_len is not None]
        return min(limits, default=None)

    def encode(self, src: Tensor, src_lengths: Tensor) -> PerMember:
        return PerMember([model.encode(src, src_lengths) for model in self.models])

    def init_state(self, enc: PerMember) -> PerMember:
        return PerMember(
            [model.init_state(e) for model, e in zip(self.models, enc.items, strict=True)]
        )

    def step(
        self, tokens: Tensor, enc: PerMember, state: PerMember, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None, PerMember]:
        """log (1/M) Σ_m p_m, computed as logsumexp_m(log p_m) - log M: (B, V)."""
        outputs = [
            model.step(tokens, e, s, need_weights)
            for model, e, s in zip(self.models, enc.items, state.items, strict=True)
        ]
        log_probs = torch.stack([out[0] for out in outputs])  # (M, B, V)
        log_probs = torch.logsumexp(log_probs, dim=0) - math.log(len(outputs))  # (B, V)
        weights = [out[1] for out in outputs if out[1] is not None]
        attention = torch.stack(weights).mean(0) if weights else None  # (B, S)
        return log_probs, attention, PerMember([out[2] for out in outputs])

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: log (1/M) Σ_m p_m as "logits" (B, T, V) (already normalised, so
        a softmax or log-softmax of them gives the ensemble's distribution)."""
        outputs = [model(src, src_lengths, tgt_in, need_weights) for model in self.models]
        log_probs = torch.stack([out[0].float().log_softmax(-1) for out in outputs])
        log_probs = torch.logsumexp(log_probs, dim=0) - math.log(len(outputs))  # (B, T, V)
        weights = [out[1] for out in outputs if out[1] is not None]
        return log_probs, torch.stack(weights).mean(0) if weights else None

    def attention_maps(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> dict[str, Tensor]:
        """None to show: the members' heads do not average into heads of the ensemble."""
        return {}
