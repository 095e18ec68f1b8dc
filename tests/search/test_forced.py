"""Teacher forcing over a corpus (the one loop behind loss, forced attention and the
scores of given outputs) and the one evaluation mode: properties against per-sentence
forwards, and the model's mode put back afterwards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config
from helpers import SENTENCES, make_run

from attnmt.data.corpus import CorpusStats, TokenizedCorpus
from attnmt.evaluate.alignment import forced_attention
from attnmt.evaluate.evaluation import evaluate_corpus
from attnmt.evaluate.metrics import corpus_loss
from attnmt.io.run import Run
from attnmt.models.build import build_model
from attnmt.models.modes import evaluating
from attnmt.models.seq2seq import Seq2Seq
from attnmt.search.forced import forced_batches, sequence_log_probs
from attnmt.translate.translator import Translator

VOCAB = 20
DEVICE = torch.device("cpu")


def random_corpus(pairs: int = 9, seed: int = 0) -> TokenizedCorpus:
    """Pairs of random lengths 1..7 (so batches pad), ids clear of the special ones."""
    rng = np.random.default_rng(seed)
    sides: list[np.ndarray] = []
    for _ in range(2):
        lengths = rng.integers(1, 8, size=pairs)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)  # (N + 1,)
        tokens = rng.integers(4, VOCAB, size=int(offsets[-1])).astype(np.int32)
        sides += [tokens, offsets]
    src_tokens, src_offsets, tgt_tokens, tgt_offsets = sides
    return TokenizedCorpus(
        src_tokens, src_offsets, tgt_tokens, tgt_offsets, CorpusStats(pairs, 0, 0)
    )


def dropout_model(seed: int = 0) -> Seq2Seq:
    """Heavy dropout, in training mode: anything run outside eval mode would be noisy."""
    torch.manual_seed(seed)
    model = build_model(tiny_config(dropout=0.5), VOCAB, VOCAB)
    assert isinstance(model, Seq2Seq)
    model.train(True)
    return model


def alone(model: Seq2Seq, corpus: TokenizedCorpus, k: int) -> tuple[torch.Tensor, ...]:
    """Pair k's teacher-forced forward on its own, unpadded, in eval mode: logits
    (T + 1, V), attention (T + 1, S) and tgt_out (T + 1,)."""
    src = torch.tensor([corpus.src(k).tolist()])  # (1, S)
    tgt = corpus.tgt(k).tolist()
    tgt_in = torch.tensor([[model.bos_id, *tgt]])  # (1, T + 1)
    with evaluating(model):
        logits, attention = model(src, torch.tensor([src.size(1)]), tgt_in)
    assert attention is not None
    return logits[0], attention[0], torch.tensor([*tgt, model.eos_id])


# --------------------------------------------------------------------------- the mode


@pytest.mark.parametrize("training", [True, False])
def test_evaluating_turns_dropout_and_autograd_off_and_restores_the_mode(training: bool) -> None:
    model = dropout_model()
    model.train(training)
    with evaluating(model):
        assert not model.training and not any(m.training for m in model.modules())
        assert torch.is_inference_mode_enabled()
    assert model.training == training and all(m.training == training for m in model.modules())
    assert not torch.is_inference_mode_enabled()


def test_evaluating_restores_the_mode_when_the_body_raises() -> None:
    model = dropout_model()
    with pytest.raises(RuntimeError, match="boom"), evaluating(model):
        raise RuntimeError("boom")
    assert model.training


def test_evaluation_leaves_a_training_model_training(tmp_path: Path) -> None:
    """Validation during training: decoding, the heads pass and the loss all run in eval
    mode, and the model comes back in training mode."""
    run = Run.load(make_run(tmp_path / "run"), device="cpu")
    translator = Translator.from_run(run)
    corpus = random_corpus()
    run.model.train(True)
    evaluate_corpus(translator, corpus, ["x"] * len(corpus), heads=True)
    assert run.model.training
    run.model.train(False)
    evaluate_corpus(translator, corpus, ["x"] * len(corpus))
    assert not run.model.training


def test_an_abandoned_loop_leaves_the_mode_as_it_was() -> None:
    model = dropout_model()
    batches = forced_batches(model, random_corpus(), 12, DEVICE)
    next(batches)
    assert model.training and not torch.is_inference_mode_enabled()


# --------------------------------------------------------------------------- the loop


def test_every_pair_is_forced_once_with_its_own_lengths() -> None:
    corpus = random_corpus()
    seen: list[int] = []
    for forced in forced_batches(dropout_model(), corpus, 16, DEVICE):
        batch = forced.batch
        assert forced.logits.shape == (*batch.tgt_in.shape, VOCAB)  # (B, T, V)
        assert forced.attention is not None
        assert forced.attention.shape == (*batch.tgt_in.shape, batch.src.size(1))  # (B, T, S)
        for k, weights in forced.pair_attention():
            assert weights.shape == (len(corpus.tgt(k)) + 1, len(corpus.src(k)))
            seen.append(k)
    assert sorted(seen) == list(range(len(corpus)))
    assert len(set(seen)) == len(seen)


@pytest.mark.parametrize("batch_tokens", [8, 16, 10_000])  # many padded batches, or one
def test_corpus_loss_is_the_naive_per_sentence_nll(batch_tokens: int) -> None:
    """nll = -Σ_k Σ_t log p(y_kt | y_k,<t, x_k) / Σ_k (T_k + 1), each pair alone; dropout
    stays off although the model is training."""
    model, corpus = dropout_model(), random_corpus()
    total, tokens = 0.0, 0
    for k in range(len(corpus)):
        logits, _, tgt_out = alone(model, corpus, k)
        log_probs = F.log_softmax(logits.double(), dim=-1)  # (T + 1, V)
        total -= float(log_probs.gather(1, tgt_out[:, None]).sum())
        tokens += len(tgt_out)
    result = corpus_loss(model, corpus, batch_tokens, DEVICE)
    assert result.tokens == tokens
    assert result.nll == pytest.approx(total / tokens, rel=1e-5)
    assert result.ppl == pytest.approx(np.exp(total / tokens), rel=1e-5)
    assert model.training


@pytest.mark.parametrize("batch_tokens", [8, 16, 10_000])  # many padded batches, or one
def test_sequence_log_probs_are_each_pairs_own_sum(batch_tokens: int) -> None:
    """log p(y_k | x_k) = Σ_t log p(y_kt | y_k,<t, x_k), EOS included, each pair alone,
    in corpus order; the summed scores agree with the corpus loss."""
    model, corpus = dropout_model(), random_corpus()
    expected = []
    for k in range(len(corpus)):
        logits, _, tgt_out = alone(model, corpus, k)
        log_probs = F.log_softmax(logits.double(), dim=-1)  # (T + 1, V)
        expected.append(float(log_probs.gather(1, tgt_out[:, None]).sum()))
    scores = sequence_log_probs(model, corpus, batch_tokens, DEVICE)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    loss = corpus_loss(model, corpus, batch_tokens, DEVICE)
    assert -scores.sum() / loss.tokens == pytest.approx(loss.nll, rel=1e-5)
    assert model.training


def test_a_corpus_from_id_lists_holds_them_in_order() -> None:
    src, tgt = [[5, 6, 7], [8], [9, 10]], [[11], [], [12, 13, 14]]
    corpus = TokenizedCorpus.from_ids(src, tgt)
    assert len(corpus) == 3 and corpus.stats.pairs == 3
    assert [corpus.src(k).tolist() for k in range(3)] == src
    assert [corpus.tgt(k).tolist() for k in range(3)] == tgt
    assert corpus.src_lengths.tolist() == [3, 1, 2] and corpus.tgt_lengths.tolist() == [1, 0, 3]
    with pytest.raises(ValueError, match="2 sources for 1 targets"):
        TokenizedCorpus.from_ids(src[:2], tgt[:1])


@pytest.mark.parametrize("batch_tokens", [8, 10_000])
def test_forced_attention_is_each_pairs_own_and_rows_sum_to_one(batch_tokens: int) -> None:
    model, corpus = dropout_model(), random_corpus()
    attention = forced_attention(model, corpus, batch_tokens, DEVICE)
    assert attention is not None and len(attention) == len(corpus)
    for k, weights in enumerate(attention):
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
        _, own, _ = alone(model, corpus, k)
        np.testing.assert_allclose(weights, own.numpy(), atol=1e-5)
    assert model.training


def test_forced_attention_is_none_without_attention() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_config(("none", None, None, False)), VOCAB, VOCAB)
    assert forced_attention(model, random_corpus(), 16, DEVICE) is None


def test_heads_are_filled_only_for_the_chosen_sentences(tmp_path: Path) -> None:
    """One decode: every head for the sentences asked for, none for the others, and the
    same outputs as without heads."""
    run = Run.load(make_run(tmp_path / "run"), device="cpu")
    translator = Translator.from_run(run)
    ids = [run.src_tok.encode(sentence) for sentence in SENTENCES[:5]]
    plain = translator.translate_ids(ids)
    chosen = translator.translate_ids(ids, heads=[1, 3])
    assert [t.attention_heads is not None for t in chosen] == [False, True, False, True, False]
    assert [t.text for t in chosen] == [t.text for t in plain]
    for t in (chosen[1], chosen[3]):
        assert t.attention is not None and t.attention_heads is not None
        assert t.attention_heads.shape[-2:] == t.attention.shape  # (..., T + 1, S)
