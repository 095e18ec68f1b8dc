"""Shared fixtures: tiny model configs and the list of every valid variant."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from attnmt.config import DecodeOptions, ModelConfig
from attnmt.nn.scores import SCORES
from attnmt.nn.windows import WINDOWS
from attnmt.search.beam import beam_search
from attnmt.search.sampling import greedy, sample
from attnmt.special import BOS_ID, PAD_ID

# (decoder, score, window, input_feeding or feed_context): every valid combination.
ATTENTION_VARIANTS = [
    (decoder, score, window, feeding)
    for decoder in ("bahdanau", "luong")
    for score in SCORES
    for window in WINDOWS
    for feeding in ((True, False) if decoder == "luong" else (True,))
]
ALL_VARIANTS = ATTENTION_VARIANTS + [("none", None, None, False), ("none", None, None, True)]


def variant_id(variant: tuple[Any, ...]) -> str:
    decoder, score, window, feeding = variant
    if decoder == "none":
        return f"none-{'ctx' if feeding else 'plain'}"
    tail = "" if decoder == "bahdanau" else ("-feed" if feeding else "-fast")
    return f"{decoder}-{score}-{window}{tail}"


def tiny_config(variant: tuple[Any, ...] = ALL_VARIANTS[0], **overrides: Any) -> ModelConfig:
    decoder, score, window, feeding = variant
    fields: dict[str, Any] = dict(
        embed_dim=6,
        hidden_dim=8,
        dropout=0.0,
        decoder=decoder,
        bridge="bridge",
        input_feeding=feeding if decoder == "luong" else True,
        feed_context=feeding if decoder == "none" else False,
        attention=dict(
            score=score or "concat",
            window=window or "global",
            window_half_width=1,
            attn_dim=8,
            heads=2,
            max_src_len=12,
        ),
    )
    fields.update(overrides)
    return ModelConfig.model_validate(fields)


def random_batch(
    generator: torch.Generator, src_lengths: list[int], tgt_lengths: list[int], vocab: int = 11
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded src (B, S), lengths (B,), tgt_in (B, T) starting with BOS; pads are PAD_ID."""
    batch = len(src_lengths)
    src = torch.full((batch, max(src_lengths)), PAD_ID)
    tgt = torch.full((batch, max(tgt_lengths)), PAD_ID)
    for b, (s_len, t_len) in enumerate(zip(src_lengths, tgt_lengths, strict=True)):
        src[b, :s_len] = torch.randint(4, vocab, (s_len,), generator=generator)
        tgt[b, :t_len] = torch.randint(4, vocab, (t_len,), generator=generator)
        tgt[b, 0] = BOS_ID
    return src, torch.tensor(src_lengths), tgt


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def settings(**overrides: Any) -> DecodeOptions:
    """Decode settings with every rule off unless given: no length ratios, min_len 0,
    no length or coverage penalty, beam 1."""
    rules_off: dict[str, Any] = dict(
        beam=1, min_len=0, max_len_ratio=math.inf, alpha=0.0, beta=0.0, batch_tokens=10_000
    )
    return DecodeOptions(**{**rules_off, **overrides})


SEARCHES = {  # every search, with settings that exercise its rules; shared by the model families
    "greedy": lambda m, s, l: greedy(m, s, l, settings(max_len=12)),
    "beam": lambda m, s, l: beam_search(m, s, l, settings(beam=4, n_best=3, max_len=12, alpha=0.6)),
    "beam-coverage": lambda m, s, l: beam_search(
        m, s, l, settings(beam=3, n_best=2, max_len=12, alpha=1.0, beta=0.4, no_repeat_ngram=2)
    ),
    "sample": lambda m, s, l: sample(
        m,
        s,
        l,
        settings(max_len=12, n_best=2, top_k=5, sample=True),
        generator=torch.Generator().manual_seed(3),
    ),
}


def assert_padded_batch_equals_alone(
    model: torch.nn.Module,
    batch: tuple[torch.Tensor, ...],
    src_lengths: list[int],
    tgt_lengths: list[int],
) -> torch.Tensor | None:
    """Teacher-forced logits (and attention, when the model has it) of each sentence of a
    padded batch equal those of the sentence alone; returns the batch's attention."""
    src, src_len, tgt_in = batch
    logits, weights = model(src, src_len, tgt_in)
    for b, (s_len, t_len) in enumerate(zip(src_lengths, tgt_lengths, strict=True)):
        alone, alone_weights = model(
            src[b : b + 1, :s_len], src_len[b : b + 1], tgt_in[b : b + 1, :t_len]
        )
        torch.testing.assert_close(logits[b, :t_len], alone[0])
        if weights is not None:
            torch.testing.assert_close(weights[b, :t_len, :s_len], alone_weights[0])
    return weights
