"""The recurrent layers: fp32 under CPU autocast, and otherwise nn.RNNBase exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

from attnmt.nn.rnn import make_rnn


@pytest.mark.parametrize("kind", ["gru", "lstm", "rnn"])
def test_cpu_autocast_leaves_the_recurrence_in_fp32(gen: torch.Generator, kind: str) -> None:
    """Under bf16 autocast the layer returns exactly what it returns without autocast
    (fp32 outputs and states), for padded and packed inputs, with and without a state."""
    rnn = make_rnn(kind, 6, 5, layers=2, dropout=0.0, bidirectional=True)
    assert isinstance(rnn, nn.RNNBase)
    x = torch.randn(3, 4, 6, generator=gen)
    packed = pack_padded_sequence(
        x, torch.tensor([4, 2, 3]), batch_first=True, enforce_sorted=False
    )
    h = torch.randn(4, 3, 5, generator=gen)
    state = (h, torch.randn(4, 3, 5, generator=gen)) if kind == "lstm" else h
    rounded = x.bfloat16()  # a bf16 input (what an autocast layer before it hands over)
    cases = [((x,), (x,)), ((rounded, state), (rounded.float(), state)), ((packed,), (packed,))]
    for inputs, fp32_inputs in cases:
        want = rnn(*fp32_inputs)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = rnn(*inputs)[0]
        if isinstance(got, PackedSequence):
            got, want = got.data, want.data
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_one_step_outputs_have_standard_strides(gen: torch.Generator) -> None:
    """A batch-first one-step output comes back with the strides of a fresh tensor."""
    rnn = make_rnn("gru", 6, 5, layers=1, dropout=0.0, bidirectional=False)
    output, _ = rnn(torch.randn(3, 1, 6, generator=gen))
    assert output.stride() == torch.empty(3, 1, 5).stride()
