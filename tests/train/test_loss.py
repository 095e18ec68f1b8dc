"""The fused, chunked output layer and loss against the plain path and the equation."""

from __future__ import annotations

import pytest
import torch
from conftest import random_batch, tiny_config
from torch import nn

from attnmt.models.build import build_model
from attnmt.special import PAD_ID
from attnmt.train.forward import TrainingForward
from attnmt.train.loss import chunked_output_loss, label_smoothed_loss


def padded_targets(generator: torch.Generator, batch: int, length: int, vocab: int) -> torch.Tensor:
    target = torch.randint(1, vocab, (batch, length), generator=generator)
    for b in range(batch):  # ragged rows: padding from a random position on
        target[b, int(torch.randint(1, length + 1, (), generator=generator)) :] = PAD_ID
    return target


def equation_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float) -> torch.Tensor:
    """sum over real tokens of -(1 - eps) log p_y - (eps / V) sum_v log p_v, written out."""
    log_probs = logits.log_softmax(-1)
    nll = -log_probs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    uniform = -log_probs.mean(-1)
    per_token = (1 - smoothing) * nll + smoothing * uniform
    return (per_token * (target != PAD_ID)).sum()


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("chunk_rows", [1, 5, 7, 1000])
def test_chunked_loss_equals_the_equation_in_float64(
    gen: torch.Generator, smoothing: float, chunk_rows: int
) -> None:
    """Loss and the gradients of hidden states, weight and bias equal autograd through
    the written-out loss (float64: only rounding differs), for chunks that split the
    batch unevenly, one row at a time, or not at all."""
    generator_layer = nn.Linear(6, 13).double()
    hidden = torch.randn(3, 5, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    target = padded_targets(gen, 3, 5, 13)
    params = [hidden, generator_layer.weight, generator_layer.bias]
    expected = equation_loss(generator_layer(hidden), target, smoothing)
    expected_grads = torch.autograd.grad(2.5 * expected, params)
    loss = chunked_output_loss(hidden, generator_layer, target, smoothing, chunk_rows)
    grads = torch.autograd.grad(2.5 * loss, params)
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=1e-12)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_equation_loss_is_torch_cross_entropy(gen: torch.Generator) -> None:
    """The written-out reference is what F.cross_entropy computes (so the two paths
    above and below are measured against the same definition)."""
    logits = torch.randn(4, 3, 9, dtype=torch.float64, generator=gen)
    target = padded_targets(gen, 4, 3, 9)
    plain = label_smoothed_loss(logits.double(), target, 0.1)
    torch.testing.assert_close(
        plain.double(), equation_loss(logits, target, 0.1), rtol=1e-6, atol=0
    )


# (autocast dtype, relative tolerance of the loss, of each gradient's largest entry)
PRECISIONS = [(None, 1e-6, 1e-5), (torch.bfloat16, 1e-3, 2e-2)]


@pytest.mark.parametrize("precision", PRECISIONS, ids=["fp32", "bf16"])
@pytest.mark.parametrize("decoder", ["bahdanau", "luong", "none"])
def test_training_forward_chunked_equals_plain(
    gen: torch.Generator, decoder: str, precision: tuple[torch.dtype | None, float, float]
) -> None:
    """The trainer's forward: the chunked loss and every parameter's gradient equal the
    plain path's, within fp32 rounding, or bf16 rounding under bf16 autocast (what
    `precision: auto` picks on a CPU with native bf16)."""
    dtype, loss_tolerance, grad_tolerance = precision
    variant = (decoder, "general" if decoder == "luong" else None, None, decoder == "luong")
    torch.manual_seed(0)
    model = build_model(tiny_config(variant), 11, 13)
    src, src_lengths, tgt_in = random_batch(gen, [5, 3, 4], [4, 2, 4], vocab=11)
    tgt_out = padded_targets(gen, 3, 4, 13)
    results = []
    for chunked in (False, True):
        model.zero_grad()
        forward = TrainingForward(model, 1.0, 0.1, chunked=chunked)
        with torch.autocast("cpu", dtype or torch.float32, enabled=dtype is not None):
            loss = forward(src, src_lengths, tgt_in, tgt_out)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((loss.detach(), grads))
    (plain_loss, plain_grads), (loss, grads) = results
    torch.testing.assert_close(loss, plain_loss, rtol=loss_tolerance, atol=0)
    assert grads.keys() == plain_grads.keys()
    for name, want in plain_grads.items():
        scale = want.abs().max().clamp(min=1e-6)
        assert (grads[name] - want).abs().max() <= grad_tolerance * scale, name
        assert grads[name].dtype == want.dtype, name


@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 512])
def test_the_fused_loss_computes_few_shapes_and_every_real_token(chunk_rows: int) -> None:
    """pad_rows covers every real token, adds less than one multiple of padding, and
    gives full chunks plus a last chunk from a small set of sizes."""
    from attnmt.train.loss import LOSS_ROW_MULTIPLE, pad_rows

    multiple = min(LOSS_ROW_MULTIPLE, chunk_rows)
    last_sizes = set()
    for count in range(1, 3000):
        rows = pad_rows(count, chunk_rows)
        assert count <= rows < count + multiple
        last_sizes.add(rows % chunk_rows or chunk_rows)
        assert (rows % chunk_rows) % multiple == 0
    assert len(last_sizes) <= chunk_rows // multiple
