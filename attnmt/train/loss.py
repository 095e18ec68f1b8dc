"""The training loss: label-smoothed cross-entropy, plain and fused with the output
layer in chunks of target positions, and scheduled sampling."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnmt.data.batching import Batch
from attnmt.models.interface import Seq2SeqModel
from attnmt.special import PAD_ID

LOSS_CHUNK_ROWS = 512  # target positions per chunk of the fused output layer and loss
LOSS_ROW_MULTIPLE = 64  # the last chunk is padded to a multiple of this many rows


def label_smoothed_loss(logits: Tensor, target: Tensor, smoothing: float) -> Tensor:
    """Sum over real target tokens of the label-smoothed cross-entropy (Szegedy et al. 2016)."""
    return F.cross_entropy(
        logits.float().flatten(0, 1),
        target.flatten(),
        ignore_index=PAD_ID,
        label_smoothing=smoothing,
        reduction="sum",
    )


class _ChunkedOutputLoss(torch.autograd.Function):
    """The output layer and the label-smoothed loss, with their gradients, one chunk of
    target positions at a time; see :func:`chunked_output_loss`."""

    @staticmethod
    def forward(
        ctx: Any,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor,
        target: Tensor,
        smoothing: float,
        chunk_rows: int,
    ) -> Tensor:
        dtype = hidden.dtype  # the autocast dtype (or fp32 without autocast)
        wide = torch.promote_types(dtype, torch.float32)  # softmax and sums: fp32 or fp64
        weight_c, bias_c = weight.to(dtype), bias.to(dtype)
        vocab = weight.size(0)
        total = torch.zeros((), dtype=wide, device=hidden.device)
        grad_hidden = torch.empty_like(hidden)  # (N, H)
        grad_weight = torch.zeros_like(weight, dtype=wide)  # (V, H)
        grad_bias = torch.zeros_like(bias, dtype=wide)  # (V,)
        for start in range(0, hidden.size(0), chunk_rows):
            rows = slice(start, start + chunk_rows)
            h, y = hidden[rows], target[rows]  # (n, H), (n,)
            log_probs = F.linear(h, weight_c, bias_c).to(wide).log_softmax(-1)  # (n, V)
            real = (y != PAD_ID).unsqueeze(1)  # (n, 1)
            # l = -(1 - eps) log p_y - (eps / V) sum_v log p_v, on real tokens only
            nll = log_probs.gather(1, y.unsqueeze(1))  # (n, 1)
            per_token = (1 - smoothing) * nll + (smoothing / vocab) * log_probs.sum(1, True)
            total -= per_token.masked_fill(~real, 0).sum()
            # dl/dz = softmax(z) - (1 - eps) onehot(y) - eps / V, zero on padding
            grad_logits = log_probs.exp_().sub_(smoothing / vocab)  # (n, V), reuses log_probs
            grad_logits.scatter_add_(1, y.unsqueeze(1), nll.new_full(nll.shape, smoothing - 1))
            grad_logits = grad_logits.masked_fill_(~real, 0).to(dtype)
            grad_hidden[rows] = grad_logits @ weight_c  # (n, H)
            grad_weight += grad_logits.t() @ h  # (V, H)
            grad_bias += grad_logits.sum(0)
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.weight_dtype = weight.dtype
        return total

    @staticmethod
    def backward(ctx: Any, grad_total: Tensor) -> tuple[Tensor | None, ...]:
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        return (
            grad_hidden * grad_total.to(grad_hidden.dtype),
            (grad_weight * grad_total).to(ctx.weight_dtype),
            (grad_bias * grad_total).to(ctx.weight_dtype),
            None,
            None,
            None,
        )


def chunked_output_loss(
    hidden: Tensor,
    generator: nn.Linear,
    target: Tensor,
    smoothing: float,
    chunk_rows: int = LOSS_CHUNK_ROWS,
) -> Tensor:
    """``label_smoothed_loss(generator(hidden), target, smoothing)``, with the logits
    never held for more than `chunk_rows` target positions at once.

    For logits z = W o + b, p = softmax(z) and smoothed targets q = (1 - eps) onehot(y)
    + eps / V, the loss is l = -sum_v q_v log p_v and its gradient dl/dz = p - q. Each
    chunk computes its logits, its loss and that gradient at once, turns it into the
    gradients of o, W and b (dl/do = W^T dl/dz, dl/dW = dl/dz o^T, dl/db = dl/dz), and
    drops its logits. Only real target tokens go through the output layer (padding would add
    nothing to the loss or the gradients), in chunks of a few fixed shapes (:func:`pad_rows`).
    The plain path keeps the (B*T, V) logits, their float copy and
    their log-softmax alive until backward: about half a gigabyte for a 4,096-token batch
    and 8,000 types. The arithmetic is the same, so it costs no time. Backward then only
    scales the stored gradients. For training only: the gradients are computed whether or
    not anyone asks for them.
    """
    if generator.bias is None:
        raise ValueError("chunked_output_loss needs an output layer with a bias")
    device_type = hidden.device.type
    if torch.is_autocast_enabled(device_type):  # the dtype autocast gives the plain path
        hidden = hidden.to(torch.get_autocast_dtype(device_type))
    flat_target = target.flatten()  # (B*T,)
    real = (flat_target != PAD_ID).nonzero().squeeze(1)  # (N,) the real target tokens
    rows = pad_rows(real.numel(), chunk_rows)
    index = F.pad(real, (0, rows - real.numel()))  # padding rows repeat row 0, masked below
    real_hidden = hidden.flatten(0, 1).index_select(0, index)  # (rows, H)
    real_target = F.pad(flat_target.index_select(0, real), (0, rows - real.numel()), value=PAD_ID)
    return _ChunkedOutputLoss.apply(
        real_hidden, generator.weight, generator.bias, real_target, smoothing, chunk_rows
    )


def pad_rows(count: int, chunk_rows: int) -> int:
    """Rows the fused loss computes for `count` real tokens: full chunks of `chunk_rows`,
    and a last chunk rounded up to a multiple of LOSS_ROW_MULTIPLE. So the output layer's
    matmuls take a handful of shapes rather than one per batch; on the CPU every new shape
    is a new oneDNN kernel, kept in its cache (in bf16 with its own copy of the weights)."""
    last = count % chunk_rows
    if last == 0:
        return count
    multiple = min(LOSS_ROW_MULTIPLE, chunk_rows)
    return count - last + min(chunk_rows, -(-last // multiple) * multiple)


def scheduled_sampling_log_probs(model: Seq2SeqModel, batch: Batch, gold_ratio: float) -> Tensor:
    """Decode step by step, feeding the gold previous token with probability `gold_ratio`
    and the model's own argmax otherwise (Bengio et al. 2015). Returns (B, T, V)."""
    enc = model.encode(batch.src, batch.src_lengths)
    state = model.init_state(enc)
    tokens = batch.tgt_in[:, 0]
    outputs = []
    for t in range(batch.tgt_in.size(1)):
        log_probs, _, state = model.step(tokens, enc, state, need_weights=False)
        outputs.append(log_probs)
        if t + 1 < batch.tgt_in.size(1):
            use_gold = torch.rand(tokens.shape, device=tokens.device) < gold_ratio
            tokens = torch.where(use_gold, batch.tgt_in[:, t + 1], log_probs.argmax(-1))
    return torch.stack(outputs, dim=1)
