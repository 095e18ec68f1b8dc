"""The training loss: label-smoothed cross-entropy, and scheduled sampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from attnmt.data.batching import Batch
from attnmt.models.seq2seq import Seq2Seq
from attnmt.special import PAD_ID


def label_smoothed_loss(logits: Tensor, target: Tensor, smoothing: float) -> Tensor:
    """Sum over real target tokens of the label-smoothed cross-entropy (Szegedy et al. 2016)."""
    return F.cross_entropy(
        logits.float().flatten(0, 1),
        target.flatten(),
        ignore_index=PAD_ID,
        label_smoothing=smoothing,
        reduction="sum",
    )


def scheduled_sampling_log_probs(model: Seq2Seq, batch: Batch, gold_ratio: float) -> Tensor:
    """Decode step by step, feeding the gold previous token with probability `gold_ratio`
    and the model's own argmax otherwise (Bengio et al. 2015). Returns (B, T, V)."""
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(enc)
    tokens = batch.tgt_in[:, 0]
    outputs = []
    for t in range(batch.tgt_in.size(1)):
        log_probs, _, state = model.step(tokens, enc, state)
        outputs.append(log_probs)
        if t + 1 < batch.tgt_in.size(1):
            use_gold = torch.rand(tokens.shape, device=tokens.device) < gold_ratio
            tokens = torch.where(use_gold, batch.tgt_in[:, t + 1], log_probs.argmax(-1))
    return torch.stack(outputs, dim=1)
