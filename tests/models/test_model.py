"""Seq2Seq properties for every valid decoder x score x window combination."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
from conftest import (
    ALL_VARIANTS,
    assert_padded_batch_equals_alone,
    random_batch,
    tiny_config,
    variant_id,
)
from torch.func import functional_call

from attnmt.models.build import build_model
from attnmt.models.seq2seq import Seq2Seq
from attnmt.nn.rnn import reverse_padded
from attnmt.special import PAD_ID

SRC_VOCAB, TGT_VOCAB = 11, 13
SRC_LENGTHS, TGT_LENGTHS = [5, 2, 4], [4, 3, 2]


def make_model(variant: tuple[Any, ...], dtype: torch.dtype = torch.float32, **kw: Any) -> Seq2Seq:
    torch.manual_seed(0)
    model = build_model(tiny_config(variant, **kw), SRC_VOCAB, TGT_VOCAB)
    return model.to(dtype).eval()


def step_by_step(model: Seq2Seq, src, src_lengths, tgt_in):
    """Decode incrementally, feeding the gold tokens; returns log-probs and attention."""
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    log_probs, weights = [], []
    for t in range(tgt_in.size(1)):
        lp, attn, state = model.step(tgt_in[:, t], enc, state)
        log_probs.append(lp)
        weights.append(attn)
    has_attn = weights[0] is not None
    return torch.stack(log_probs, 1), torch.stack(weights, 1) if has_attn else None


variants = pytest.mark.parametrize("variant", ALL_VARIANTS, ids=variant_id)


@variants
def test_shapes_rows_and_padding(variant, gen) -> None:
    model = make_model(variant)
    src, src_lengths, tgt_in = random_batch(gen, SRC_LENGTHS, TGT_LENGTHS, SRC_VOCAB)
    logits, weights = model(src, src_lengths, tgt_in)
    assert logits.shape == (3, 4, TGT_VOCAB)
    if variant[0] == "none":
        assert weights is None
        return
    assert weights is not None and weights.shape == (3, 4, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))
    for b, length in enumerate(SRC_LENGTHS):
        assert torch.all(weights[b, :, length:] == 0)
    # Changing what sits in the padding changes nothing.
    noisy = src.clone()
    noisy[src == PAD_ID] = 7
    logits2, weights2 = model(noisy, src_lengths, tgt_in)
    assert torch.equal(logits, logits2)
    assert torch.equal(weights, weights2)


@variants
def test_teacher_forcing_equals_step_decoding(variant, gen) -> None:
    """For Luong without input feeding this is the fast path against the step path."""
    model = make_model(variant)
    src, src_lengths, tgt_in = random_batch(gen, SRC_LENGTHS, TGT_LENGTHS, SRC_VOCAB)
    logits, weights = model(src, src_lengths, tgt_in)
    log_probs, step_weights = step_by_step(model, src, src_lengths, tgt_in)
    torch.testing.assert_close(torch.log_softmax(logits, -1), log_probs)
    if weights is not None:
        torch.testing.assert_close(weights, step_weights)


@variants
def test_padded_batch_equals_each_sentence_alone(variant, gen) -> None:
    model = make_model(variant)
    batch = random_batch(gen, SRC_LENGTHS, TGT_LENGTHS, SRC_VOCAB)
    assert_padded_batch_equals_alone(model, batch, SRC_LENGTHS, TGT_LENGTHS)


@variants
def test_gradcheck_whole_model_float64(variant, gen) -> None:
    """Analytic gradients of the logits w.r.t. both embedding tables match finite differences."""
    model = make_model(variant, torch.float64)
    src, src_lengths, tgt_in = random_batch(gen, [3, 2], [3, 2], SRC_VOCAB)
    names = ["encoder.embedding.weight", "decoder.embedding.weight"]
    tables = [dict(model.named_parameters())[n].detach() for n in names]
    # The PAD row is excluded: its gradient is zero by design (padding_idx).
    params = [t[1:].clone().requires_grad_() for t in tables]

    def fn(src_rows: torch.Tensor, tgt_rows: torch.Tensor) -> torch.Tensor:
        weights = [
            torch.cat([t[:1], rows]) for t, rows in zip(tables, (src_rows, tgt_rows), strict=True)
        ]
        out = functional_call(
            model, dict(zip(names, weights, strict=True)), (src, src_lengths, tgt_in)
        )
        return out[0]

    assert torch.autograd.gradcheck(fn, tuple(params), eps=1e-6, atol=1e-5, fast_mode=True)


# ---------------------------------------------------------------------------
# Encoder shapes, bridges and layer counts

ENCODER_SETUPS = list(
    itertools.product(
        ("rnn", "gru", "lstm"), ("zero", "last", "bridge"), (True, False), ((1, 1), (2, 1), (1, 2))
    )
)


@pytest.mark.parametrize("rnn,bridge,bidirectional,layers", ENCODER_SETUPS)
def test_encoder_and_bridge_setups(rnn, bridge, bidirectional, layers, gen) -> None:
    enc_layers, dec_layers = layers
    variant = ("luong", "general", "global", True)
    model = make_model(
        variant,
        rnn=rnn,
        bridge=bridge,
        bidirectional=bidirectional,
        layers=enc_layers,
        decoder_layers=dec_layers,
    )
    src, src_lengths, tgt_in = random_batch(gen, SRC_LENGTHS, TGT_LENGTHS, SRC_VOCAB)
    enc = model.encode(src, src_lengths)
    assert enc.memory.shape == (3, 5, 8)
    state = model.init_state(enc)
    hidden = state.hidden[0] if rnn == "lstm" else state.hidden
    assert hidden.shape == (dec_layers, 3, 8)
    if bridge == "zero":
        assert torch.all(hidden == 0)
    if bridge == "last" and enc_layers >= dec_layers:
        final = enc.final[0] if rnn == "lstm" else enc.final
        assert torch.equal(hidden, final[enc_layers - dec_layers :])
    logits, _ = model(src, src_lengths, tgt_in)
    log_probs, _ = step_by_step(model, src, src_lengths, tgt_in)
    torch.testing.assert_close(torch.log_softmax(logits, -1), log_probs)


def test_encoder_final_state_ignores_padding(gen) -> None:
    """Packed sequences: the final state is the one after the last real token."""
    model = make_model(ALL_VARIANTS[0], bidirectional=False)
    src, src_lengths, _ = random_batch(gen, [4, 2], [2, 2], SRC_VOCAB)
    full = model.encoder(src, src_lengths)
    alone = model.encoder(src[1:, :2], src_lengths[1:])
    torch.testing.assert_close(full.final[:, 1], alone.final[:, 0])
    assert torch.all(full.memory[1, 2:] == 0)


def test_reverse_padded_reverses_only_real_tokens() -> None:
    tokens = torch.tensor([[5, 6, 7, 8], [5, 6, 0, 0], [9, 0, 0, 0]])
    lengths = torch.tensor([4, 2, 1])
    expected = torch.tensor([[8, 7, 6, 5], [6, 5, 0, 0], [9, 0, 0, 0]])
    assert torch.equal(reverse_padded(tokens, lengths), expected)
    assert torch.equal(reverse_padded(expected, lengths), tokens)  # its own inverse
    states = tokens.unsqueeze(-1).expand(-1, -1, 3).float()  # works on (B, S, H) too
    assert torch.equal(reverse_padded(states, lengths)[..., 0], expected.float())


def test_reverse_source_feeds_the_rnn_backwards(gen) -> None:
    """A unidirectional encoder over reversed input ends on the sentence's first token."""
    plain = make_model(ALL_VARIANTS[0], bidirectional=False)
    reverse = make_model(ALL_VARIANTS[0], bidirectional=False, reverse_source=True)
    src, src_lengths, _ = random_batch(gen, [4, 3], [2, 2], SRC_VOCAB)
    flipped = reverse_padded(src, src_lengths)
    torch.testing.assert_close(
        reverse.encoder(src, src_lengths).final, plain.encoder(flipped, src_lengths).final
    )
    # Memory is returned in source order: position j still describes token j.
    torch.testing.assert_close(
        reverse.encoder(src, src_lengths).memory,
        reverse_padded(plain.encoder(flipped, src_lengths).memory, src_lengths),
    )


def test_tied_embeddings_share_one_matrix() -> None:
    model = make_model(ALL_VARIANTS[0], tie_embeddings=True, embed_dim=8)
    assert model.generator.weight is model.decoder.embedding.weight
