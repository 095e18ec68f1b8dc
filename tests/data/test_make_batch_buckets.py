"""make_batch with pad_multiple: lengths rounded up to buckets, and a training step on the
bucketed batch equals the step on the plain batch (loss and every gradient within 1e-6;
the model runs in float64, the loss in float32)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import ALL_VARIANTS, tiny_config, variant_id

from attnmt.data.batching import make_batch
from attnmt.data.corpus import CorpusStats, TokenizedCorpus
from attnmt.models.build import build_model
from attnmt.special import PAD_ID
from attnmt.train.loss import label_smoothed_loss

VOCAB = 13
TOLERANCE = dict(rtol=1e-6, atol=1e-6)  # the loss runs in float32 (logits.float())


def random_corpus(n: int, seed: int = 0, max_len: int = 11) -> TokenizedCorpus:
    rng = np.random.default_rng(seed)
    sides = []
    for _ in range(2):
        lengths = rng.integers(0, max_len, size=n)
        tokens = rng.integers(4, VOCAB, size=int(lengths.sum())).astype(np.int32)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        sides += [tokens, offsets]
    return TokenizedCorpus(*sides, stats=CorpusStats(n, 0, 0))


@pytest.mark.parametrize("multiple", [1, 4, 8])
def test_buckets_round_lengths_up_and_only_add_padding(multiple: int) -> None:
    corpus = random_corpus(40)
    for start in range(0, 40, 7):
        indices = list(range(start, min(start + 7, 40)))
        plain = make_batch(corpus, indices)
        bucketed = make_batch(corpus, indices, pad_multiple=multiple)
        S, T = plain.src.size(1), plain.tgt_in.size(1)
        assert bucketed.src.size(1) % multiple == 0 and bucketed.tgt_in.size(1) % multiple == 0
        assert S <= bucketed.src.size(1) < S + multiple
        assert T <= bucketed.tgt_in.size(1) < T + multiple
        for name in ("src", "tgt_in", "tgt_out"):
            small, big = getattr(plain, name), getattr(bucketed, name)
            width = small.size(1)
            assert torch.equal(big[:, :width], small)
            assert (big[:, width:] == PAD_ID).all()
        assert torch.equal(bucketed.src_lengths, plain.src_lengths)
        assert bucketed.n_tgt_tokens == plain.n_tgt_tokens


def step(model, batch):
    """Loss and gradients of one training step (dropout off)."""
    model.zero_grad()
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    loss = label_smoothed_loss(logits, batch.tgt_out, 0.1) / batch.n_tgt_tokens
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


@pytest.mark.parametrize("variant", ALL_VARIANTS[:1] + ALL_VARIANTS[-1:], ids=variant_id)
def test_training_step_on_buckets_equals_plain_step(variant) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config(variant), VOCAB, VOCAB).double()
    corpus = random_corpus(12, seed=1)
    indices = list(range(12))
    plain_loss, plain_grads = step(model, make_batch(corpus, indices))
    loss, grads = step(model, make_batch(corpus, indices, pad_multiple=8))
    torch.testing.assert_close(loss, plain_loss, **TOLERANCE)
    assert grads.keys() == plain_grads.keys()
    for name, grad in plain_grads.items():
        torch.testing.assert_close(grads[name], grad, **TOLERANCE)
