"""Evaluation mode: the one way to run a model without dropout and without autograd.

    with evaluating(model):
        logits, attention = model(src, src_lengths, tgt_in)

Search, the teacher-forced passes of evaluation (loss, perplexity, forced attention) and
validation during training all enter it. The model's previous mode comes back on exit,
also when the body raises, so validating a training model leaves it training.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from attnmt.models.interface import Seq2SeqModel


@contextmanager
def evaluating(model: Seq2SeqModel) -> Iterator[None]:
    """Eval mode (no dropout) and ``torch.inference_mode`` (no autograd) inside the block;
    the model's previous training mode is restored after it, even on an exception."""
    was_training = model.training
    if was_training:  # a walk over every module: only when there is a mode to change
        model.train(False)
    try:
        with torch.inference_mode():
            yield
    finally:
        if was_training:
            model.train(True)
