"""The additive score's autograd function against the plain tensor operations."""

from __future__ import annotations

import pytest
import torch

from attnmt.nn.additive import additive_scores, additive_scores_plain


def inputs(gen: torch.Generator, dtype: torch.dtype) -> list[torch.Tensor]:
    shapes = [(3, 4, 6), (3, 5, 6), (6,)]  # query (B, T, A), keys (B, S, A), v_a (A,)
    return [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in shapes]


def test_gradcheck(gen: torch.Generator) -> None:
    """Backward (the recomputed tanh) is the derivative of forward, in float64."""
    assert torch.autograd.gradcheck(additive_scores, inputs(gen, torch.float64))


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-12), (torch.bfloat16, 2e-2)])
def test_equals_plain_forward_and_backward(
    gen: torch.Generator, dtype: torch.dtype, tolerance: float
) -> None:
    """Scores and all three gradients equal the plain path's: to rounding in float64,
    within bf16 rounding (relative to the largest entry) in bf16."""
    query, keys, v_a = inputs(gen, dtype)
    weights = torch.randn(3, 4, 5, generator=gen, dtype=dtype)  # a random downstream loss
    results = []
    for function in (additive_scores_plain, additive_scores):
        scores = function(query, keys, v_a)
        grads = torch.autograd.grad((scores * weights).sum(), [query, keys, v_a])
        results.append((scores, *grads))
    for plain, fused in zip(*results, strict=True):
        assert fused.dtype == plain.dtype and fused.shape == plain.shape
        scale = plain.abs().max().float()
        assert (fused - plain).abs().max().float() <= tolerance * scale


def test_keeps_no_hidden_layer_for_backward(gen: torch.Generator) -> None:
    """What autograd keeps is the inputs alone, never a (B, T, S, A) tensor; the plain
    path keeps at least one."""
    query, keys, v_a = inputs(gen, torch.float32)
    for function, keeps_hidden in ((additive_scores_plain, True), (additive_scores, False)):
        shapes: list[tuple[int, ...]] = []

        def pack(tensor: torch.Tensor, shapes: list[tuple[int, ...]] = shapes) -> torch.Tensor:
            shapes.append(tuple(tensor.shape))
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            function(query, keys, v_a)
        assert any(len(shape) == 4 for shape in shapes) == keeps_hidden, shapes
