"""MMI-bidi reranking: the arithmetic on a hand-made example, the backward scores
against each pair's own teacher-forced log-probability, one batch per turn, and the
chatbot's replies chosen by the combined score, never with the unknown piece."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import SENTENCES, make_run

from attnmt.config import RerankOptions
from attnmt.data.chitchat import SEPARATOR
from attnmt.errors import UserError
from attnmt.special import BOS_ID, EOS_ID, UNK_ID
from attnmt.translate.chatbot import Chatbot
from attnmt.translate.rerank import Reranker, distinct_candidates, mmi_score
from attnmt.translate.schema import Translation
from attnmt.translate.translator import Translator


def candidate(text: str, forward: float, rank: float | None = None) -> Translation:
    return Translation(text, text.split(), [], forward, forward if rank is None else rank, None)


class TableReranker(Reranker):
    """A backward model given as a table of log p(message | reply), counting its calls."""

    def __init__(self, table: dict[tuple[str, str], float]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def backward_log_probs(
        self, replies: Sequence[str], messages: Sequence[str], turns: Sequence[int] = ()
    ) -> np.ndarray:
        self.calls.append(list(replies))
        return np.array([self.table[(m, r)] for r, m in zip(replies, messages, strict=True)])


def test_mmi_score_by_hand() -> None:
    options = RerankOptions(mmi_weight=0.25, length_bonus=0.5)
    # (1 - 0.25)(-4) + 0.25 (-8) + 0.5 * 3 = -3 - 2 + 1.5
    assert mmi_score(-4.0, -8.0, 3, options) == pytest.approx(-3.5)
    # λ = 0: the forward model alone, whatever the backward model says (even -inf)
    assert mmi_score(-4.0, float("-inf"), 2, RerankOptions(mmi_weight=0.0)) == -4.0
    assert mmi_score(-4.0, -8.0, 2, RerankOptions(mmi_weight=1.0)) == -8.0


def test_the_reranker_orders_a_hand_made_example() -> None:
    """A generic reply is likely under the forward model and explains the message
    badly; the backward term moves the specific replies up."""
    message = "what do you study?"
    found = [  # an n-best list as search returns it, best rank first
        candidate("i don't know", -2.0),
        candidate("i don't know", -2.0),  # a duplicate sample
        candidate("", -1.0),  # an empty reply: dropped while others are left
        candidate("physics", -4.5),
        candidate("i study physics", -5.0),
    ]
    table = {
        (message, "i don't know"): -12.0,
        (message, "physics"): -6.0,
        (message, "i study physics"): -3.0,
    }
    reranker = TableReranker(table)

    def ranked(options: RerankOptions) -> list[tuple[str, float]]:
        (candidates,) = reranker.rerank([message], [found], options)
        for c in candidates:  # every score is the formula's, from the parts it shows
            assert c.backward == table[(message, c.text)]
            assert c.score == pytest.approx(mmi_score(c.forward, c.backward, c.words, options))
        return [(c.text, round(c.score, 6)) for c in candidates]

    # λ = 0.5: idk 0.5(-2) + 0.5(-12) = -7; physics -5.25; i study physics -4
    assert ranked(RerankOptions(mmi_weight=0.5)) == [
        ("i study physics", -4.0),
        ("physics", -5.25),
        ("i don't know", -7.0),
    ]
    # the duplicate and the empty reply were merged away before scoring, one call
    assert reranker.calls[-1] == ["i don't know", "physics", "i study physics"]
    # λ = 0: search's order by log p(T | S)
    assert [t for t, _ in ranked(RerankOptions(mmi_weight=0.0))] == [
        "i don't know",
        "physics",
        "i study physics",
    ]
    # λ = 0.2, γ = 1 per word: idk 0.8(-2) + 0.2(-12) + 3 = -1.0;
    # physics 0.8(-4.5) + 0.2(-6) + 1 = -3.8; i study physics 0.8(-5) + 0.2(-3) + 3 = -1.6
    assert ranked(RerankOptions(mmi_weight=0.2, length_bonus=1.0)) == [
        ("i don't know", -1.0),
        ("i study physics", -1.6),
        ("physics", -3.8),
    ]


def test_distinct_candidates_keep_the_first_of_each_text() -> None:
    first, second = candidate("a b", -1.0), candidate("a b", -3.0)
    assert distinct_candidates([first, candidate(" ", -0.5), second]) == [first]
    only_empty = candidate("", -1.0)
    assert distinct_candidates([only_empty, candidate("", -2.0)]) == [only_empty]


# --------------------------------------------------------------------------- real models


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    forward = make_run(root / "forward", seed=0, task="dialogue")
    return forward, make_run(root / "backward", seed=1, task="dialogue_backward")


def dialogue(run_dir: Path, unk_bias: float = 0.0) -> Translator:
    translator = Translator.load(run_dir, device="cpu")
    if unk_bias:
        with torch.no_grad():
            translator.model.generator.bias[UNK_ID] += unk_bias  # type: ignore[union-attr]
    return translator


def naive_log_prob(translator: Translator, source: str, target: str) -> float:
    """log p(target + EOS | source), one pair alone, from the logits of `forward`."""
    src = torch.tensor([translator.src_tok.encode(source)])  # (1, S)
    tgt = translator.tgt_tok.encode(target)
    tgt_in = torch.tensor([[BOS_ID, *tgt]])  # (1, T + 1)
    with torch.no_grad():
        logits, _ = translator.model(src, torch.tensor([src.size(1)]), tgt_in)
    log_probs = F.log_softmax(logits[0].double(), dim=-1)  # (T + 1, V)
    return float(log_probs.gather(1, torch.tensor([*tgt, EOS_ID])[:, None]).sum())


def test_backward_scores_are_each_pairs_own_and_a_turn_is_one_batch(
    runs: tuple[Path, Path],
) -> None:
    backward = dialogue(runs[1])
    reranker = Reranker(backward)
    replies, messages = SENTENCES[:6], [SENTENCES[7]] * 3 + [SENTENCES[8]] * 3
    calls = []
    hook = backward.model.register_forward_pre_hook(lambda *_: calls.append(1))  # type: ignore[union-attr]
    try:
        reranker.batch_tokens = 8  # a small budget: one pair per batch ...
        scores = reranker.backward_log_probs(replies, messages)
        assert len(calls) == len(replies)
        calls.clear()  # ... unless the rows of a turn must stay together
        together = reranker.backward_log_probs(replies, messages, [0] * 6)
        np.testing.assert_allclose(together, scores, rtol=1e-5)  # padding changes nothing
        assert len(calls) == 1
    finally:
        hook.remove()
    expected = [naive_log_prob(backward, r, m) for r, m in zip(replies, messages, strict=True)]
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_the_chatbot_replies_with_the_best_candidate_by_mmi(runs: tuple[Path, Path]) -> None:
    forward, backward = dialogue(runs[0]), dialogue(runs[1])
    options = forward.options(sample=True, temperature=2.0, seed=3, max_len=8)
    rerank = RerankOptions(mmi_weight=0.7, length_bonus=0.3, candidates=6)
    bot = Chatbot(forward, options, context=1, reranker=Reranker(backward), rerank=rerank)
    bot.reply(SENTENCES[2])
    text = bot.reply(SENTENCES[0])  # read after the previous reply: "reply ||| message"
    answer = bot.answer
    assert answer is not None and answer.reranked and bot.last is answer.translation
    assert answer.source.count(SEPARATOR) == 1 and answer.source.endswith(SENTENCES[0])
    assert text == answer.text == answer.candidates[0].text
    texts = [c.text for c in answer.candidates]
    assert 1 < len(texts) <= 6 and len(set(texts)) == len(texts)
    scores = [c.score for c in answer.candidates]
    assert scores == sorted(scores, reverse=True)
    for c in answer.candidates:  # each part is the model's own; the backward model
        # predicts the message alone, not the context before it
        backward_score = naive_log_prob(backward, c.text, SENTENCES[0])
        assert c.backward == pytest.approx(backward_score, abs=1e-4)
        assert c.forward == pytest.approx(naive_log_prob(forward, answer.source, c.text), abs=1e-4)
        assert c.score == pytest.approx(mmi_score(c.forward, c.backward, c.words, rerank))
        assert c.to_dict() == {
            "text": c.text,
            "forward": c.forward,
            "backward": c.backward,
            "score": c.score,
        }


def test_replies_never_hold_the_unknown_piece(runs: tuple[Path, Path]) -> None:
    """The model now favours <unk>: plain translation outputs it, replies never do, with
    or without reranking and whatever the options say."""
    forward = dialogue(runs[0], unk_bias=4.0)
    backward = Reranker(dialogue(runs[1]))
    unk = forward.tgt_tok.to_pieces([UNK_ID])[0]
    options = forward.options(sample=True, seed=0, max_len=8, n_best=4, allow_unk=True)
    plain = forward.translate(SENTENCES[:4], options)
    assert any(unk in h.tokens for t in plain for h in t.hypotheses)
    for reranker in (None, backward):
        bot = Chatbot(forward, options, reranker=reranker, rerank=RerankOptions(candidates=4))
        for sentence in SENTENCES[:4]:
            bot.reply(sentence)
            assert bot.answer is not None
            assert all(unk not in c.translation.tokens for c in bot.answer.candidates)


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda f, b: Chatbot.load(b, device="cpu"), "backward dialogue model .* cannot chat"),
        (lambda f, b: Reranker.load(f, device="cpu"), "not a backward dialogue model"),
        (lambda f, b: Chatbot.load(f, device="cpu", mmi_weight=0.3), "need a reranker"),
        (
            lambda f, b: Chatbot.load(f, device="cpu", reranker=b, beam=4, sample=False),
            "reranking 10 candidates needs a beam of at least 10",
        ),
        (lambda f, b: Chatbot.load(f, device="cpu", reranker=b, mmi_weight=2), "mmi_weight"),
    ],
)
def test_mistakes_are_one_line(runs: tuple[Path, Path], call, fragment: str) -> None:
    with pytest.raises(UserError, match=fragment) as caught:
        call(*runs)
    assert "\n" not in str(caught.value)
