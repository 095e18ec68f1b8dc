"""Attention scores and windows against loops written straight from their equations."""

from __future__ import annotations

import math

import pytest
import torch

from attnmt.nn.attention import Attention, attend
from attnmt.nn.scores import (
    SCORES,
    ConcatScore,
    GeneralScore,
    LocationScore,
    MultiHeadScore,
    build_score,
)
from attnmt.nn.windows import WINDOWS, LocalMonotonicWindow, LocalPredictiveWindow, build_window

DIM = 4  # query and key size in these tests
HALF_WIDTH = 1


def make_attention(score: str, window: str, dtype: torch.dtype = torch.float32) -> Attention:
    torch.manual_seed(0)
    attn = Attention(
        build_score(score, DIM, DIM, attn_dim=4, heads=2, max_src_len=8),
        build_window(window, DIM, attn_dim=4, half_width=HALF_WIDTH),
    )
    return attn.to(dtype)


def inputs(dtype: torch.dtype = torch.float32, lengths: tuple[int, ...] = (5, 3)):
    gen = torch.Generator().manual_seed(1)
    batch, steps, src_len = len(lengths), 4, max(lengths)
    query = torch.randn(batch, steps, DIM, generator=gen, dtype=dtype)
    memory = torch.randn(batch, src_len, DIM, generator=gen, dtype=dtype)
    src_lengths = torch.tensor(lengths)
    src_mask = torch.arange(src_len).unsqueeze(0) < src_lengths.unsqueeze(1)
    positions = torch.arange(steps)
    return query, memory, src_mask, src_lengths, positions


def run(attn: Attention, query, memory, src_mask, src_lengths, positions):
    """Context (B, T, D) and the default map (B, T, S): the mean of the heads."""
    context, heads = run_heads(attn, query, memory, src_mask, src_lengths, positions)
    return context, heads.mean(1)


def run_heads(attn: Attention, query, memory, src_mask, src_lengths, positions):
    """Context (B, T, D) and every head's weights (B, heads, T, S)."""
    return attn(query, attn.project_keys(memory), src_mask, src_lengths, positions)


# ---------------------------------------------------------------------------
# Naive loops, one (t, j) pair at a time, from the docstring equations


def naive_score(score: torch.nn.Module, q: torch.Tensor, h: torch.Tensor, j: int) -> torch.Tensor:
    """e = score(q, h) for one query q (Dq,) and one key h (Dk,); multihead: one per head."""
    if isinstance(score, ConcatScore):  # v_aᵀ tanh(W_q s + W_k h)
        return score.v_a.weight[0] @ torch.tanh(score.W_q.weight @ q + score.W_k.weight @ h)
    if isinstance(score, GeneralScore):  # sᵀ W_a h
        return q @ (score.W_a.weight @ h)
    if isinstance(score, LocationScore):  # (W_a s)_j
        return (score.W_a.weight @ q)[j]
    if isinstance(score, MultiHeadScore):  # per head: (W_q s)_iᵀ (W_k h)_i / √d
        d = score.head_dim
        qs, ks = score.W_q.weight @ q, score.W_k.weight @ h
        return torch.stack(
            [qs[i * d : (i + 1) * d] @ ks[i * d : (i + 1) * d] for i in range(score.heads)]
        ) / math.sqrt(d)
    if type(score).__name__ == "ScaledDotScore":  # sᵀ h / √d
        return q @ h / math.sqrt(q.numel())
    return q @ h  # dot: sᵀ h


def naive_attention(attn: Attention, query, memory, src_lengths, positions):
    """Context and weights, looping over sentences b, steps t and positions j."""
    batch, steps, _ = query.shape
    src_len = memory.size(1)
    contexts = torch.zeros(batch, steps, memory.size(2), dtype=query.dtype)
    score = attn.score
    heads = getattr(score, "heads", 1)
    weights = torch.zeros(batch, heads, steps, src_len, dtype=torch.float64)
    for b in range(batch):
        length = int(src_lengths[b])
        for t in range(steps):
            q = query[b, t]
            allowed = list(range(length))
            bias = [0.0] * length
            if isinstance(attn.window, LocalMonotonicWindow):  # p_t = t, clamped
                centre = min(int(positions[t]), length - 1)
                allowed = [j for j in allowed if abs(j - centre) <= HALF_WIDTH]
            if isinstance(attn.window, LocalPredictiveWindow):
                w = attn.window
                gate = torch.sigmoid(w.v_p.weight[0] @ torch.tanh(w.W_p.weight @ q))
                centre = (length - 1) * gate  # p_t = (S_x - 1) sigmoid(v_pᵀ tanh(W_p h_t))
                sigma = HALF_WIDTH / 2
                allowed = [j for j in allowed if abs(j - centre) <= HALF_WIDTH]
                bias = [-((j - centre) ** 2) / (2 * sigma**2) for j in range(length)]
            # e_tj + log-window, per head: (heads, |allowed|)
            e = torch.stack(
                [naive_score(score, q, memory[b, j], j).reshape(heads) + bias[j] for j in allowed],
                dim=1,
            ).double()
            alpha = torch.softmax(e, dim=1)  # (heads, |allowed|)
            if isinstance(score, MultiHeadScore):
                d = score.head_dim
                values = memory[b, allowed] @ score.W_v.weight.T  # (|allowed|, A)
                per_head = [
                    alpha[i].to(query.dtype) @ values[:, i * d : (i + 1) * d] for i in range(heads)
                ]
                contexts[b, t] = score.W_o.weight @ torch.cat(per_head)
            else:
                contexts[b, t] = alpha[0].to(query.dtype) @ memory[b, allowed]
            weights[b, :, t, allowed] = alpha
    return contexts, weights


@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("score", list(SCORES))
def test_vectorised_equals_naive_loop(score: str, window: str) -> None:
    attn = make_attention(score, window, torch.float64)
    query, memory, src_mask, src_lengths, positions = inputs(torch.float64)
    context, weights = run_heads(attn, query, memory, src_mask, src_lengths, positions)
    naive_context, naive_weights = naive_attention(attn, query, memory, src_lengths, positions)
    torch.testing.assert_close(weights.double(), naive_weights)  # every head, (B, h, T, S)
    torch.testing.assert_close(context, naive_context)


@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("score", list(SCORES))
def test_rows_sum_to_one_and_padding_gets_zero(score: str, window: str) -> None:
    attn = make_attention(score, window)
    query, memory, src_mask, src_lengths, positions = inputs()
    context, weights = run(attn, query, memory, src_mask, src_lengths, positions)
    assert context.shape == (2, 4, DIM)
    assert weights.shape == (2, 4, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4))
    assert torch.all(weights[1, :, 3:] == 0)  # sentence 1 has 3 real tokens
    # Whatever the padding holds, nothing changes.
    noisy = memory.clone()
    noisy[1, 3:] = torch.randn(2, DIM) * 100
    context2, weights2 = run(attn, query, noisy, src_mask, src_lengths, positions)
    assert torch.equal(weights, weights2)
    assert torch.equal(context, context2)


@pytest.mark.parametrize("window", list(WINDOWS))
@pytest.mark.parametrize("score", list(SCORES))
def test_gradcheck_float64(score: str, window: str) -> None:
    attn = make_attention(score, window, torch.float64)
    query, memory, src_mask, src_lengths, positions = inputs(torch.float64, lengths=(3, 2))
    query.requires_grad_(True)
    memory.requires_grad_(True)

    def fn(q: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return run(attn, q, m, src_mask, src_lengths, positions)

    assert torch.autograd.gradcheck(fn, (query, memory), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_mask_fill_is_safe_in_low_precision(dtype: torch.dtype) -> None:
    scores = torch.randn(2, 3, 5).to(dtype)
    values = torch.randn(2, 5, 4).to(dtype)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]]).unsqueeze(1)
    context, weights = attend(scores, values, mask)
    assert torch.isfinite(context).all() and torch.isfinite(weights).all()
    assert torch.all(weights[1, :, 2:] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))


def test_local_windows_only_cover_their_span() -> None:
    attn = make_attention("dot", "local-m")
    query, memory, src_mask, src_lengths, positions = inputs()
    _, weights = run(attn, query, memory, src_mask, src_lengths, positions)
    for t in range(4):
        centre = min(t, 4)  # sentence 0 has length 5
        outside = [j for j in range(5) if abs(j - centre) > HALF_WIDTH]
        assert torch.all(weights[0, t, outside] == 0)
    attn = make_attention("dot", "local-p")
    window = attn.window
    assert isinstance(window, LocalPredictiveWindow)
    centre = window.centre(query, src_lengths)  # (B, T)
    assert torch.all(centre >= 0) and torch.all(centre <= (src_lengths - 1).unsqueeze(1))


def test_location_score_rejects_too_long_source() -> None:
    attn = make_attention("location", "global")
    query, memory, src_mask, src_lengths, positions = inputs(lengths=(9, 3))
    with pytest.raises(ValueError, match="max_src_len"):
        run(attn, query, memory, src_mask, src_lengths, positions)


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="concat"):
        build_score("additive", DIM, DIM, 4, 1, 8)
    with pytest.raises(ValueError, match="local-p"):
        build_window("local", DIM, 4, 1)
    with pytest.raises(ValueError, match="one size"):
        build_score("dot", 4, 6, 4, 1, 8)


def test_any_mask_can_be_given_for_example_causal() -> None:
    """attend() takes whatever bool mask the caller builds: here a causal (T, T) mask
    for self-attention, combined with padding."""
    attn = make_attention("scaled_dot", "global")
    memory = torch.randn(2, 4, DIM)
    lengths = torch.tensor([4, 3])
    padding = torch.arange(4).unsqueeze(0) < lengths.unsqueeze(1)  # (B, S)
    causal = torch.ones(4, 4, dtype=torch.bool).tril()  # (T, S): j <= t
    mask = padding.unsqueeze(1) & causal  # (B, T, S)
    _, weights = run_heads(attn, memory, memory, mask, lengths, torch.arange(4))
    assert torch.all(weights.squeeze(1)[:, ~causal] == 0)  # nothing from the future
    assert torch.all(weights[1, :, :, 3] == 0)  # nor from padding
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 1, 4))
