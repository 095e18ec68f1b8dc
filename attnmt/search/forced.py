"""Forced decoding: a model scores outputs it is given, by teacher forcing over a whole
corpus. The one batch loop behind the loss, the perplexity and the forced attention (and
so the AER) of a model, and the log-probability of given replies (relevance ranking,
MMI reranking):

    for forced in forced_batches(model, corpus, batch_tokens, device, dtype):
        forced.nll_sum(), forced.batch.n_tgt_tokens     # -> corpus_loss
        for k, weights in forced.pair_attention(): ...  # -> forced_attention
        forced.pair_log_probs()                         # -> sequence_log_probs

The model reads the *reference* target (``tgt_in`` = BOS y_1 ... y_n) and predicts
``tgt_out`` = y_1 ... y_n EOS, so every pair is scored on its own reference, whatever the
model would have output. Batches come in a fixed order (shortest first, no shuffling);
``batch.indices`` says which pairs of the corpus a batch holds.

Each forward runs inside :func:`attnmt.models.modes.evaluating`: no dropout, no autograd,
and the model's mode is back as it was before the batch is handed out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from attnmt.data.batching import Batch, BatchSampler, make_batch
from attnmt.data.corpus import TokenizedCorpus
from attnmt.device import autocast
from attnmt.models.interface import Seq2SeqModel
from attnmt.models.modes import evaluating
from attnmt.special import PAD_ID


@dataclass(frozen=True)
class ForcedBatch:
    """One teacher-forced batch: the padded pairs and what the model made of them."""

    batch: Batch  # on the model's device; batch.indices are positions in the corpus
    logits: Tensor  # (B, T, V) scores of every target position
    attention: Tensor | None  # (B, T, S) the default attention map; None without attention

    def nll_sum(self) -> float:
        """-Σ log p(y_t | y_<t, x) over the real target tokens of the batch (EOS included,
        padding not; no label smoothing), in fp32."""
        return F.cross_entropy(
            self.logits.float().flatten(0, 1),  # (B*T, V)
            self.batch.tgt_out.flatten(),  # (B*T,)
            ignore_index=PAD_ID,
            reduction="sum",
        ).item()

    def pair_log_probs(self) -> np.ndarray:
        """log p(y | x) = Σ_t log p(y_t | y_<t, x) of each pair of the batch, over its real
        target tokens (EOS included): (B,) float64, in batch order."""
        nll = F.cross_entropy(
            self.logits.float().transpose(1, 2),  # (B, V, T)
            self.batch.tgt_out,  # (B, T)
            ignore_index=PAD_ID,
            reduction="none",
        )  # (B, T), 0 on padding
        return -nll.double().sum(dim=1).cpu().numpy()  # (B,)

    def pair_attention(self) -> Iterator[tuple[int, np.ndarray]]:
        """(k, weights) for each pair k of the batch, padding cut off: weights is
        (T_k + 1, S_k), row t the attention while predicting target token t (the last row
        predicts EOS). Nothing for a model without attention."""
        if self.attention is None:
            return
        weights = self.attention.float().cpu().numpy()  # (B, T, S)
        src_lengths = self.batch.src_lengths.tolist()
        tgt_lengths = (self.batch.tgt_out != PAD_ID).sum(dim=1).tolist()  # T_k + 1 each
        rows = zip(self.batch.indices.tolist(), tgt_lengths, src_lengths, strict=True)
        for row, (k, tgt_len, src_len) in enumerate(rows):
            yield k, weights[row, :tgt_len, :src_len]  # (T_k + 1, S_k)


def forced_batches(
    model: Seq2SeqModel,
    corpus: TokenizedCorpus,
    batch_tokens: int,
    device: torch.device,
    dtype: torch.dtype | None = None,
    need_weights: bool = True,
) -> Iterator[ForcedBatch]:
    """Teacher-force `model` on every pair of `corpus`, in batches of at most
    `batch_tokens` padded tokens, under autocast to `dtype` (None: fp32). Without
    `need_weights` (the loss alone) the model may skip forming its attention weights."""
    sampler = BatchSampler(corpus.src_lengths, corpus.tgt_lengths, batch_tokens, False, 0)
    for indices in sampler:
        batch = make_batch(corpus, indices).to(device)
        with evaluating(model), autocast(device, dtype):
            logits, attention = model(batch.src, batch.src_lengths, batch.tgt_in, need_weights)
        yield ForcedBatch(batch, logits, attention)


def sequence_log_probs(
    model: Seq2SeqModel,
    corpus: TokenizedCorpus,
    batch_tokens: int,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> np.ndarray:
    """log p(y_k | x_k) of every pair k of `corpus`, summed over its T_k + 1 target tokens
    (EOS included): (N,) float64, in corpus order. Pairs are scored together in batches
    of at most `batch_tokens` padded tokens (one batch when they fit)."""
    scores = np.zeros(len(corpus))
    for forced in forced_batches(model, corpus, batch_tokens, device, dtype, need_weights=False):
        scores[forced.batch.indices.numpy()] = forced.pair_log_probs()
    return scores
