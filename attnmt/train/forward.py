"""What a training step runs forward, as one module."""

from __future__ import annotations

from torch import Tensor, nn

from attnmt.data.batching import Batch
from attnmt.models.seq2seq import Seq2Seq
from attnmt.train.loss import scheduled_sampling_log_probs


class TrainingForward(nn.Module):
    """What a training step runs forward: teacher forcing, or scheduled sampling below
    train.teacher_forcing 1. One module, so that DDP (whose gradient averaging hooks in
    through ``forward``) and ``torch.compile`` wrap exactly that."""

    def __init__(self, model: Seq2Seq, teacher_forcing: float) -> None:
        super().__init__()
        self.model = model
        self.teacher_forcing = teacher_forcing

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Log-probabilities or logits (B, T, V) for each decoder input position."""
        if self.teacher_forcing < 1.0:
            # Scheduled sampling reads only src, src_lengths and tgt_in of a batch.
            batch = Batch(src, src_lengths, tgt_in, tgt_out=tgt_in, indices=src_lengths)
            return scheduled_sampling_log_probs(self.model, batch, self.teacher_forcing)
        logits, _ = self.model(src, src_lengths, tgt_in)
        return logits
