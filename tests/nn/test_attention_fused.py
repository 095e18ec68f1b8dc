"""The fused attention path (scaled_dot_product_attention, no weights) against the explicit
one (attend, every weight formed): the same context and the same gradients, to rounding,
with padding masks and causal masks, and for a whole Transformer."""

from __future__ import annotations

import pytest
import torch

from attnmt.config import build_config
from attnmt.models.build import build_model
from attnmt.nn.attention import Attention
from attnmt.nn.scores import build_score
from attnmt.nn.windows import build_window

DIM = 8
FUSABLE = ["dot", "scaled_dot", "general", "multihead"]
TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}  # fp32: the two paths sum in different orders


def make(score: str, window: str = "global", dtype: torch.dtype = torch.float32) -> Attention:
    torch.manual_seed(0)
    return Attention(
        build_score(score, DIM, DIM, attn_dim=DIM, heads=2, max_src_len=16),
        build_window(window, DIM, attn_dim=DIM, half_width=1),
    ).to(dtype)


def padding_and_causal(lengths: list[int], steps: int, causal: bool) -> torch.Tensor:
    """(B, S) padding mask, or (B, T, S) padding and causal (query t sees keys j <= t)."""
    src_len = max(lengths)
    mask = torch.arange(src_len).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # (B, S)
    if not causal:
        return mask
    allowed = torch.arange(src_len).unsqueeze(0) <= torch.arange(steps).unsqueeze(1)  # (T, S)
    return mask.unsqueeze(1) & allowed.unsqueeze(0)  # (B, T, S)


def both_paths(attn: Attention, mask: torch.Tensor, steps: int, dtype: torch.dtype):
    """(context, gradients) from the explicit and the fused path, on the same inputs."""
    lengths = mask.any(1) if mask.dim() == 3 else mask
    src_lengths = lengths.sum(-1)
    gen = torch.Generator().manual_seed(1)
    query = torch.randn(mask.size(0), steps, DIM, generator=gen, dtype=dtype)
    memory = torch.randn(mask.size(0), mask.size(-1), DIM, generator=gen, dtype=dtype)
    outputs = []
    for need_weights in (True, False):
        attn.zero_grad()
        q, m = query.clone().requires_grad_(), memory.clone().requires_grad_()
        context, weights = attn(
            q, attn.project_keys(m), mask, src_lengths, torch.arange(steps), need_weights
        )
        assert (weights is None) == (not need_weights)  # the fused path was taken
        context.pow(2).sum().backward()
        grads = [q.grad, m.grad] + [p.grad for p in attn.parameters()]
        outputs.append((context.detach(), grads))
    return outputs


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("score", FUSABLE)
@pytest.mark.parametrize("causal", [False, True], ids=["padding", "causal+padding"])
def test_fused_equals_explicit(score: str, causal: bool, dtype: torch.dtype) -> None:
    """In float64 the two paths agree to 1e-7 (assert_close's default): the same
    function; in float32 the context to 1e-5, the gradients to 1e-4 (sums in another
    order, then backpropagated)."""
    attn = make(score, dtype=dtype)
    steps = 5 if not causal else 6  # causal: queries over the keys themselves, S = T
    mask = padding_and_causal([6, 3, 1] if causal else [5, 2, 4], steps, causal)
    (explicit, explicit_grads), (fused, fused_grads) = both_paths(attn, mask, steps, dtype)
    context_tol = {} if dtype == torch.float64 else TOLERANCE
    grad_tol = {} if dtype == torch.float64 else {"atol": 1e-4, "rtol": 1e-4}
    torch.testing.assert_close(fused, explicit, **context_tol)
    for a, b in zip(fused_grads, explicit_grads, strict=True):
        torch.testing.assert_close(a, b, **grad_tol)


@pytest.mark.parametrize("score,window", [("concat", "global"), ("dot", "local-m")])
def test_other_scores_and_windows_keep_the_explicit_path(score: str, window: str) -> None:
    """No fused kernel for an additive score or a local window: the weights still come."""
    attn = make(score, window)
    mask = padding_and_causal([4, 2], 3, False)
    query, memory = torch.randn(2, 3, DIM), torch.randn(2, 4, DIM)
    args = (query, attn.project_keys(memory), mask, mask.sum(1), torch.arange(3))
    context, weights = attn(*args, need_weights=False)
    explicit, _ = attn(*args)
    assert weights is not None
    torch.testing.assert_close(context, explicit)


def test_transformer_loss_path_equals_the_weights_path() -> None:
    """A whole Transformer, padded batch: logits without weights (training's path, fused
    everywhere) equal those with every weight formed, in eval and in training mode with
    dropout switched off."""
    config = build_config(
        [
            (
                "test",
                {
                    "model": {
                        "arch": "transformer",
                        "embed_dim": 16,
                        "layers": 2,
                        "ff_dim": 32,
                        "dropout": 0.0,
                        "attention_dropout": 0.0,
                        "attention": {"heads": 2},
                    }
                },
            )
        ]
    )
    torch.manual_seed(0)
    model = build_model(config.model, 20, 20)
    src = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    tgt_in = torch.tensor([[1, 4, 5, 6, 7], [1, 8, 9, 0, 0]])
    src_lengths = torch.tensor([4, 2])
    for training in (False, True):
        model.train(training)
        with_weights, weights = model(src, src_lengths, tgt_in, need_weights=True)
        fused, none = model(src, src_lengths, tgt_in, need_weights=False)
        assert weights is not None and none is None
        torch.testing.assert_close(fused, with_weights, **TOLERANCE)
