"""Attention merged from subword pieces to words, and matrices of weights."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from attnmt.special import SPECIAL_TOKENS


def as_matrix(weights: npt.ArrayLike) -> np.ndarray:
    """A 2-D float64 numpy copy of attention weights (numpy array, list or torch tensor)."""
    if hasattr(weights, "detach"):  # a torch tensor, possibly on a GPU or needing grad
        weights = weights.detach().cpu().numpy()
    matrix = np.array(weights, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"attention weights must be a 2-D matrix, got shape {matrix.shape}")
    return matrix


EOS_LABEL = SPECIAL_TOKENS[3]  # label of the extra attention row for the end of sentence


WORD_START = "\u2581"  # "▁": sentencepiece's mark for a piece that starts a word


Groups = Sequence[Sequence[int]]  # groups of piece positions, each group one word


def _check_partition(groups: Groups, size: int, side: str) -> None:
    """Raise unless `groups` use every position 0..size-1 exactly once."""
    used = sorted(int(i) for group in groups for i in group)
    if used != list(range(size)) or any(len(group) == 0 for group in groups):
        raise ValueError(
            f"{side} groups must use every position 0..{size - 1} exactly once, got {groups}"
        )


def merge_attention(weights: npt.ArrayLike, src_groups: Groups, tgt_groups: Groups) -> np.ndarray:
    """Merge an attention matrix over subword pieces into one over words.

    Row t of the matrix is a distribution over source positions: α_t = (α_t1 .. α_tS),
    Σ_j α_tj = 1. Merging must keep every row a distribution, which fixes the rule:

    - source pieces J of one word: the probability of attending to the word is the sum
      of the probabilities of its pieces, so columns are **summed**;
    - target pieces I of one word: each piece has its own distribution and the word gets
      their mean, so rows are **averaged**:

        α'_IJ = (1/|I|) Σ_{t∈I} Σ_{j∈J} α_tj,     Σ_J α'_IJ = (1/|I|) Σ_{t∈I} 1 = 1

    Args:
        weights: (T, S) attention weights, one row per target piece.
        src_groups: groups of source positions, each one word, together using 0..S-1
            exactly once (e.g. ``tokenize.merge_pieces(src_pieces)``).
        tgt_groups: the same for the T rows (include a group for the EOS row if any).

    Returns:
        (len(tgt_groups), len(src_groups)) merged weights.
    """
    matrix = as_matrix(weights)  # (T, S)
    _check_partition(src_groups, matrix.shape[1], "source")
    _check_partition(tgt_groups, matrix.shape[0], "target")
    # as two products, one numpy call each (a loop over the words is slow for n-best lists)
    summing = np.zeros((matrix.shape[1], len(src_groups)))  # (S, S'): 1 where j ∈ J
    for word, group in enumerate(src_groups):
        summing[list(group), word] = 1.0
    averaging = np.zeros((len(tgt_groups), matrix.shape[0]))  # (T', T): 1/|I| where t ∈ I
    for word, group in enumerate(tgt_groups):
        averaging[word, list(group)] = 1.0 / len(group)
    return averaging @ matrix @ summing  # (T', S')


def merge_stack(weights: np.ndarray, src_groups: Groups, tgt_groups: Groups) -> np.ndarray:
    """Merge a stack of maps (..., T, S), e.g. layers × heads, map by map with
    :func:`merge_attention`; returns (..., len(tgt_groups), len(src_groups))."""
    if weights.shape[-1] == 0:  # an empty source: nothing to merge
        return weights.astype(np.float64)
    flat = weights.reshape(-1, *weights.shape[-2:])  # (M, T, S)
    merged = [merge_attention(matrix, src_groups, tgt_groups) for matrix in flat]
    return np.stack(merged).reshape(*weights.shape[:-2], *merged[0].shape)  # (..., T', S')


def merge_labels(pieces: Sequence[str], groups: Groups) -> list[str]:
    """The word each group of pieces spells: the pieces joined, with "▁" removed.

    >>> merge_labels(["▁new", "s", "▁paper"], [[0, 1], [2]])
    ['news', 'paper']
    """
    labels = []
    for group in groups:
        joined = "".join(pieces[i] for i in group)
        labels.append(joined.replace(WORD_START, " ").strip() or joined)
    return labels


UNK_LABEL = SPECIAL_TOKENS[1]  # how a tokenizer shows the unknown piece ("▁<unk>" for words)


def unknown_units(pieces: Sequence[str], groups: Groups) -> list[int]:
    """Which units (each a group of piece positions) hold the unknown piece."""
    return [
        unit
        for unit, group in enumerate(groups)
        if any(pieces[i].lstrip(WORD_START) == UNK_LABEL for i in group)
    ]


def read_labels(
    pieces: Sequence[str], groups: Groups, surface: Sequence[str] | None
) -> tuple[list[str], list[int]]:
    """(labels, unknown): the label of each unit as :func:`merge_labels` makes it, except
    that a unit with the unknown piece shows what was written there (`surface`: the text
    of each piece, :meth:`attnmt.data.tokenize.Tokenizer.surfaces`; None: not known, the
    label stays "<unk>"), and the positions of those units.

    >>> read_labels(["▁hi", "▁", "<unk>", "s"], [[0], [1, 2, 3]], ["hi", " ", "ö", "s"])
    (['hi', 'ös'], [1])
    """
    labels = merge_labels(pieces, groups)
    unknown = unknown_units(pieces, groups)
    if surface is not None and len(surface) == len(pieces):
        for unit in unknown:
            labels[unit] = "".join(surface[i] for i in groups[unit]).strip() or labels[unit]
    return labels, unknown


def word_attention(
    src_pieces: Sequence[str],
    tgt_pieces: Sequence[str],
    weights: npt.ArrayLike,
    group: Callable[[Sequence[str]], Groups],
) -> tuple[list[str], list[str], np.ndarray]:
    """Turn a piece-level alignment into a word-level one, ready for `attention_figure`.

    Args:
        src_pieces: the S source pieces.
        tgt_pieces: the target pieces, without EOS.
        weights: (T, S) weights, where T is len(tgt_pieces) or len(tgt_pieces) + 1 (the
            extra last row is the EOS step; it stays a row of its own, labelled "</s>").
        group: splits pieces into words, e.g. ``attnmt.data.tokenize.merge_pieces``.

    Returns:
        Source words, target words (with "</s>" if there was an EOS row) and the merged
        weights (see :func:`merge_attention`).
    """
    matrix = as_matrix(weights)
    src_groups, tgt_groups = group(src_pieces), list(group(tgt_pieces))
    tgt_words = merge_labels(tgt_pieces, tgt_groups)
    if matrix.shape[0] == len(tgt_pieces) + 1:
        tgt_groups.append([len(tgt_pieces)])
        tgt_words.append(EOS_LABEL)
    merged = merge_attention(matrix, src_groups, tgt_groups)
    return merge_labels(src_pieces, src_groups), tgt_words, merged
