"""Evaluation: perplexity by teacher forcing (:mod:`attnmt.search.forced`), and BLEU /
chrF of decoded text (sacrebleu).

BLEU and chrF are computed by sacrebleu on detokenised, cased text against the raw
reference lines, so the numbers are comparable with published ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import sacrebleu
import torch

from attnmt.data.corpus import TokenizedCorpus
from attnmt.models.interface import Seq2SeqModel
from attnmt.search.forced import forced_batches


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
    """The teacher-forced loss of a corpus."""

    nll: float  # mean negative log-likelihood per target token (nats)
    tokens: int  # target tokens scored, EOS included

    @property
    def ppl(self) -> float:
        """Perplexity exp(nll), capped at exp(50) so an untrained model does not overflow."""
        return math.exp(min(self.nll, 50.0))


def word_perplexity(loss: LossResult, references: Sequence[str]) -> float:
    """Perplexity per word, which compares models whatever their tokenizers:

        ppl_word = exp( -Σ_k log p(y_k | x_k) / Σ_k (W_k + 1) )

    the total teacher-forced NLL of the references (``loss``, summed over their tokens and
    EOS) over the whitespace-separated words W_k of each detokenised reference, plus one
    per reference for its end. Capped at exp(50), as :attr:`LossResult.ppl` is."""
    words = sum(len(reference.split()) + 1 for reference in references)
    return math.exp(min(loss.nll * loss.tokens / max(words, 1), 50.0))


def corpus_loss(
    model: Seq2SeqModel,
    corpus: TokenizedCorpus,
    batch_tokens: int,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> LossResult:
    """Teacher-forced NLL per target token (no label smoothing) over a whole corpus,

        nll = -Σ_k Σ_t log p(y_kt | y_k,<t, x_k) / Σ_k (T_k + 1)

    where pair k has T_k target tokens and EOS is predicted (and counted) too."""
    total, tokens = 0.0, 0
    for forced in forced_batches(model, corpus, batch_tokens, device, dtype, need_weights=False):
        total += forced.nll_sum()
        tokens += forced.batch.n_tgt_tokens
    return LossResult(total / max(tokens, 1), tokens)
