"""Hits@1 and MRR: the distractors come from other conversations with a fixed seed, ranks
count ties against the true reply, each score is the model's own teacher-forced
log-probability, and `attnmt evaluate` reports them (and the MMI ranking) for dialogue
runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import make_run

from attnmt.cli.main import main
from attnmt.config import RerankOptions
from attnmt.data.synthetic import generate
from attnmt.errors import UserError
from attnmt.evaluate.dialogue import words
from attnmt.evaluate.evaluation import load_split
from attnmt.evaluate.relevance import Relevance, draw_candidates, rank_of_true, relevance
from attnmt.io.run import Run
from attnmt.special import BOS_ID, EOS_ID
from attnmt.translate.rerank import Reranker, mmi_score
from attnmt.translate.translator import Translator

PAIRS = generate(30, seed=4)
CONVERSATIONS = [f"c{k // 3}" for k in range(len(PAIRS))]  # three pairs a conversation


def test_distractors_come_from_other_conversations_and_follow_the_seed() -> None:
    replies = [pair.target for pair in PAIRS]
    replies[4] = replies[0].upper()  # the same words as reply 0, another conversation
    replies[7] = " "  # an empty reply: never ranked, never a distractor
    found = draw_candidates(CONVERSATIONS, replies, seed=3)
    assert found.shape == (len(PAIRS) - 1, 20)
    assert 7 not in found
    for row in found:
        truth, distractors = row[0], row[1:]
        assert len(set(distractors)) == 19
        assert all(CONVERSATIONS[d] != CONVERSATIONS[truth] for d in distractors)
        assert all(words(replies[d]) != words(replies[truth]) for d in distractors)
    assert 4 not in found[0, 1:]
    assert np.array_equal(draw_candidates(CONVERSATIONS, replies, seed=3), found)
    assert not np.array_equal(draw_candidates(CONVERSATIONS, replies, seed=4), found)
    some = draw_candidates(CONVERSATIONS, replies, seed=3, pairs=5)
    assert some.shape == (5, 20) and list(some[:, 0]) == sorted(some[:, 0])


def test_too_few_distractors_or_misaligned_ids_are_one_line() -> None:
    replies = [pair.target for pair in PAIRS[:12]]
    with pytest.raises(UserError, match="hits@1 needs 19") as caught:
        draw_candidates(CONVERSATIONS[:12], replies)
    assert "\n" not in str(caught.value)
    with pytest.raises(UserError, match="line-aligned"):
        draw_candidates(CONVERSATIONS[:5], replies)


def test_ranks_count_ties_against_the_true_reply() -> None:
    scores = np.array([[5.0, 1.0, 2.0], [1.0, 5.0, 0.0], [3.0, 3.0, 0.0], [0.0, 1.0, 2.0]])
    assert rank_of_true(scores).tolist() == [1, 2, 2, 3]


def test_hits_and_mrr_by_hand() -> None:
    forward = np.array([[-4.0, -6.0, -2.0], [-9.0, -3.0, -10.0]])
    tokens = np.array([[2, 6, 1], [9, 2, 2]])  # per token: [-2, -1, -2], [-1, -1.5, -5]
    backward = np.array([[-1.0, -8.0, -9.0], [-2.0, -9.0, -9.0]])
    found = Relevance(np.zeros((2, 3), dtype=int), forward, tokens, np.ones((2, 3)), backward)
    rerank = RerankOptions(mmi_weight=0.5)
    scores = found.scores(rerank)
    # sum: ranks 2 (-2 beats -4) and 2 (-3 beats -9)
    assert scores["hits_1"] == 0.0 and scores["mrr"] == pytest.approx(0.5)
    # mean: ranks 3 (-1 beats -2, and -2 ties it) and 1
    assert scores["hits_1_mean"] == 0.5 and scores["mrr_mean"] == pytest.approx(2 / 3)
    # mmi at λ 0.5: [-2.5, -7, -5.5] and [-5.5, -6, -9.5]: both true replies first
    assert scores["hits_1_mmi"] == 1.0 and scores["mrr_mmi"] == 1.0
    assert scores["ranked"] == 2
    assert "hits_1_mmi" not in found.scores()  # no λ, γ given


# --------------------------------------------------------------------------- real models


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dialogue")
    files = {
        "forward": make_run(root / "forward", seed=0, task="dialogue"),
        "backward": make_run(root / "backward", seed=2, task="dialogue_backward"),
        "src": root / "test.src",
        "ref": root / "test.tgt",
    }
    files["src"].write_text("".join(pair.source + "\n" for pair in PAIRS))
    files["ref"].write_text("".join(pair.target + "\n" for pair in PAIRS))
    (root / "test.ids").write_text("".join(conv + "\n" for conv in CONVERSATIONS))
    return files


def naive(translator: Translator, source: str, target: str) -> float:
    """log p(target + EOS | source), the pair alone."""
    src = torch.tensor([translator.src_tok.encode(source)])
    tgt = translator.tgt_tok.encode(target)
    with torch.no_grad():
        logits, _ = translator.model(
            src, torch.tensor([src.size(1)]), torch.tensor([[BOS_ID, *tgt]])
        )
    log_probs = F.log_softmax(logits[0].double(), dim=-1)  # (T + 1, V)
    return float(log_probs.gather(1, torch.tensor([*tgt, EOS_ID])[:, None]).sum())


def test_every_candidate_score_is_the_models_own(split: dict[str, Path]) -> None:
    from attnmt.config import SplitPaths

    run = Run.load(split["forward"], device="cpu")
    translator = Translator.from_run(run)
    reranker = Reranker.load(split["backward"], device="cpu")
    corpus, sources, references = load_split(
        run, SplitPaths(src=str(split["src"]), tgt=str(split["ref"]))
    )
    found = relevance(
        translator, corpus, sources, references, CONVERSATIONS, reranker=reranker, pairs=3
    )
    assert found.candidates.shape == (3, 20) and found.backward is not None
    for p, row in enumerate(found.candidates):
        i = int(row[0])
        for c in (0, 5, 19):
            j = int(row[c])
            assert found.forward[p, c] == pytest.approx(
                naive(translator, sources[i], references[j]), abs=1e-4
            )
            assert found.backward[p, c] == pytest.approx(
                naive(reranker.backward, references[j], sources[i]), abs=1e-4
            )
            assert found.tokens[p, c] == len(translator.tgt_tok.encode(references[j])) + 1
    rerank = RerankOptions(mmi_weight=0.3, length_bonus=0.2)
    combined = np.vectorize(lambda f, b, w: mmi_score(f, b, int(w), rerank))
    expected = rank_of_true(combined(found.forward, found.backward, found.words))
    assert np.array_equal(found.ranks("mmi", rerank), expected)


def test_evaluate_reports_relevance_and_reranked_replies(
    split: dict[str, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ["evaluate", "--model", str(split["forward"]), "--src", str(split["src"])]
    args += ["--ref", str(split["ref"]), "--beam", "1", "--no-sample"]
    assert main([*args, "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert plain["ranked"] == len(PAIRS) and 0 <= plain["hits_1"] <= plain["mrr"] <= 1
    assert {"word_ppl", "generic", "hits_1_mean", "mrr_mean"} <= set(plain)
    assert "hits_1_mmi" not in plain

    # λ = 0, γ = 0: the MMI ranking is the forward one; the replies are the best of
    # the 3 best of a beam of 3
    rerank = ["--rerank", str(split["backward"]), "--mmi-weight", "0", "--beam", "3"]
    output = tmp_path / "replies"
    assert main([*args, *rerank, "--n-best", "3", "--json", "--output", str(output)]) == 0
    reranked = json.loads(capsys.readouterr().out)
    assert reranked["hits_1_mmi"] == plain["hits_1"] and reranked["mrr_mmi"] == plain["mrr"]
    assert reranked["candidates"] == 3 and reranked["mmi_weight"] == 0
    assert len(output.read_text().splitlines()) == len(PAIRS)

    assert main([*args, "--rank-pairs", "4"]) == 0
    shown = capsys.readouterr().out
    assert "hits@1/20" in shown and "(4 pairs ranked)" in shown and "generic replies" in shown


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--mmi-weight", "0.3"], "need --rerank"),
        (["--rerank", "FORWARD"], "not a backward dialogue model"),
        (["--ids", "no/such/file"], "--ids: file not found"),
        (["--rerank", "BACKWARD", "--n-best", "4", "--beam", "2", "--no-sample"], "beam"),
    ],
)
def test_evaluate_mistakes_are_one_line(
    split: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str], fragment: str
) -> None:
    extra = [str(split["forward"]) if e == "FORWARD" else e for e in extra]
    extra = [str(split["backward"]) if e == "BACKWARD" else e for e in extra]
    args = ["evaluate", "--model", str(split["forward"]), "--src", str(split["src"])]
    assert main([*args, "--ref", str(split["ref"]), *extra]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]
