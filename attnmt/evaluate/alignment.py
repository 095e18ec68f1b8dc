"""Does attention align? Alignment error rate (AER) of attention against gold alignments.

Gold alignments hold sure links S and possible links P ⊇ S (see
:mod:`attnmt.data.alignment` for the Pharaoh files they come in). An aligner proposes
links A, and (Och & Ney 2003, eq. 2 to 4)

    precision = |A ∩ P| / |A|        recall = |A ∩ S| / |S|
    AER       = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|)

With sure links only (P = S), AER = 1 - F1. All three are summed over the corpus before
dividing, as Och & Ney do.

Attention is turned into links at word level (pieces merged by
:func:`attnmt.translate.words.word_attention`) with one of two rules:

- ``argmax``: each target word links to the source word it attends to most (exactly one
  link per target word, as in Luong et al. 2015, sec. 5.4, and Garg et al. 2019);
- ``threshold``: each target word links to every source word that gets at least
  `threshold` of its attention (none, one or several links per target word).

The attention is taken by forced decoding (:mod:`attnmt.search.forced`): the model
reads the *reference* translation (teacher forcing), so every test sentence is scored on
the words the gold alignment names, whatever the model itself would have output.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from attnmt.config import SplitPaths
from attnmt.data.alignment import GoldAlignment, Link, read_pharaoh
from attnmt.data.corpus import TokenizedCorpus
from attnmt.data.tokenize import Tokenizer, merge_pieces
from attnmt.errors import UserError
from attnmt.evaluate.evaluation import load_split
from attnmt.io.run import Run
from attnmt.models.interface import Seq2SeqModel
from attnmt.search.forced import forced_batches
from attnmt.translate.words import word_attention

RULES = ("argmax", "threshold")
THRESHOLD = 0.3  # the threshold rule's default: links take at least 30% of a row


def check_against(
    gold: Sequence[GoldAlignment], sources: Sequence[str], targets: Sequence[str], path: str
) -> None:
    """A one-line UserError unless `gold` has one line per pair and every link names a
    whitespace word of its source and target."""
    if len(gold) != len(sources):
        raise UserError(
            f"{path} has {len(gold)} lines but the test set has {len(sources)} sentence pairs"
        )
    rows = zip(gold, sources, targets, strict=True)
    for number, (alignment, source, target) in enumerate(rows, 1):
        src_words, tgt_words = len(source.split()), len(target.split())
        for i, j in sorted(alignment.possible):
            if i >= src_words or j >= tgt_words:
                raise UserError(
                    f"{path}:{number}: link {i}-{j} is out of range: the source has "
                    f"{src_words} words and the reference {tgt_words}"
                )


# --------------------------------------------------------------------------- the measure


@dataclass(frozen=True)
class AlignmentScores:
    """Corpus-level alignment quality (Och & Ney 2003)."""

    aer: float
    precision: float  # |A ∩ P| / |A|
    recall: float  # |A ∩ S| / |S|
    links: int  # |A|, the links the aligner proposed


def alignment_error(
    predicted: Sequence[Iterable[Link]], gold: Sequence[GoldAlignment]
) -> AlignmentScores:
    """AER, precision and recall of `predicted` against `gold`, counted over the corpus.

    An empty proposal against an empty gold alignment is perfect (AER 0).
    """
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted alignments for {len(gold)} gold ones")
    proposed = hit_sure = hit_possible = sure = 0
    for links, alignment in zip(predicted, gold, strict=True):
        a = set(links)
        proposed += len(a)
        sure += len(alignment.sure)
        hit_sure += len(a & alignment.sure)
        hit_possible += len(a & alignment.possible)
    total = proposed + sure
    return AlignmentScores(
        aer=1.0 - (hit_sure + hit_possible) / total if total else 0.0,
        precision=hit_possible / proposed if proposed else 1.0,
        recall=hit_sure / sure if sure else 1.0,
        links=proposed,
    )


def argmax_links(weights: npt.ArrayLike) -> set[Link]:
    """(T, S) word-level attention -> one link per target word, to its heaviest source
    word (the first on a tie)."""
    matrix = np.asarray(weights)  # (T, S)
    if matrix.size == 0:
        return set()
    return {(int(i), j) for j, i in enumerate(matrix.argmax(axis=1))}


def threshold_links(weights: npt.ArrayLike, threshold: float = THRESHOLD) -> set[Link]:
    """(T, S) word-level attention -> a link wherever a weight is at least `threshold`."""
    targets, sources = np.nonzero(np.asarray(weights) >= threshold)  # (L,), (L,)
    return {(int(i), int(j)) for j, i in zip(targets, sources, strict=True)}


def extract_links(weights: npt.ArrayLike, rule: str, threshold: float = THRESHOLD) -> set[Link]:
    """Links from (T, S) word-level attention by `rule` ("argmax" or "threshold")."""
    if rule == "argmax":
        return argmax_links(weights)
    if rule == "threshold":
        return threshold_links(weights, threshold)
    raise UserError(f"unknown alignment rule {rule!r}; choose one of: {', '.join(RULES)}")


# --------------------------------------------------------------------------- attention


def forced_attention(
    model: Seq2SeqModel,
    corpus: TokenizedCorpus,
    batch_tokens: int,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> list[np.ndarray] | None:
    """Teacher-forced attention of every pair of `corpus`, in corpus order: pair k gets
    (T_k + 1, S_k), row t being the attention while predicting target token t (the last
    row predicts EOS). None for a model without attention."""
    if not model.has_attention:
        return None
    result: list[np.ndarray | None] = [None] * len(corpus)
    for forced in forced_batches(model, corpus, batch_tokens, device, dtype):
        for k, weights in forced.pair_attention():
            result[k] = weights  # (T_k + 1, S_k)
    return [weights for weights in result if weights is not None]


def word_links(
    attention: Sequence[np.ndarray],
    corpus: TokenizedCorpus,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    rule: str = "argmax",
    threshold: float = THRESHOLD,
) -> list[set[Link]]:
    """Word-level links of every pair from its piece-level forced attention: pieces are
    merged into words (source columns summed, target rows averaged), the EOS row is
    dropped, then `rule` extracts the links."""
    links = []
    for k, weights in enumerate(attention):
        src_pieces = src_tok.to_pieces(corpus.src(k).tolist())
        tgt_pieces = tgt_tok.to_pieces(corpus.tgt(k).tolist())
        _, _, merged = word_attention(src_pieces, tgt_pieces, weights, merge_pieces)
        links.append(extract_links(merged[:-1], rule, threshold))  # (T_words, S_words)
    return links


def check_words(
    corpus: TokenizedCorpus,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    sources: Sequence[str],
    targets: Sequence[str],
) -> None:
    """A one-line UserError where the tokenizer's words are not the whitespace words the
    gold alignment counts (e.g. a sentence cut at data.max_len)."""
    for k, (source, target) in enumerate(zip(sources, targets, strict=True)):
        src_words = len(merge_pieces(src_tok.to_pieces(corpus.src(k).tolist())))
        tgt_words = len(merge_pieces(tgt_tok.to_pieces(corpus.tgt(k).tolist())))
        if (src_words, tgt_words) != (len(source.split()), len(target.split())):
            raise UserError(
                f"pair {k + 1}: the tokenizer gives {src_words} source and {tgt_words} target "
                f"words where the text has {len(source.split())} and {len(target.split())}; "
                "alignment indices count whitespace words"
            )


def evaluate_alignment(
    run: Run,
    split: SplitPaths,
    gold_path: str | Path,
    rule: str = "argmax",
    threshold: float = THRESHOLD,
) -> AlignmentScores | None:
    """AER of `run`'s attention on `split` against the Pharaoh file `gold_path` (one line
    per pair); None for a model without attention."""
    if rule not in RULES:
        raise UserError(f"unknown alignment rule {rule!r}; choose one of: {', '.join(RULES)}")
    gold = read_pharaoh(gold_path)
    corpus, sources, targets = load_split(run, split)
    check_against(gold, sources, targets, str(gold_path))
    return corpus_alignment(run, corpus, sources, targets, gold, rule, threshold)


def corpus_alignment(
    run: Run,
    corpus: TokenizedCorpus,
    sources: Sequence[str],
    targets: Sequence[str],
    gold: Sequence[GoldAlignment],
    rule: str = "argmax",
    threshold: float = THRESHOLD,
) -> AlignmentScores | None:
    """AER of `run`'s attention on `corpus` (tokenized from the lines `sources` and
    `targets`, whose words `gold` links, already checked with :func:`check_against`);
    None for a model without attention."""
    check_words(corpus, run.src_tok, run.tgt_tok, sources, targets)
    batch_tokens = run.config.train.batch_tokens
    attention = forced_attention(run.model, corpus, batch_tokens, run.device, run.dtype)
    if attention is None:
        return None
    links = word_links(attention, corpus, run.src_tok, run.tgt_tok, rule, threshold)
    return alignment_error(links, gold)
