"""Evaluation: perplexity by teacher forcing, and BLEU / chrF of decoded text (sacrebleu).

BLEU and chrF are computed by sacrebleu on detokenised, cased text against the raw
reference lines, so the numbers are comparable with published ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import sacrebleu
import torch
import torch.nn.functional as F

from attnmt.data.batching import BatchSampler, make_batch
from attnmt.data.corpus import TokenizedCorpus
from attnmt.device import autocast
from attnmt.models.interface import Seq2SeqModel
from attnmt.special import PAD_ID


def corpus_metrics(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (sacrebleu defaults: 13a tokenisation, cased)."""
    if not hypotheses:
        return {"bleu": 0.0, "chrf": 0.0}
    refs = [list(references)]
    return {
        "bleu": sacrebleu.corpus_bleu(list(hypotheses), refs).score,
        "chrf": sacrebleu.corpus_chrf(list(hypotheses), refs).score,
    }


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Share of outputs identical to their reference (after stripping outer spaces)."""
    if not hypotheses:
        return 0.0
    same = sum(h.strip() == r.strip() for h, r in zip(hypotheses, references, strict=True))
    return same / len(hypotheses)


@dataclass
class LossResult:
    nll: float  # mean negative log-likelihood per target token (nats)
    tokens: int

    @property
    def ppl(self) -> float:
        return math.exp(min(self.nll, 50.0))


@torch.inference_mode()
def corpus_loss(
    model: Seq2SeqModel,
    corpus: TokenizedCorpus,
    batch_tokens: int,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> LossResult:
    """Teacher-forced NLL per target token (no label smoothing) over a whole corpus."""
    model.train(False)
    total, tokens = 0.0, 0
    sampler = BatchSampler(corpus.src_lengths, corpus.tgt_lengths, batch_tokens, False, 0)
    for indices in sampler:
        batch = make_batch(corpus, indices).to(device)
        with autocast(device, dtype):
            logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
        total += F.cross_entropy(
            logits.float().flatten(0, 1),
            batch.tgt_out.flatten(),
            ignore_index=PAD_ID,
            reduction="sum",
        ).item()
        tokens += batch.n_tgt_tokens
    return LossResult(total / max(tokens, 1), tokens)
