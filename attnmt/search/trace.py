"""The tree of one beam search: every candidate it weighed at every step, and its fate.

Beam search (:func:`attnmt.search.beam.beam_search`) extends each of a sentence's K live
hypotheses by one token and ranks the 2K best extensions. Given a :class:`BeamTrace`,
it records each of them here:

    live     among the K best that do not end: kept in the beam, extended next step
    ended    EOS among the K best: a finished hypothesis, ranked by s(Y, X)
    pruned   the rest: dropped from the search

What google/seq2seq's DumpBeams hook wrote and Seq2Seq-Vis draws as a tree; here the
pruned candidates are kept too, so a picture shows what the search gave up. Search
records nothing (and computes nothing for it) when no trace is given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from attnmt.search.ranking import Hypothesis

Fate = Literal["live", "ended", "pruned"]


@dataclass(frozen=True)
class Candidate:
    """One extension that search ranked: a node of the beam search tree."""

    step: int  # 1 for the first output token
    parent: int | None  # the live node (index in its sentence's list) it extends; None: <s>
    token: int  # the new token (EOS for an ended candidate)
    score: float  # log P(y_1 .. y_step | x), the new token included
    fate: Fate
    rank_score: float | None  # ended: s(Y, X) = score / lp(Y) + cp(X; Y); else None


class BeamTrace:
    """The candidates of every sentence of a beam search, by the sentence's index in the
    batch: ``trace.candidates[b]`` in the order search met them (step by step, best first
    within a step), and ``trace.won[b]`` the ended node of the hypothesis search ranked
    first."""

    def __init__(self) -> None:
        self.candidates: dict[int, list[Candidate]] = {}
        self.won: dict[int, int] = {}
        self._beams: dict[int, list[int | None]] = {}  # sentence -> node of each live row
        self._step = 0

    def record(
        self,
        sentences: Tensor,
        origin: Tensor,
        tokens: Tensor,
        scores: Tensor,
        ending: Tensor,
        live: Tensor,
        ranks: Tensor,
    ) -> None:
        """One step of search over N sentences of K rows each.

        sentences (N,) the batch index of each; origin, tokens, scores and ending (N, 2K)
        the candidates (origin: the row in N*K each extends), best first; live (N, K) the
        columns kept, in the order of the next step's rows; ranks (F,) the rank scores of
        the `ending` candidates, row-major."""
        self._step += 1
        beam = live.size(1)
        rank_of = iter(ranks.tolist())
        columns = zip(
            sentences.tolist(),
            (origin % beam).tolist(),
            tokens.tolist(),
            scores.tolist(),
            ending.tolist(),
            live.tolist(),
            strict=True,
        )
        for b, slots, words, totals, ends, kept in columns:
            nodes = self.candidates.setdefault(b, [])
            parents = self._beams.get(b)
            slot_of = {column: slot for slot, column in enumerate(kept)}
            beams: list[int | None] = [None] * beam
            for column, (slot, word, total, ended) in enumerate(
                zip(slots, words, totals, ends, strict=True)
            ):
                rank = next(rank_of) if ended else None
                if not math.isfinite(total):  # a dead row's extension, or a forbidden token
                    continue
                fate: Fate = "ended" if ended else "live" if column in slot_of else "pruned"
                parent = parents[slot] if parents is not None else None
                if fate == "live":
                    beams[slot_of[column]] = len(nodes)
                nodes.append(Candidate(self._step, parent, word, total, fate, rank))
            self._beams[b] = beams

    def mark_won(self, results: Sequence[Sequence[Hypothesis]]) -> None:
        """Note the node of each sentence's first hypothesis in `results` (best first, in
        batch order): what the search returned."""
        for sentence, hypotheses in enumerate(results):
            node = self.find(sentence, hypotheses[0].tokens) if hypotheses else None
            if node is not None:
                self.won[sentence] = node

    def path(self, sentence: int, node: int) -> list[int]:
        """The nodes from the first step to `node` (included) of a sentence's tree."""
        nodes = self.candidates[sentence]
        chain: list[int] = []
        current: int | None = node
        while current is not None:
            chain.append(current)
            current = nodes[current].parent
        return chain[::-1]

    def find(self, sentence: int, tokens: list[int]) -> int | None:
        """The ended node whose path outputs `tokens` and then EOS (a hypothesis that
        search returned), or None."""
        nodes = self.candidates.get(sentence, [])
        for index, node in enumerate(nodes):
            if node.fate == "ended" and node.step == len(tokens) + 1:
                words = [nodes[i].token for i in self.path(sentence, index)]
                if words[:-1] == tokens:
                    return index
        return None
