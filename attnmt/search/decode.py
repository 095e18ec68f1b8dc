"""Decoding as the options say: sampling, greedy or beam search over one batch."""

from __future__ import annotations

import torch
from torch import Tensor

from attnmt.config import DecodeOptions
from attnmt.models.interface import Seq2SeqModel
from attnmt.search.beam import beam_search
from attnmt.search.ranking import Hypothesis
from attnmt.search.sampling import greedy, sample


def decode(
    model: Seq2SeqModel,
    src: Tensor,
    src_lengths: Tensor,
    options: DecodeOptions,
    generator: torch.Generator | None = None,
) -> list[list[Hypothesis]]:
    """Sample, search greedily (beam 1) or with a beam, as `options` say, over the batch
    src (B, S) as it is given: cutting a corpus into batches by tokens is the caller's
    (:func:`length_batches` with ``options.sentence_budget()``). One list of
    ``options.n_best`` hypotheses per sentence, best first, in input order."""
    if options.sample:
        return sample(model, src, src_lengths, options, generator)
    if options.beam == 1 and options.n_best == 1:
        return greedy(model, src, src_lengths, options)
    return beam_search(model, src, src_lengths, options)


def length_batches(src_lengths: list[int], batch_tokens: int) -> list[list[int]]:
    """Group sentence indices so that each group's padded size (sentences × longest
    length) stays within batch_tokens: sentences of similar length go together (groups
    are filled longest first), in input order inside a group. A sentence longer than
    the budget goes alone."""
    order = sorted(range(len(src_lengths)), key=lambda i: -src_lengths[i])
    groups: list[list[int]] = []
    for i in order:
        if groups and (len(groups[-1]) + 1) * src_lengths[groups[-1][0]] <= batch_tokens:
            groups[-1].append(i)
        else:
            groups.append([i])
    return [sorted(group) for group in groups]  # input order within a group
