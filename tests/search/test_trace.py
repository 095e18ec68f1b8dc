"""The beam search trace: off changes nothing, on records the search that ran.

Its tree is checked against the model itself: every node's score is the teacher-forced
log-probability of its path, each step's candidates are the 2K best one-token extensions
of the live nodes before it, and the hypotheses returned are its ended nodes."""

from __future__ import annotations

import pytest
import torch
from conftest import settings
from test_search import SRC_LENGTHS, batch, make_model

from attnmt.search.beam import beam_search
from attnmt.search.trace import BeamTrace
from attnmt.special import BOS_ID, EOS_ID, PAD_ID

SETTINGS = {
    "plain": settings(beam=3, n_best=2, max_len=8, alpha=0.6),
    "coverage": settings(beam=4, n_best=3, max_len=8, alpha=1.0, beta=0.4, no_repeat_ngram=2),
}
MAX_LEN = 8


@pytest.mark.parametrize("name", ["none", "bahdanau", "luong-lstm"])
@pytest.mark.parametrize("which", list(SETTINGS))
def test_tracing_changes_nothing(name: str, which: str) -> None:
    model = make_model(name)
    src, src_lengths = batch()
    plain = beam_search(model, src, src_lengths, SETTINGS[which])
    traced = beam_search(model, src, src_lengths, SETTINGS[which], trace=BeamTrace())
    for ours, theirs in zip(plain, traced, strict=True):  # exactly the same hypotheses
        assert [(h.tokens, h.score, h.rank_score) for h in ours] == [
            (h.tokens, h.score, h.rank_score) for h in theirs
        ]
        for a, b in zip(ours, theirs, strict=True):
            assert (a.attention is None) == (b.attention is None)
            assert a.attention is None or torch.equal(a.attention, b.attention)


def next_log_probs(model, src, src_lengths, b: int, prefix: list[int]) -> torch.Tensor:
    """log p(· | prefix, src_b) by teacher forcing: (V,)."""
    s_len = int(src_lengths[b])
    with torch.no_grad():
        logits, _ = model(
            src[b : b + 1, :s_len], src_lengths[b : b + 1], torch.tensor([[BOS_ID, *prefix]])
        )
    return logits[0, -1].log_softmax(-1)


@pytest.mark.parametrize("name", ["bahdanau", "luong-lstm"])
def test_the_tree_is_the_search_that_ran(name: str) -> None:
    model = make_model(name)
    src, src_lengths = batch()
    options = SETTINGS["plain"]
    beam = options.beam
    trace = BeamTrace()
    results = beam_search(model, src, src_lengths, options, trace=trace)
    assert sorted(trace.candidates) == list(range(len(SRC_LENGTHS)))
    for b, hypotheses in enumerate(results):
        nodes = trace.candidates[b]
        words = [[nodes[i].token for i in trace.path(b, n)] for n in range(len(nodes))]
        steps = sorted({node.step for node in nodes})
        assert {node.fate for node in nodes} == {"live", "ended", "pruned"}
        assert steps == list(range(1, len(steps) + 1))
        for step in steps:
            at = [n for n, node in enumerate(nodes) if node.step == step]
            scores = [nodes[n].score for n in at]
            assert scores == sorted(scores, reverse=True)
            assert sum(nodes[n].fate == "live" for n in at) <= beam
            assert all(nodes[n].fate != "ended" or at.index(n) < beam for n in at)
            parents = {nodes[n].parent for n in at}
            if step == 1:
                assert parents == {None}
                prefixes = {None: []}
            else:
                assert all(p is not None and nodes[p].fate == "live" for p in parents)
                prefixes = {
                    n: words[n]
                    for n, node in enumerate(nodes)
                    if node.step == step - 1
                    if node.fate == "live"
                }
            if step > MAX_LEN:  # only EOS is allowed after MAX_LEN tokens
                continue
            # The 2K best extensions of the live nodes before, PAD and BOS forbidden.
            extensions = []
            for parent, prefix in prefixes.items():
                base = nodes[parent].score if parent is not None else 0.0
                log_probs = next_log_probs(model, src, src_lengths, b, prefix)
                for token, log_prob in enumerate(log_probs.tolist()):
                    if token not in (PAD_ID, BOS_ID):
                        extensions.append((base + log_prob, parent, token))
            extensions.sort(key=lambda extension: extension[0], reverse=True)
            best = extensions[: 2 * beam]
            assert [(nodes[n].parent, nodes[n].token) for n in at] == [(p, t) for _, p, t in best]
            for n, (score, _, _) in zip(at, best, strict=True):
                assert nodes[n].score == pytest.approx(score, abs=1e-4)
        for node, path in zip(nodes, words, strict=True):
            assert (node.fate == "ended") == (path[-1] == EOS_ID and node.rank_score is not None)
        for hypothesis in hypotheses:
            found = trace.find(b, hypothesis.tokens)
            assert found is not None
            assert nodes[found].score == pytest.approx(hypothesis.score, abs=1e-5)
            assert nodes[found].rank_score == pytest.approx(hypothesis.rank_score, abs=1e-5)
        assert trace.find(b, [EOS_ID] * (MAX_LEN + 1)) is None
        assert trace.won[b] == trace.find(b, hypotheses[0].tokens)
