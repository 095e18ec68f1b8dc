"""The recurrent layers: nn.RNNBase, with standard output strides."""

from __future__ import annotations

import torch

from attnmt.nn.rnn import make_rnn


def test_one_step_outputs_have_standard_strides(gen: torch.Generator) -> None:
    """A batch-first one-step output comes back with the strides of a fresh tensor."""
    rnn = make_rnn("gru", 6, 5, layers=1, dropout=0.0, bidirectional=False)
    output, _ = rnn(torch.randn(3, 1, 6, generator=gen))
    assert output.stride() == torch.empty(3, 1, 5).stride()
