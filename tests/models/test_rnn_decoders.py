"""The Bahdanau decoder's fused GRU loop equals the plain nn.GRU loop: to 1e-9 in float64
(outputs and every gradient), to 1e-5 in float32 (incremental steps)."""

from __future__ import annotations

import pytest
import torch
from conftest import random_batch, tiny_config

from attnmt.models.build import build_model
from attnmt.models.rnn_decoders import BahdanauDecoder

SRC_VOCAB, TGT_VOCAB = 11, 13
SRC_LENGTHS, TGT_LENGTHS = [5, 2, 4], [4, 3, 2]
TOLERANCE = dict(rtol=1e-5, atol=1e-5)  # fp32: the two differ only in summation order
TOLERANCE_64 = dict(rtol=1e-9, atol=1e-9)


def run(model, fused: bool, src, src_lengths, tgt_in):
    """Logits, attention weights and parameter gradients of one forward/backward pass."""
    model.zero_grad()
    BahdanauDecoder.fused_gru = fused
    try:
        logits, weights = model(src, src_lengths, tgt_in)
        logits.log_softmax(-1).sum().backward()
    finally:
        BahdanauDecoder.fused_gru = False
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return logits.detach(), weights.detach(), grads


@pytest.mark.parametrize("score", ["concat", "dot", "general"])
def test_fused_gru_loop_equals_plain_loop(score: str, gen: torch.Generator) -> None:
    torch.manual_seed(0)
    config = tiny_config(("bahdanau", score, "global", True), hidden_dim=12)
    model = build_model(config, SRC_VOCAB, TGT_VOCAB).double()
    with torch.no_grad():  # large weights: gates far from 0.5, so a wrong gate shows
        for param in model.parameters():
            param.normal_(0.0, 1.0)
    src, src_lengths, tgt_in = random_batch(gen, SRC_LENGTHS, TGT_LENGTHS, SRC_VOCAB)
    plain = run(model, False, src, src_lengths, tgt_in)
    fused = run(model, True, src, src_lengths, tgt_in)
    torch.testing.assert_close(fused[0], plain[0], **TOLERANCE_64)
    torch.testing.assert_close(fused[1], plain[1], **TOLERANCE_64)
    assert fused[2].keys() == plain[2].keys() and len(plain[2]) > 10
    for name in plain[2]:
        torch.testing.assert_close(fused[2][name], plain[2][name], **TOLERANCE_64)


def test_fused_gru_steps_equal_plain_steps(gen: torch.Generator) -> None:
    """Incremental decoding (one step at a time, the search's path) agrees as well."""
    torch.manual_seed(0)
    model = build_model(tiny_config(), SRC_VOCAB, TGT_VOCAB).eval()
    src, src_lengths, tgt_in = random_batch(gen, SRC_LENGTHS, TGT_LENGTHS, SRC_VOCAB)
    outputs = {}
    for fused in (False, True):
        BahdanauDecoder.fused_gru = fused
        try:
            enc = model.encode(src, src_lengths)
            state = model.init_state(enc)
            steps = []
            for t in range(tgt_in.size(1)):
                log_probs, _, state = model.step(tgt_in[:, t], enc, state)
                steps.append(log_probs)
            outputs[fused] = (torch.stack(steps, 1), state.hidden)
        finally:
            BahdanauDecoder.fused_gru = False
    torch.testing.assert_close(outputs[True][0], outputs[False][0], **TOLERANCE)
    torch.testing.assert_close(outputs[True][1], outputs[False][1], **TOLERANCE)


def test_fused_route_only_for_a_one_layer_gru(gen: torch.Generator, monkeypatch) -> None:
    taken = []
    original = BahdanauDecoder._gru_steps

    def spy(self, *args):
        taken.append(type(self.rnn).__name__)
        return original(self, *args)

    monkeypatch.setattr(BahdanauDecoder, "_gru_steps", spy)
    monkeypatch.setattr(BahdanauDecoder, "fused_gru", True)
    src, src_lengths, tgt_in = random_batch(gen, SRC_LENGTHS, TGT_LENGTHS, SRC_VOCAB)
    for overrides in ({"rnn": "gru"}, {"rnn": "lstm"}, {"rnn": "gru", "layers": 2}):
        build_model(tiny_config(**overrides), SRC_VOCAB, TGT_VOCAB)(src, src_lengths, tgt_in)
    assert taken == ["GRU"]
