"""int8 models (models/quantized.py): every family and attention variant quantises and
decodes with its attention maps; the int8 state survives a round trip exactly; models
trained to certainty decode the same greedy outputs in int8 as in fp32."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from conftest import ALL_VARIANTS, settings, tiny_config, variant_id
from test_overfit import VOCAB, reverse_task, train_steps
from torch import nn

from attnmt.config import ModelConfig, load_config
from attnmt.models.build import build_model
from attnmt.models.quantized import (
    ContiguousLookup,
    int8_state_dict,
    load_int8_state_dict,
    quantize_int8,
)
from attnmt.models.seq2seq import Seq2Seq
from attnmt.search.beam import beam_search
from attnmt.search.sampling import greedy
from attnmt.special import PAD_ID

TRANSFORMER: dict[str, Any] = dict(
    arch="transformer", embed_dim=16, layers=2, dropout=0.0, attention={"heads": 2}
)


def model_config(**fields: Any) -> ModelConfig:
    return load_config(None, [f"model={fields}"]).model


CONFIGS = [pytest.param(tiny_config(v), id=variant_id(v)) for v in ALL_VARIANTS] + [
    pytest.param(tiny_config(ALL_VARIANTS[0], rnn="lstm"), id="bahdanau-lstm"),
    pytest.param(tiny_config(ALL_VARIANTS[0], rnn="rnn"), id="bahdanau-tanh-rnn"),
    pytest.param(model_config(**TRANSFORMER), id="transformer"),
    pytest.param(
        model_config(**TRANSFORMER, positions="learned", tie_embeddings=True),
        id="transformer-learned-tied",
    ),
]


def build(config: ModelConfig, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    model = build_model(config, VOCAB, VOCAB)
    return model.eval()  # type: ignore[return-value]


def float_leaves(model: nn.Module) -> list[str]:
    """Names of the linear, recurrent and embedding layers still in fp32."""
    kinds = (nn.Linear, nn.GRU, nn.LSTM, nn.Embedding)
    return [name for name, module in model.named_modules() if type(module) in kinds]


@pytest.mark.parametrize("config", CONFIGS)
def test_every_variant_quantises_and_decodes_with_attention(config: ModelConfig) -> None:
    model = quantize_int8(build(config))
    kept = float_leaves(model)
    # only what the module docstring names stays fp32
    assert all(
        name.endswith((".v_a", ".table")) or (config.rnn == "rnn" and name.endswith(".rnn"))
        for name in kept
    ), kept
    assert any(isinstance(m, ContiguousLookup) for m in model.modules())
    src, lengths, _, _ = reverse_task(6, seed=3)
    with torch.inference_mode():
        for hypotheses in (
            greedy(model, src, lengths, settings(max_len=8)),
            beam_search(model, src, lengths, settings(beam=3, max_len=8)),
        ):
            for b, nbest in enumerate(hypotheses):
                best = nbest[0]
                assert torch.isfinite(torch.tensor(best.score))
                if not model.has_attention:
                    assert best.attention is None
                    continue
                weights = best.attention  # (T + 1, S)
                assert weights.shape == (len(best.tokens) + 1, int(lengths[b]))
                assert torch.allclose(weights.sum(-1), torch.ones(weights.size(0)), atol=1e-5)


@pytest.mark.parametrize("config", CONFIGS)
def test_int8_state_round_trip_is_exact(config: ModelConfig, tmp_path) -> None:
    """Saved with torch.save, read with weights_only=True, loaded into a fresh quantised
    model of the config: the same logits, bit for bit."""
    exported = quantize_int8(build(config, seed=1))
    path = tmp_path / "int8.pt"
    torch.save(int8_state_dict(exported), path)
    state = torch.load(path, weights_only=True)
    loaded = quantize_int8(build(config, seed=2))  # other fp32 weights, overwritten
    load_int8_state_dict(loaded, state)
    src, lengths, tgt_in, _ = reverse_task(5, seed=4)
    with torch.inference_mode():
        expected, _ = exported(src, lengths, tgt_in)
        got, _ = loaded(src, lengths, tgt_in)
    assert torch.equal(expected, got)


def test_loading_a_state_of_another_model_fails() -> None:
    state = int8_state_dict(quantize_int8(build(tiny_config(ALL_VARIANTS[0]))))
    other = quantize_int8(build(tiny_config(ALL_VARIANTS[0], rnn="lstm")))
    with pytest.raises((KeyError, RuntimeError)):
        load_int8_state_dict(other, state)


TRAINED = {
    "bahdanau-general": dict(decoder="bahdanau", attention=dict(score="general")),
    "luong-general-feed": dict(
        decoder="luong", attention=dict(score="general"), input_feeding=True
    ),
    "luong-dot-fast-lstm": dict(
        decoder="luong", attention=dict(score="dot"), input_feeding=False, rnn="lstm"
    ),
    "none-lstm": dict(decoder="none", bridge="last", rnn="lstm", bidirectional=False),
    "transformer": {**TRANSFORMER, "embed_dim": 32},
}
"""Families trained to certainty on the reverse task (test_overfit's settings)."""

AGREEMENT = 0.9
"""Share of greedy outputs that must be identical in int8 and fp32."""
LOG_PROB_TOLERANCE = 0.05
"""Largest mean |log p_int8 - log p_fp32| of the gold tokens, in nats."""


@pytest.fixture(scope="module", params=list(TRAINED))
def trained(request: pytest.FixtureRequest) -> tuple[Seq2Seq, tuple[Any, ...]]:
    rnn = {} if request.param == "transformer" else dict(embed_dim=16, hidden_dim=32)
    model = build(model_config(**{"dropout": 0.0, **rnn, **TRAINED[request.param]}))
    data = reverse_task(24, seed=2)
    train_steps(model, 120, 2e-2, data)
    return model, data


def test_trained_model_decodes_the_same_in_int8(trained: tuple[Seq2Seq, Any]) -> None:
    model, (src, lengths, tgt_in, tgt_out) = trained
    int8 = quantize_int8(copy.deepcopy(model))
    with torch.inference_mode():
        fp32_out = greedy(model, src, lengths, settings(max_len=10))
        int8_out = greedy(int8, src, lengths, settings(max_len=10))
        same = sum(a[0].tokens == b[0].tokens for a, b in zip(fp32_out, int8_out, strict=True))
        assert same >= AGREEMENT * len(fp32_out)
        gold = tgt_out.clamp(min=0).unsqueeze(-1)
        real = tgt_out != PAD_ID
        fp32_lp = F.log_softmax(model(src, lengths, tgt_in)[0], -1).gather(-1, gold)[..., 0]
        int8_lp = F.log_softmax(int8(src, lengths, tgt_in)[0], -1).gather(-1, gold)[..., 0]
    assert (fp32_lp - int8_lp)[real].abs().mean() < LOG_PROB_TOLERANCE
