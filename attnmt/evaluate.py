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

from attnmt.config import DecodeConfig
from attnmt.data import BatchSampler, TokenizedCorpus, make_batch
from attnmt.device import autocast
from attnmt.model import Seq2Seq
from attnmt.search import Hypothesis, decode
from attnmt.special import PAD_ID
from attnmt.tokenize import Tokenizer


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
    model: Seq2Seq,
    corpus: TokenizedCorpus,
    batch_tokens: int,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> LossResult:
    """Teacher-forced NLL per target token (no label smoothing) over a whole corpus."""
    model.eval()
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


@torch.inference_mode()
def translate_corpus(
    model: Seq2Seq,
    corpus: TokenizedCorpus,
    decode_config: DecodeConfig,
    device: torch.device,
    dtype: torch.dtype | None = None,
    limit: int | None = None,
) -> list[list[Hypothesis]]:
    """Decode the sources of `corpus` (the first `limit`), results in corpus order."""
    model.eval()
    count = len(corpus) if limit is None else min(limit, len(corpus))
    lengths = corpus.src_lengths[:count]
    sampler = BatchSampler(lengths, lengths, decode_config.batch_tokens, False, 0)
    results: list[list[Hypothesis]] = [[] for _ in range(count)]
    for indices in sampler:
        batch = make_batch(corpus, indices).to(device)
        with autocast(device, dtype):
            hyps = decode(model, batch.src, batch.src_lengths, decode_config)
        for index, nbest in zip(indices, hyps, strict=True):
            results[index] = nbest
    return results


def detokenize(results: Sequence[Sequence[Hypothesis]], tokenizer: Tokenizer) -> list[str]:
    """The best hypothesis of each input as text."""
    return [tokenizer.decode(nbest[0].tokens) if nbest else "" for nbest in results]
