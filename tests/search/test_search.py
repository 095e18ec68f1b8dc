"""Search properties: every returned score is the model's own, batching changes nothing,
the rules hold, and beam search is exact where it can be checked by enumeration."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from conftest import SEARCHES, random_batch, settings, tiny_config

from attnmt.config import DecodeOptions
from attnmt.models.build import build_model
from attnmt.models.ensemble import Ensemble
from attnmt.models.seq2seq import Seq2Seq
from attnmt.search.beam import beam_search, keep_best
from attnmt.search.decode import decode, length_batches
from attnmt.search.ranking import NEG_INF, Hypothesis, coverage_penalty, length_penalty
from attnmt.search.rules import length_bounds, repeated_ngrams
from attnmt.search.sampling import (
    NUCLEUS_CANDIDATES,
    _sampler,
    greedy,
    nucleus,
    sample,
    top_k_filter,
    top_p_filter,
)
from attnmt.special import BOS_ID, EOS_ID, PAD_ID, UNK_ID

SRC_VOCAB, TGT_VOCAB = 11, 13
SRC_LENGTHS = [5, 2, 6, 3]

# (decoder, score, window, feeding), config overrides: each decoder type, both Luong
# paths, a local window (zero coverage) and an LSTM (pair states to reorder).
VARIANTS = {
    "none": (("none", None, None, False), {}),
    "none-ctx": (("none", None, None, True), {}),
    "bahdanau": (("bahdanau", "concat", "global", True), {}),
    "luong-feed": (("luong", "general", "global", True), {}),
    "luong-fast-local": (("luong", "dot", "local-m", False), {}),
    "luong-lstm": (("luong", "multihead", "local-p", True), {"rnn": "lstm"}),
}
variants = pytest.mark.parametrize("name", list(VARIANTS))


def make_model(name: str, seed: int = 0, tgt_vocab: int = TGT_VOCAB, **kw: Any) -> Seq2Seq:
    """A tiny random model with large weights, so that its outputs depend on the source
    and the prefix, and hypotheses differ in length and content (a freshly initialised
    one predicts nearly the same distribution at every step)."""
    variant, overrides = VARIANTS[name]
    torch.manual_seed(seed)
    model = build_model(tiny_config(variant, **overrides, **kw), SRC_VOCAB, tgt_vocab)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0.0, 1.0)
        model.generator.bias[EOS_ID] += 2.0  # some outputs end early, some late
    return model.eval()


def batch(seed: int = 0, lengths: list[int] = SRC_LENGTHS) -> tuple[torch.Tensor, torch.Tensor]:
    src, src_lengths, _ = random_batch(
        torch.Generator().manual_seed(seed), lengths, [1] * len(lengths), SRC_VOCAB
    )
    return src, src_lengths


def forced(model: Any, src, src_lengths, b: int, tokens: list[int]):
    """Teacher-forced log p(tokens + EOS | src_b) and attention (T, S_real) of sentence b,
    through `forward` (not `step`). An Ensemble averages its members' probabilities."""
    s_len = int(src_lengths[b])
    tgt_in = torch.tensor([[BOS_ID, *tokens]])
    members = model.models if isinstance(model, Ensemble) else [model]
    with torch.no_grad():
        outputs = [m(src[b : b + 1, :s_len], src_lengths[b : b + 1], tgt_in) for m in members]
    log_probs = torch.stack([logits.log_softmax(-1)[0] for logits, _ in outputs])  # (M, T, V)
    log_probs = log_probs.logsumexp(0) - math.log(len(members))  # log of the mean probability
    gold = torch.tensor([*tokens, EOS_ID])
    score = log_probs.gather(1, gold.unsqueeze(1)).sum().item()
    weights = [w[0] for _, w in outputs if w is not None]
    return score, torch.stack(weights).mean(0) if weights else None


def tokens_of(results: list[list[Hypothesis]]) -> list[list[list[int]]]:
    return [[h.tokens for h in hyps] for hyps in results]


# ---------------------------------------------------------------------------
# What every search returns


@variants
@pytest.mark.parametrize("search", list(SEARCHES))
def test_scores_and_attention_are_the_models_own(name, search) -> None:
    """Each hypothesis's score is its teacher-forced log-probability, and its attention
    the teacher-forced attention: (len + 1, S_real), rows summing to 1. This checks that
    states and attention histories followed their beams."""
    model = make_model(name)
    src, src_lengths = batch()
    results = SEARCHES[search](model, src, src_lengths)
    assert len(results) == len(SRC_LENGTHS)
    for b, hyps in enumerate(results):
        assert hyps
        for hyp in hyps:
            assert EOS_ID not in hyp.tokens and BOS_ID not in hyp.tokens
            score, weights = forced(model, src, src_lengths, b, hyp.tokens)
            assert hyp.score == pytest.approx(score, abs=1e-4)
            if weights is None:
                assert hyp.attention is None
                continue
            assert hyp.attention is not None
            assert hyp.attention.shape == (len(hyp.tokens) + 1, SRC_LENGTHS[b])
            torch.testing.assert_close(hyp.attention.sum(1), torch.ones(len(hyp.tokens) + 1))
            torch.testing.assert_close(hyp.attention, weights)


@variants
def test_beam_one_is_greedy(name) -> None:
    model = make_model(name)
    src, src_lengths = batch()
    expected = greedy(model, src, src_lengths, settings(max_len=12))
    beamed = beam_search(model, src, src_lengths, settings(beam=1, max_len=12))
    assert tokens_of(beamed) == tokens_of(expected)
    for g, b in zip(expected, beamed, strict=True):
        assert b[0].score == pytest.approx(g[0].score, abs=1e-4)
    # With a length penalty a beam of 1 may run past greedy's EOS, but greedy's
    # hypothesis is among those it finished, so it never ranks lower.
    expected = greedy(model, src, src_lengths, settings(max_len=12, alpha=1.0))
    beamed = beam_search(model, src, src_lengths, settings(beam=1, max_len=12, alpha=1.0))
    for g, b in zip(expected, beamed, strict=True):
        assert b[0].rank_score >= g[0].rank_score - 1e-6


@variants
@pytest.mark.parametrize("search", ["greedy", "beam", "beam-coverage"])
def test_batch_equals_one_sentence_at_a_time(name, search) -> None:
    model = make_model(name)
    src, src_lengths = batch()
    together = SEARCHES[search](model, src, src_lengths)
    for b, s_len in enumerate(SRC_LENGTHS):
        alone = SEARCHES[search](model, src[b : b + 1, :s_len], src_lengths[b : b + 1])[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[b]]
        for a, t in zip(alone, together[b], strict=True):
            assert a.score == pytest.approx(t.score, abs=1e-4)
            assert a.rank_score == pytest.approx(t.rank_score, abs=1e-4)


@pytest.mark.parametrize("name", ["bahdanau", "luong-lstm"])
def test_n_best_lists_are_distinct_and_sorted(name) -> None:
    model = make_model(name)
    src, src_lengths = batch()
    results = beam_search(
        model, src, src_lengths, settings(beam=5, n_best=5, max_len=10, alpha=0.6)
    )
    best = beam_search(model, src, src_lengths, settings(beam=5, n_best=1, max_len=10, alpha=0.6))
    for hyps, top in zip(results, best, strict=True):
        assert len(hyps) == 5
        assert len({tuple(h.tokens) for h in hyps}) == 5
        ranks = [h.rank_score for h in hyps]
        assert ranks == sorted(ranks, reverse=True)
        assert top[0].tokens == hyps[0].tokens
    with pytest.raises(ValueError, match="n_best"):
        beam_search(model, src, src_lengths, settings(beam=2, n_best=3, max_len=10))


# ---------------------------------------------------------------------------
# Beam search is exact when the beam holds every prefix


def enumerate_all(model, src, src_lengths, b: int, max_len: int, alpha: float, beta: float):
    """Every output of up to max_len tokens (never PAD, BOS or EOS inside) for sentence b,
    with its rank score computed straight from the GNMT formulas, best first. All of
    them are teacher-forced in one padded batch (later PADs cannot change earlier steps)."""
    vocab = [t for t in range(model.generator.out_features) if t not in (PAD_ID, BOS_ID, EOS_ID)]
    outputs = [list(o) for n in range(max_len + 1) for o in itertools.product(vocab, repeat=n)]
    tgt_in = torch.tensor([[BOS_ID, *o] + [PAD_ID] * (max_len - len(o)) for o in outputs])
    s_len = int(src_lengths[b])
    src_b = src[b : b + 1, :s_len].expand(len(outputs), -1)
    with torch.no_grad():
        logits, weights = model(src_b, src_lengths[b : b + 1].expand(len(outputs)), tgt_in)
    log_probs = logits.log_softmax(-1)  # (N, T, V)
    ranked = []
    for i, tokens in enumerate(outputs):
        steps = len(tokens) + 1
        gold = torch.tensor([*tokens, EOS_ID]).unsqueeze(1)
        score = log_probs[i, :steps].gather(1, gold).sum().item()
        lp = ((5 + steps) / 6) ** alpha
        cp = 0.0
        if weights is not None:
            coverage = weights[i, :steps].sum(0).tolist()
            cp = beta * sum(math.log(min(c, 1.0)) for c in coverage)
        ranked.append((score / lp + cp, tokens))
    return sorted(ranked, key=lambda pair: pair[0], reverse=True)


@pytest.mark.parametrize(
    "name,alpha,beta", [("bahdanau", 0.0, 0.0), ("bahdanau", 1.5, 0.5), ("none", 1.0, 0.0)]
)
def test_beam_search_finds_the_enumerated_ranking(name, alpha, beta) -> None:
    """Vocabulary of 3 output tokens (+ EOS), outputs of at most 2 tokens: 1 + 3 + 9 = 13
    sequences. With beam 14 every prefix stays live and every EOS candidate ranks in the
    top K, so beam search must return exactly the ranking that enumerating all 13 gives,
    and no more: dead beams (score -inf) never become hypotheses."""
    model = make_model(name, tgt_vocab=6)
    src, src_lengths = batch(seed=1, lengths=[4, 2, 3])
    results = beam_search(
        model, src, src_lengths, settings(beam=14, n_best=14, max_len=2, alpha=alpha, beta=beta)
    )
    for b, hyps in enumerate(results):
        expected = enumerate_all(model, src, src_lengths, b, 2, alpha, beta)
        assert [h.tokens for h in hyps] == [tokens for _, tokens in expected]
        for hyp, (rank, _) in zip(hyps, expected, strict=True):
            assert hyp.rank_score == pytest.approx(rank, abs=1e-4)


@pytest.mark.parametrize("name", ["bahdanau", "none"])
def test_early_termination_keeps_the_best(name) -> None:
    """Outputs of at most 3 tokens over 3 symbols: 40 sequences, beam 40, so the search
    is exact, and with n_best = 1 it stops as soon as its bound allows. A strong length
    penalty makes longer outputs win late, which a bound without lp(longest + 1) misses."""
    for seed in range(5):
        model = make_model(name, seed=seed, tgt_vocab=6)
        src, src_lengths = batch(seed=seed, lengths=[4, 2, 3, 5])
        results = beam_search(model, src, src_lengths, settings(beam=40, max_len=3, alpha=2.0))
        for b, hyps in enumerate(results):
            best = enumerate_all(model, src, src_lengths, b, 3, 2.0, 0.0)[0]
            assert hyps[0].tokens == best[1]


@dataclass
class Rows:
    values: torch.Tensor

    def index_select(self, index: torch.Tensor) -> Rows:
        return Rows(self.values.index_select(0, index))


class Scripted:
    """A stand-in model whose next-token probabilities depend on the step alone:
    row t of `table` (T, V). It counts its steps."""

    bos_id, eos_id, pad_id = BOS_ID, EOS_ID, PAD_ID
    training = False

    def __init__(self, table: torch.Tensor) -> None:
        self.table = table
        self.steps = 0

    def train(self, mode: bool = True) -> Scripted:
        return self

    def encode(self, src, src_lengths) -> Rows:
        return Rows(src_lengths)

    def init_state(self, enc: Rows) -> Rows:
        return Rows(torch.zeros_like(enc.values))

    def step(self, tokens, enc, state):
        self.steps += 1
        t = int(state.values[0])
        return self.table[t].log().expand(len(tokens), -1), None, Rows(state.values + 1)


def test_length_penalty_can_favour_a_late_finisher() -> None:
    """EOS first has p = 0.6; A…A EOS (10 A's) has p = 0.4 · 0.99^10. Without a length
    penalty search stops after one step; with α = 1 the long one ranks higher
    (log 0.4 + 10 log 0.99) / lp(11) > log 0.6 and the bound must keep the search going."""
    A, B = 4, 5
    table = torch.zeros(11, 6)
    table[0, [EOS_ID, A]] = torch.tensor([0.6, 0.4])
    table[1:, [EOS_ID, A, B]] = torch.tensor([0.001, 0.99, 0.009])
    table[10, [EOS_ID, A]] = torch.tensor([0.99, 0.01])
    src, src_lengths = torch.tensor([[4]]), torch.tensor([1])

    model = Scripted(table)
    hyps = beam_search(model, src, src_lengths, settings(beam=2, max_len=10))[0]
    assert hyps[0].tokens == [] and model.steps == 1  # stopped as soon as it could

    model = Scripted(table)
    hyps = beam_search(model, src, src_lengths, settings(beam=2, max_len=10, alpha=1.0))[0]
    assert hyps[0].tokens == [A] * 10
    assert hyps[0].rank_score > math.log(0.6)


def test_keep_best_holds_the_n_best_finished_so_far() -> None:
    gen = torch.Generator().manual_seed(0)
    kept = torch.tensor([[-1.0, -2.0, float("-inf")], [-0.5, -0.7, -3.0]])  # (N=2, n=3)
    ending = torch.rand(2, 6, generator=gen) < 0.5  # (N, 2K)
    ranks = -3 * torch.rand(int(ending.sum()), generator=gen)
    merged = keep_best(kept, ending, ranks)
    new = torch.full(ending.shape, float("-inf"))
    new[ending] = ranks
    for row in range(2):
        union = kept[row].tolist() + new[row].tolist()
        assert merged[row].tolist() == sorted(union, reverse=True)[:3]


# ---------------------------------------------------------------------------
# The rules: length limits and repeated n-grams


def test_length_bounds_follow_the_formulas() -> None:
    src_lengths = torch.tensor([1, 3, 7, 20])
    limits = settings(max_len=18, max_len_ratio=1.3, min_len=2, min_len_ratio=0.7)
    shortest, longest = length_bounds(src_lengths, limits)
    for s_len, low, high in zip(src_lengths.tolist(), shortest, longest, strict=True):
        expected_high = min(18, int(1.3 * s_len) + 5)
        assert high == expected_high
        assert low == min(max(2, math.ceil(0.7 * s_len)), expected_high)
    # A minimum above the maximum gives way to it.
    shortest, longest = length_bounds(src_lengths, settings(max_len=4, min_len=10))
    assert torch.equal(shortest, longest) and torch.equal(longest, torch.full((4,), 4))


@pytest.mark.parametrize("search", ["greedy", "beam", "sample"])
def test_length_limits_hold(search) -> None:
    model = make_model("luong-feed")
    src, src_lengths = batch()
    run = {
        "greedy": lambda **kw: greedy(model, src, src_lengths, settings(**kw)),
        "beam": lambda **kw: beam_search(model, src, src_lengths, settings(beam=3, n_best=3, **kw)),
        "sample": lambda **kw: sample(
            model,
            src,
            src_lengths,
            settings(n_best=3, sample=True, **kw),
            generator=torch.Generator().manual_seed(0),
        ),
    }[search]
    # min_len above the maximum: every output has exactly the maximum length.
    for hyps, s_len in zip(
        run(max_len=8, max_len_ratio=0.5, min_len=100), SRC_LENGTHS, strict=True
    ):
        assert {len(h.tokens) for h in hyps} == {min(8, int(0.5 * s_len) + 5)}
    # The ratio floor: at least ceil(1.5 |x|) tokens.
    for hyps, s_len in zip(run(max_len=30, min_len_ratio=1.5), SRC_LENGTHS, strict=True):
        assert all(math.ceil(1.5 * s_len) <= len(h.tokens) <= 30 for h in hyps)
    # An absolute cap.
    assert all(len(h.tokens) <= 2 for hyps in run(max_len=2) for h in hyps)


def has_repeat(tokens: list[int], n: int) -> bool:
    ngrams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(ngrams) != len(set(ngrams))


@pytest.mark.parametrize("search", ["greedy", "beam", "sample"])
def test_no_repeat_ngram_holds(search) -> None:
    model = make_model("bahdanau")
    src, src_lengths = batch()

    def run(**kw):
        kw = dict(max_len=14, min_len=14) | kw  # long outputs, so repeats are likely
        if search == "greedy":
            return greedy(model, src, src_lengths, settings(**kw))
        if search == "beam":
            return beam_search(model, src, src_lengths, settings(beam=3, n_best=3, **kw))
        return sample(
            model, src, src_lengths, settings(**kw), generator=torch.Generator().manual_seed(0)
        )

    free = [h.tokens for hyps in run() for h in hyps]
    assert any(has_repeat(tokens, 2) for tokens in free)  # so the rule has work to do
    blocked = [h.tokens for hyps in run(no_repeat_ngram=2) for h in hyps]
    assert not any(has_repeat(tokens, 2) for tokens in blocked)
    # n = 1 forbids every repeat: after all 10 output tokens only EOS is left, and it is
    # allowed although min_len has not been reached.
    once = [h.tokens for hyps in run(no_repeat_ngram=1) for h in hyps]
    assert all(len(set(tokens)) == len(tokens) == 10 for tokens in once)


@pytest.mark.parametrize("search", ["greedy", "beam", "sample"])
def test_the_unknown_piece_is_never_output_when_forbidden(search) -> None:
    """decode.allow_unk false: a model that favours <unk> never outputs it, and each
    score is still the model's own log-probability of the output."""
    model = make_model("bahdanau")
    with torch.no_grad():
        model.generator.bias[UNK_ID] += 3.0  # <unk> is now a likely token everywhere
    src, src_lengths = batch()
    kw: dict[str, Any] = dict(max_len=10, n_best=3)
    kw |= {"beam": 3} if search == "beam" else {"sample": True} if search == "sample" else {}
    if search == "greedy":
        kw["n_best"] = 1

    def outputs(allow_unk: bool) -> list[Hypothesis]:
        options = settings(allow_unk=allow_unk, seed=0, **kw)
        found = decode(model, src, src_lengths, options, torch.Generator().manual_seed(0))
        return [h for hyps in found for h in hyps]

    assert any(UNK_ID in h.tokens for h in outputs(True))  # so the rule has work to do
    for b, h in enumerate(outputs(False)):
        assert UNK_ID not in h.tokens
        sentence = b // kw["n_best"]
        assert h.score == pytest.approx(
            forced(model, src, src_lengths, sentence, h.tokens)[0], abs=1e-4
        )


@pytest.mark.parametrize("n", [1, 2, 3])
def test_repeated_ngrams_matches_a_loop(n) -> None:
    history = torch.randint(4, 8, (6, 9), generator=torch.Generator().manual_seed(n))
    banned = repeated_ngrams(history, n, vocab=8)
    for row, tokens in enumerate(history.tolist()):
        expected = {
            tokens[i + n - 1]
            for i in range(len(tokens) - n + 1)
            if tokens[i : i + n - 1] == tokens[len(tokens) - n + 1 :]
        }
        assert set(banned[row].nonzero().flatten().tolist()) == expected


# ---------------------------------------------------------------------------
# The GNMT penalties


def test_length_penalty_formula() -> None:
    lengths = torch.tensor([1, 2, 7])
    assert torch.equal(length_penalty(lengths, 0.0), torch.ones(3, dtype=torch.float64))
    expected = torch.tensor([((5 + n) / 6) ** 0.6 for n in (1, 2, 7)], dtype=torch.float64)
    torch.testing.assert_close(length_penalty(lengths, 0.6), expected)


def test_coverage_penalty_formula() -> None:
    # Sentence 0 (3 real positions of 4): coverage 2, 0.5, 0.5 -> β (0 + 2 log 0.5);
    # its padding column is ignored. Sentence 1: every position fully covered -> 0.
    attention = torch.tensor(
        [
            [[1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [0.5, 0.0, 0.5, 0.0]],
            [[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]],
        ]
    )  # (R=2, T=3, S=4)
    penalty = coverage_penalty(attention, torch.tensor([3, 2]), beta=0.4)
    torch.testing.assert_close(
        penalty, torch.tensor([0.4 * 2 * math.log(0.5), 0.0], dtype=torch.float64)
    )
    assert torch.equal(
        coverage_penalty(attention, torch.tensor([3, 2]), 0.0), torch.zeros(2).double()
    )
    assert torch.equal(coverage_penalty(None, torch.tensor([3, 2]), 0.4), torch.zeros(2).double())


# ---------------------------------------------------------------------------
# Sampling


def test_sampling_is_reproducible_and_depends_on_the_seed() -> None:
    model = make_model("luong-feed")
    src, src_lengths = batch()

    def draw(seed: int, **kw):
        gen = torch.Generator().manual_seed(seed)
        return tokens_of(
            sample(
                model,
                src,
                src_lengths,
                settings(max_len=12, n_best=3, sample=True, **kw),
                generator=gen,
            )
        )

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)
    assert draw(7, temperature=3.0) != draw(7)


@variants
def test_sampling_the_top_token_is_greedy(name) -> None:
    model = make_model(name)
    src, src_lengths = batch()
    expected = tokens_of(greedy(model, src, src_lengths, settings(max_len=12)))
    for kw in (dict(top_k=1), dict(top_p=1e-6)):
        gen = torch.Generator().manual_seed(0)
        assert tokens_of(
            sample(model, src, src_lengths, settings(max_len=12, **kw), generator=gen)
        ) == (expected)


@pytest.mark.parametrize("top_k,top_p", [(3, 1.0), (0, 0.5)])
def test_samples_come_from_the_truncated_distribution(top_k, top_p) -> None:
    """Every sampled token is among the top_k, or inside the top_p nucleus, of the
    model's distribution (PAD and BOS excluded) at its position."""
    model = make_model("bahdanau")
    src, src_lengths = batch()
    gen = torch.Generator().manual_seed(0)
    results = sample(
        model,
        src,
        src_lengths,
        settings(max_len=50, n_best=4, top_k=top_k, top_p=top_p, sample=True),
        generator=gen,
    )
    for b, hyps in enumerate(results):
        s_len = int(src_lengths[b])
        for hyp in hyps:
            tgt_in = torch.tensor([[BOS_ID, *hyp.tokens]])
            with torch.no_grad():
                logits, _ = model(src[b : b + 1, :s_len], src_lengths[b : b + 1], tgt_in)
            probs = logits[0].softmax(-1)
            probs[:, [PAD_ID, BOS_ID]] = 0.0
            probs = probs / probs.sum(-1, keepdim=True)  # (T, V)
            for t, token in enumerate([*hyp.tokens, EOS_ID][:50]):
                higher = probs[t] > probs[t, token]
                if top_k:
                    assert int(higher.sum()) < top_k
                else:
                    assert float(probs[t][higher].sum()) < top_p


def test_filters_keep_what_they_promise() -> None:
    logits = torch.randn(5, 9, generator=torch.Generator().manual_seed(0))
    kept = top_k_filter(logits, 3)
    assert torch.equal(torch.isfinite(kept).sum(1), torch.full((5,), 3))
    assert torch.equal(kept.max(1).values, logits.max(1).values)
    probs = logits.softmax(-1)
    for p in (0.3, 0.7, 0.95):
        keep = torch.isfinite(top_p_filter(logits, p))
        for row in range(5):
            mass = probs[row][keep[row]]
            assert float(mass.sum()) >= p  # the kept set reaches p ...
            assert float(mass.sum() - mass.min()) < p  # ... and is the smallest that does
            dropped = probs[row][~keep[row]]
            assert dropped.numel() == 0 or float(mass.min()) >= float(dropped.max())


def test_the_nucleus_fast_path_is_the_full_sorts_nucleus() -> None:
    """nucleus() finds, among its top-k candidates, the same tokens with the same
    probabilities as top_p_filter's sort of the whole row, and marks exactly the rows
    whose nucleus reaches past the candidates. Logits from peaked to flat."""
    g = torch.Generator().manual_seed(0)
    vocab = 2 * NUCLEUS_CANDIDATES
    for scale in (8.0, 3.0, 1.0):
        logits = scale * torch.randn(6, vocab, generator=g)
        for p in (0.5, 0.9):
            full = top_p_filter(logits, p)
            kept, ids, found = nucleus(logits, p)
            mass = logits.softmax(-1).topk(NUCLEUS_CANDIDATES).values.sum(-1)
            assert torch.equal(found, mass >= p), (scale, p)
            fast = torch.full_like(logits, NEG_INF).scatter(1, ids, kept)[found]
            assert torch.equal(torch.isfinite(fast), torch.isfinite(full[found]))
            torch.testing.assert_close(fast.softmax(-1), full[found].softmax(-1))


def test_sampling_through_the_nucleus_draws_only_from_it() -> None:
    """The sampler's fast path draws every token from the nucleus, and over many draws
    each kept token about as often as its renormalised probability says."""
    draw = _sampler(1.0, 0, 0.8, torch.Generator().manual_seed(2))
    for scale in (2.0, 0.3):  # a nucleus within the candidates, and one wider
        logits = scale * torch.randn(1, 1000, generator=torch.Generator().manual_seed(1))
        assert bool(nucleus(logits, 0.8)[2]) == (scale == 2.0)
        tokens = draw(logits.expand(4000, -1))
        expected = top_p_filter(logits, 0.8).softmax(-1)[0]
        assert bool((expected[tokens] > 0).all())
        counts = torch.bincount(tokens, minlength=1000).float() / len(tokens)
        assert float((counts - expected).abs().max()) < 0.03


# ---------------------------------------------------------------------------
# Ensembles


@pytest.mark.parametrize("name", ["none", "luong-feed"])
def test_ensemble_of_one_is_the_model(name) -> None:
    model = make_model(name)
    src, src_lengths = batch()
    for search in ("greedy", "beam"):
        alone = SEARCHES[search](model, src, src_lengths)
        ensembled = SEARCHES[search](Ensemble([model]), src, src_lengths)
        assert tokens_of(alone) == tokens_of(ensembled)
        for a, e in zip(alone, ensembled, strict=True):
            assert [h.score for h in e] == pytest.approx([h.score for h in a], abs=1e-4)


def test_ensemble_of_two_averages_probabilities() -> None:
    """Ensemble scores are log of the mean of the members' teacher-forced probabilities;
    the attention is the mean of the members' attention."""
    ensemble = Ensemble([make_model("bahdanau", seed=1), make_model("luong-feed", seed=2)])
    src, src_lengths = batch()
    results = beam_search(ensemble, src, src_lengths, settings(beam=3, n_best=3, max_len=10))
    for b, hyps in enumerate(results):
        for hyp in hyps:
            score, weights = forced(ensemble, src, src_lengths, b, hyp.tokens)
            assert hyp.score == pytest.approx(score, abs=1e-4)
            torch.testing.assert_close(hyp.attention, weights)
    with pytest.raises(ValueError, match="vocabulary"):
        Ensemble([make_model("none"), make_model("none", tgt_vocab=7)])


# ---------------------------------------------------------------------------
# Batching: encode once, follow beams, prune finished sentences


class Spy:
    """Wraps a model; counts encodes and records the rows of every step."""

    def __init__(self, model: Seq2Seq) -> None:
        self.model = model
        self.bos_id, self.eos_id, self.pad_id = model.bos_id, model.eos_id, model.pad_id
        self.encodes = 0
        self.rows: list[int] = []

    @property
    def training(self) -> bool:
        return self.model.training

    def train(self, mode: bool = True) -> Spy:
        self.model.train(mode)
        return self

    def encode(self, src, src_lengths):
        self.encodes += 1
        return self.model.encode(src, src_lengths)

    def init_state(self, enc):
        return self.model.init_state(enc)

    def step(self, tokens, enc, state):
        self.rows.append(len(tokens))
        return self.model.step(tokens, enc, state)


@pytest.mark.parametrize("beam", [1, 3])
def test_encodes_once_and_prunes_finished_sentences(beam) -> None:
    """Sources of length 1 and 6 with max_len_ratio 1 and an unreachable min_len end at
    exactly 6 and 11 tokens: after step 6 only the longer sentence's rows remain."""
    spy = Spy(make_model("luong-feed"))
    src, src_lengths = batch(lengths=[1, 6])
    kw = dict(max_len=50, max_len_ratio=1.0, min_len=100)
    if beam == 1:
        results = greedy(spy, src, src_lengths, settings(**kw))
    else:
        results = beam_search(spy, src, src_lengths, settings(beam=beam, **kw))
    assert [len(hyps[0].tokens) for hyps in results] == [6, 11]
    assert spy.encodes == 1
    assert spy.rows == [2 * beam] * 7 + [beam] * 5


def test_model_mode_is_restored_and_dropout_off() -> None:
    model = make_model("bahdanau", dropout=0.5)
    src, src_lengths = batch()
    expected = tokens_of(greedy(model, src, src_lengths, settings(max_len=12)))
    model.train()
    assert tokens_of(greedy(model, src, src_lengths, settings(max_len=12))) == expected
    assert model.training


# ---------------------------------------------------------------------------
# decode(): dispatch on the config, in token-budget groups


def test_decode_dispatches_on_the_config() -> None:
    model = make_model("luong-feed")
    src, src_lengths = batch()
    rules: dict[str, Any] = dict(
        max_len=12, max_len_ratio=1.5, min_len=1, min_len_ratio=0.5, alpha=0.6, beta=0.2
    )
    config = DecodeOptions(beam=1, no_repeat_ngram=2, **rules)
    assert tokens_of(decode(model, src, src_lengths, config)) == tokens_of(
        greedy(model, src, src_lengths, settings(no_repeat_ngram=2, **rules))
    )
    config = DecodeOptions(beam=4, n_best=2, **rules)
    assert tokens_of(decode(model, src, src_lengths, config)) == tokens_of(
        beam_search(model, src, src_lengths, settings(beam=4, n_best=2, **rules))
    )
    config = DecodeOptions(sample=True, n_best=2, top_k=4, top_p=0.9, temperature=0.7, **rules)
    sampled = decode(model, src, src_lengths, config, torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    expected = sample(
        model,
        src,
        src_lengths,
        settings(n_best=2, sample=True, top_k=4, top_p=0.9, temperature=0.7, **rules),
        generator=gen,
    )
    assert tokens_of(sampled) == tokens_of(expected)
    with pytest.raises(ValueError, match="n_best"):
        decode(model, src, src_lengths, DecodeOptions(beam=1, n_best=2))


def test_decode_in_small_groups_equals_one_batch() -> None:
    model = make_model("bahdanau")
    src, src_lengths = batch()
    options = DecodeOptions(beam=3, n_best=2, max_len=12, batch_tokens=10)
    whole = decode(model, src, src_lengths, options)
    groups = length_batches(src_lengths.tolist(), options.sentence_budget())
    assert len(groups) > 1
    for group in groups:
        rows = torch.tensor(group)
        longest = int(src_lengths[rows].max())
        part = decode(model, src[rows, :longest], src_lengths[rows], options)
        assert tokens_of(part) == [tokens_of(whole)[i] for i in group]


def test_rows_per_sentence_counts_the_beam_or_the_samples() -> None:
    assert DecodeOptions(beam=5, n_best=2).rows_per_sentence() == 5
    assert DecodeOptions(beam=5, n_best=2, sample=True).rows_per_sentence() == 2
    assert DecodeOptions(beam=1, n_best=4, sample=True, batch_tokens=100).sentence_budget() == 25
    assert DecodeOptions(beam=4, batch_tokens=2).sentence_budget() == 1  # at least a sentence


def test_length_batches_cover_every_sentence_within_budget() -> None:
    lengths = [5, 2, 9, 3, 3, 12, 1]
    groups = length_batches(lengths, batch_tokens=10)
    assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
    for group in groups:
        padded = len(group) * max(lengths[i] for i in group)
        assert padded <= 10 or len(group) == 1
    assert len(groups) < len(lengths)  # it does group
