"""What a training step runs forward, loss included, as one module."""

from __future__ import annotations

from torch import Tensor, nn

from attnmt.data.batching import Batch
from attnmt.models.interface import TrainableModel
from attnmt.train.loss import (
    chunked_output_loss,
    label_smoothed_loss,
    scheduled_sampling_log_probs,
)


class TrainingForward(nn.Module):
    """What a training step runs forward: teacher forcing, or scheduled sampling below
    train.teacher_forcing 1, and the loss. One module, so that DDP (whose gradient
    averaging hooks in through ``forward``) and ``torch.compile`` wrap exactly that.

    Teacher forcing applies the output layer and the loss together in chunks of target
    positions (:func:`attnmt.train.loss.chunked_output_loss`), so that the (B, T, V)
    logits are never all alive at once; ``chunked=False`` takes the plain path, which
    the tests compare it with."""

    def __init__(
        self, model: TrainableModel, teacher_forcing: float, smoothing: float, chunked: bool = True
    ) -> None:
        super().__init__()
        self.model = model
        self.teacher_forcing = teacher_forcing
        self.smoothing = smoothing
        self.chunked = chunked

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, tgt_out: Tensor) -> Tensor:
        """The sum over real target tokens of the label-smoothed loss, a float32 scalar."""
        if self.teacher_forcing < 1.0:
            # Scheduled sampling reads only src, src_lengths and tgt_in of a batch.
            batch = Batch(src, src_lengths, tgt_in, tgt_out=tgt_in, indices=src_lengths)
            log_probs = scheduled_sampling_log_probs(self.model, batch, self.teacher_forcing)
            return label_smoothed_loss(log_probs, tgt_out, self.smoothing)
        if not self.chunked:
            logits, _ = self.model(src, src_lengths, tgt_in, need_weights=False)
            return label_smoothed_loss(logits, tgt_out, self.smoothing)
        output, _ = self.model.decoder_outputs(src, src_lengths, tgt_in, need_weights=False)
        return chunked_output_loss(output, self.model.output_layer, tgt_out, self.smoothing)
