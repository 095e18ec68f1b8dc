"""Decoding as the config says: sampling, greedy or beam search over length-sorted groups."""

from __future__ import annotations

import torch
from torch import Tensor

from attnmt.config import DecodeConfig
from attnmt.models.interface import Seq2SeqModel
from attnmt.search.beam import beam_search
from attnmt.search.ranking import Hypothesis
from attnmt.search.sampling import greedy, sample


def decode(
    model: Seq2SeqModel,
    src: Tensor,
    src_lengths: Tensor,
    config: DecodeConfig,
    generator: torch.Generator | None = None,
) -> list[list[Hypothesis]]:
    """Sample, search greedily (beam 1) or with a beam, as `config` says.

    The batch is cut into groups of at most config.batch_tokens padded source tokens
    (longest sentences first, see :func:`length_batches`); results come back in input
    order, one list of config.n_best hypotheses per sentence, best first.
    """
    results: list[list[Hypothesis]] = [[] for _ in range(src.size(0))]
    for group in length_batches(src_lengths.tolist(), config.batch_tokens):
        lengths = src_lengths[torch.tensor(group, device=src_lengths.device)]
        longest = int(lengths.max())
        part_src = src[torch.tensor(group, device=src.device), :longest]
        part = _decode_group(model, part_src, lengths, config, generator)
        for b, hypotheses in zip(group, part, strict=True):
            results[b] = hypotheses
    return results


def _decode_group(
    model: Seq2SeqModel,
    src: Tensor,
    src_lengths: Tensor,
    config: DecodeConfig,
    generator: torch.Generator | None,
) -> list[list[Hypothesis]]:
    if config.sample:
        return sample(model, src, src_lengths, config, generator)
    if config.beam == 1 and config.n_best == 1:
        return greedy(model, src, src_lengths, config)
    return beam_search(model, src, src_lengths, config)


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
