"""Transformer properties: causality, padding, the key/value cache, batching, gradients,
heads, the search invariants and overfitting. CPU, float64 where the property is exact."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import SEARCHES, assert_padded_batch_equals_alone, random_batch, settings
from helpers import SENTENCES, make_run
from test_overfit import VOCAB, reverse_task, train_steps
from torch.func import functional_call

from attnmt.config import ConfigError, ModelConfig, load_config
from attnmt.errors import UserError
from attnmt.io.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from attnmt.models.build import build_model
from attnmt.models.seq2seq import Seq2Seq
from attnmt.models.transformer import TransformerSeq2Seq
from attnmt.models.transformer_layers import TransformerDecoder
from attnmt.search.beam import beam_search
from attnmt.search.sampling import greedy
from attnmt.special import BOS_ID, EOS_ID, PAD_ID
from attnmt.translate.translator import Translator

SRC_VOCAB, TGT_VOCAB = 11, 13
SRC_LENGTHS, TGT_LENGTHS = [5, 2, 4], [4, 3, 2]


def tiny(**overrides: Any) -> ModelConfig:
    fields: dict[str, Any] = dict(
        arch="transformer", embed_dim=8, layers=2, ff_dim=16, dropout=0.0, attention={"heads": 2}
    )
    fields.update(overrides)
    return ModelConfig.model_validate(fields)


def make_model(dtype: torch.dtype = torch.float64, seed: int = 0, **overrides: Any) -> Seq2Seq:
    torch.manual_seed(seed)
    return build_model(tiny(**overrides), SRC_VOCAB, TGT_VOCAB).to(dtype).eval()


SETUPS = {
    "pre-1": dict(layers=1),
    "pre-2": dict(layers=2),
    "post-2": dict(layers=2, norm="post"),
    "learned-2x1": dict(layers=2, decoder_layers=1, positions="learned"),
}
setups = pytest.mark.parametrize("setup", list(SETUPS))


def decoder_of(model: Seq2Seq) -> TransformerDecoder:
    assert isinstance(model.decoder, TransformerDecoder)
    return model.decoder


# ---------------------------------------------------------------------------
# Config


def test_config_rejects_keys_of_the_other_family() -> None:
    with pytest.raises(ConfigError, match=r"does not use model\.decoder, model\.hidden_dim"):
        load_config(None, ["model.arch=transformer", "model.hidden_dim=128", "model.decoder=luong"])
    with pytest.raises(ConfigError, match=r"does not use model\.ff_dim"):
        load_config(None, ["model.ff_dim=64"])
    with pytest.raises(ConfigError, match="must divide by model.attention.heads"):
        load_config(None, ["model.arch=transformer", "model.embed_dim=30"])
    # Keys both families read, and defaults of the other family, are fine.
    config = load_config(
        None, ["model.arch=transformer", "model.layers=3", "model.decoder=bahdanau"]
    )
    assert config.model.arch == "transformer" and config.model.norm == "pre"
    assert load_config(None).model.arch == "rnn"


def test_tied_embeddings_share_one_matrix() -> None:
    model = make_model(tie_embeddings=True)
    assert model.generator.weight is decoder_of(model).embedding.weight


# ---------------------------------------------------------------------------
# Masks: padding and causality


@setups
def test_rows_sum_to_one_and_padding_gets_zero_weight_in_every_head(setup, gen) -> None:
    model = make_model(**SETUPS[setup])
    src, src_lengths, tgt_in = random_batch(gen, SRC_LENGTHS, TGT_LENGTHS, SRC_VOCAB)
    assert isinstance(model, TransformerSeq2Seq)
    maps = model.attention_maps(src, src_lengths, tgt_in)
    layers = SETUPS[setup]["layers"]
    dec_layers = SETUPS[setup].get("decoder_layers", layers)
    assert maps["cross"].shape == (3, dec_layers, 2, 4, 5)
    assert maps["encoder"].shape == (3, layers, 2, 5, 5)
    assert maps["decoder"].shape == (3, dec_layers, 2, 4, 4)
    for weights in maps.values():
        torch.testing.assert_close(
            weights.sum(-1), torch.ones(weights.shape[:-1], dtype=weights.dtype)
        )
    for b, (s_len, t_len) in enumerate(zip(SRC_LENGTHS, TGT_LENGTHS, strict=True)):
        assert torch.all(maps["cross"][b, ..., s_len:] == 0)
        assert torch.all(maps["encoder"][b, ..., s_len:] == 0)
        assert torch.all(maps["decoder"][b, ..., t_len:] == 0)
    # The default map is the mean over the heads of the last layer's cross-attention.
    _, default = model(src, src_lengths, tgt_in)
    torch.testing.assert_close(default, maps["cross"][:, -1].mean(dim=1))


@setups
def test_padding_content_changes_nothing(setup, gen) -> None:
    model = make_model(**SETUPS[setup])
    src, src_lengths, tgt_in = random_batch(gen, SRC_LENGTHS, TGT_LENGTHS, SRC_VOCAB)
    logits, weights = model(src, src_lengths, tgt_in)
    noisy_src, noisy_tgt = src.clone(), tgt_in.clone()
    noisy_src[src == PAD_ID] = 7
    logits2, weights2 = model(noisy_src, src_lengths, noisy_tgt)
    assert torch.equal(logits, logits2) and torch.equal(weights, weights2)
    # Target padding: what the padded positions hold never reaches a real position.
    noisy_tgt[tgt_in == PAD_ID] = 9
    logits3, _ = model(src, src_lengths, noisy_tgt)
    real = tgt_in != PAD_ID
    torch.testing.assert_close(logits3[real], logits[real], rtol=0, atol=1e-12)


@setups
def test_causality(setup, gen) -> None:
    """Changing the target tokens after position t changes no output at positions ≤ t."""
    model = make_model(**SETUPS[setup])
    src, src_lengths, tgt_in = random_batch(gen, [5, 4], [6, 6], SRC_VOCAB)
    logits, weights = model(src, src_lengths, tgt_in)
    for t in range(tgt_in.size(1) - 1):
        changed = tgt_in.clone()
        changed[:, t + 1 :] = torch.randint(4, TGT_VOCAB, changed[:, t + 1 :].shape, generator=gen)
        logits2, weights2 = model(src, src_lengths, changed)
        torch.testing.assert_close(logits2[:, : t + 1], logits[:, : t + 1], rtol=0, atol=1e-12)
        torch.testing.assert_close(weights2[:, : t + 1], weights[:, : t + 1], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------
# The cache, batching, gradients


@setups
def test_incremental_decoding_with_the_cache_equals_the_full_forward(setup, gen) -> None:
    """Step by step with the key/value cache, in float64, reordering the rows between
    steps as beam search does: outputs and every head's attention match teacher forcing."""
    model = make_model(**SETUPS[setup])
    decoder = decoder_of(model)
    src, src_lengths, tgt_in = random_batch(gen, [5, 3, 4], [5, 5, 5], SRC_VOCAB)
    enc = model.encode(src, src_lengths)
    full_out, full_weights, _ = decoder(tgt_in, enc, model.init_state(enc))
    full_logits = model.generator(full_out)
    order = torch.arange(3)  # row r of the step batch is sentence order[r]
    state = model.init_state(enc)
    for t in range(tgt_in.size(1)):
        out, weights, state = decoder.step(tgt_in[order, t], enc.index_select(order), state)
        torch.testing.assert_close(out, full_out[order, t], rtol=0, atol=1e-12)
        torch.testing.assert_close(weights, full_weights[order, :, t], rtol=0, atol=1e-12)
        torch.testing.assert_close(model.generator(out), full_logits[order, t])
        assert state.step == t + 1 and state.cache[0].keys.shape[2] == t + 1
        swap = torch.tensor([2, 0, 1])  # follow "beams": reorder the rows and their cache
        state, order = state.index_select(swap), order[swap]
    log_probs, _, _ = model.step(tgt_in[order, 0], enc.index_select(order), model.init_state(enc))
    assert log_probs.dtype == torch.float32  # the interface: log-probabilities in float32


@setups
def test_padded_batch_equals_each_sentence_alone(setup, gen) -> None:
    model = make_model(**SETUPS[setup])
    batch = random_batch(gen, SRC_LENGTHS, TGT_LENGTHS, SRC_VOCAB)
    assert assert_padded_batch_equals_alone(model, batch, SRC_LENGTHS, TGT_LENGTHS) is not None


def test_gradcheck_whole_model_float64(gen) -> None:
    """Analytic gradients of the logits w.r.t. both embedding tables and one attention
    projection match finite differences."""
    model = make_model(layers=1, embed_dim=4, ff_dim=6)
    src, src_lengths, tgt_in = random_batch(gen, [3, 2], [3, 2], SRC_VOCAB)
    names = [
        "encoder.embedder.embedding.weight",
        "decoder.embedder.embedding.weight",
        "decoder.layers.0.cross_attention.score.W_q.weight",
    ]
    tables = [dict(model.named_parameters())[n].detach() for n in names]
    # The PAD rows are excluded: their gradient is zero by design (padding_idx).
    params = [tables[0][1:].clone(), tables[1][1:].clone(), tables[2].clone()]
    params = [p.requires_grad_() for p in params]

    def fn(src_rows: torch.Tensor, tgt_rows: torch.Tensor, w_q: torch.Tensor) -> torch.Tensor:
        weights = [torch.cat([tables[0][:1], src_rows]), torch.cat([tables[1][:1], tgt_rows]), w_q]
        out = functional_call(
            model, dict(zip(names, weights, strict=True)), (src, src_lengths, tgt_in)
        )
        return out[0]

    assert torch.autograd.gradcheck(fn, tuple(params), eps=1e-6, atol=1e-5, fast_mode=True)


def test_attention_dropout_only_while_training(gen) -> None:
    model = make_model(attention_dropout=0.5)
    src, src_lengths, tgt_in = random_batch(gen, SRC_LENGTHS, TGT_LENGTHS, SRC_VOCAB)
    eval_logits, _ = model(src, src_lengths, tgt_in)
    torch.testing.assert_close(model(src, src_lengths, tgt_in)[0], eval_logits)
    model.train()
    torch.manual_seed(1)
    train_logits, weights = model(src, src_lengths, tgt_in)
    assert not torch.allclose(train_logits, eval_logits)
    # The weights handed out are the undropped distributions.
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4, dtype=weights.dtype))


# ---------------------------------------------------------------------------
# Search: the invariants of tests/search/test_search.py, for the Transformer


def search_model(seed: int = 0) -> Seq2Seq:
    """Large random weights, so outputs depend on the source and differ in length."""
    torch.manual_seed(seed)
    model = build_model(tiny(layers=2, decoder_layers=1), SRC_VOCAB, TGT_VOCAB)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" not in name:
                param.normal_(0.0, 1.0)
        model.generator.bias[EOS_ID] += 4.0  # some outputs end early, some late
    return model.eval()


def search_batch() -> tuple[torch.Tensor, torch.Tensor]:
    src, src_lengths, _ = random_batch(
        torch.Generator().manual_seed(0), [5, 2, 6, 3], [1] * 4, SRC_VOCAB
    )
    return src, src_lengths


@pytest.mark.parametrize("search", list(SEARCHES))
def test_scores_and_attention_are_the_models_own(search) -> None:
    """Each score is the teacher-forced log-probability and each attention the
    teacher-forced default map: the cache and the keys followed their beams."""
    model = search_model()
    src, src_lengths = search_batch()
    for b, hyps in enumerate(SEARCHES[search](model, src, src_lengths)):
        s_len = int(src_lengths[b])
        for hyp in hyps:
            tgt_in = torch.tensor([[BOS_ID, *hyp.tokens]])
            with torch.no_grad():
                logits, weights = model(src[b : b + 1, :s_len], src_lengths[b : b + 1], tgt_in)
            gold = torch.tensor([*hyp.tokens, EOS_ID]).unsqueeze(1)
            score = logits.log_softmax(-1)[0].gather(1, gold).sum().item()
            assert hyp.score == pytest.approx(score, abs=1e-4)
            assert hyp.attention is not None
            torch.testing.assert_close(hyp.attention, weights[0], rtol=1e-4, atol=1e-5)


def test_beam_one_is_greedy() -> None:
    model = search_model()
    src, src_lengths = search_batch()
    expected = greedy(model, src, src_lengths, settings(max_len=12))
    beamed = beam_search(model, src, src_lengths, settings(beam=1, max_len=12))
    assert [[h.tokens for h in hyps] for hyps in beamed] == [
        [h.tokens for h in hyps] for hyps in expected
    ]
    for g, b in zip(expected, beamed, strict=True):
        assert b[0].score == pytest.approx(g[0].score, abs=1e-4)
    assert len({len(hyps[0].tokens) for hyps in expected}) > 1  # outputs differ in length


@pytest.mark.parametrize("search", ["greedy", "beam", "beam-coverage"])
def test_batch_equals_one_sentence_at_a_time(search) -> None:
    model = search_model()
    src, src_lengths = search_batch()
    together = SEARCHES[search](model, src, src_lengths)
    for b, s_len in enumerate(src_lengths.tolist()):
        alone = SEARCHES[search](model, src[b : b + 1, :s_len], src_lengths[b : b + 1])[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[b]]
        for a, t in zip(alone, together[b], strict=True):
            assert a.score == pytest.approx(t.score, abs=1e-4)
            assert a.rank_score == pytest.approx(t.rank_score, abs=1e-4)


# ---------------------------------------------------------------------------
# Learning


def test_tiny_transformer_overfits_the_reversal_task() -> None:
    """Reversal needs content-based attention at a position that moves backwards: the
    decoder has to count with its self-attention and positions. One thread: a few
    seconds, even on a busy machine where two OpenMP threads would wait on each other."""
    config = tiny(embed_dim=32, layers=2, ff_dim=64, attention={"heads": 4})
    torch.manual_seed(0)
    model = build_model(config, VOCAB, VOCAB)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        accuracy = train_steps(model, 120, 3e-3, reverse_task(24, seed=2))
    finally:
        torch.set_num_threads(threads)
    assert accuracy == 1.0, f"token accuracy {accuracy:.3f} after 120 steps"


# ---------------------------------------------------------------------------
# Every head reaches the Translator and the plots


def transformer_run(directory: Path) -> Path:
    """A run directory (word tokenizers) holding a random tiny Transformer."""
    run_dir = make_run(directory)
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt").header
    model_config = tiny(layers=2, decoder_layers=1, attention={"heads": 2})
    header = replace(best, config=best.config.model_copy(update={"model": model_config}))
    torch.manual_seed(0)
    model = build_model(model_config, best.src_vocab_size, best.tgt_vocab_size)
    with torch.no_grad():
        model.generator.bias[EOS_ID] += 3.0  # short outputs
    save_checkpoint(run_dir / "checkpoints" / "best.pt", Checkpoint(header, model.state_dict()))
    return run_dir


def test_translator_gives_every_head_on_request(tmp_path: Path) -> None:
    translator = Translator.load(transformer_run(tmp_path / "run"), device="cpu")
    plain = translator.translate(SENTENCES[0], beam=3, n_best=2)
    assert plain.attention_heads is None and plain.encoder_attention is None
    for result in translator.translate(SENTENCES[:3], beam=3, n_best=2, heads=True):
        for hyp in result.hypotheses:
            rows, s_len = len(hyp.tokens) + 1, len(hyp.src_tokens)
            assert hyp.attention is not None and hyp.attention_heads is not None
            assert hyp.attention_heads.shape == (1, 2, rows, s_len)
            # The default map is the mean over the heads of the last layer.
            np.testing.assert_allclose(hyp.attention_heads[-1].mean(0), hyp.attention, atol=1e-5)
            assert hyp.encoder_attention is not None and hyp.decoder_attention is not None
            assert hyp.encoder_attention.shape == (2, 2, s_len, s_len)
            assert hyp.decoder_attention.shape == (1, 2, rows, rows)
            for weights in (hyp.attention_heads, hyp.encoder_attention, hyp.decoder_attention):
                np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
            assert np.all(np.triu(hyp.decoder_attention, k=1) == 0)  # causal
        assert "attention_heads" in result.to_dict()


def test_rnn_heads_are_its_one_layer(tmp_path: Path) -> None:
    translator = Translator.load(make_run(tmp_path / "run"), device="cpu")
    result = translator.translate(SENTENCES[1], heads=True)
    assert result.attention_heads is not None and result.attention is not None
    assert result.attention_heads.shape == (1, 1, *result.attention.shape)
    np.testing.assert_allclose(result.attention_heads[0, 0], result.attention, atol=1e-5)
    assert result.encoder_attention is None and result.decoder_attention is None


def test_plot_draws_one_head_a_layer_or_every_head(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from attnmt.cli.plot import HeadChoice, attention_plot

    run_dir = transformer_run(tmp_path / "run")
    source = SENTENCES[2]

    def panels(choice: HeadChoice, words: bool = False) -> list:
        figure = attention_plot(run_dir, source, words=words, beam=1, heads=choice)
        return [ax for ax in figure.axes if ax.get_label() != "<colorbar>"]

    assert len(panels(HeadChoice(grid=True))) == 2  # 1 decoder layer × 2 heads
    assert len(panels(HeadChoice(map="encoder", grid=True))) == 4  # 2 layers × 2 heads
    assert len(panels(HeadChoice(map="encoder", layer=1, grid=True), words=True)) == 2
    (one,) = panels(HeadChoice(map="decoder", layer=1, head=2))
    assert "head 2 of 2" in one.get_title()
    with pytest.raises(UserError, match="--layer 3: this map has layers 1 to 2"):
        panels(HeadChoice(map="encoder", layer=3))
    with pytest.raises(UserError, match="--head 5"):
        panels(HeadChoice(head=5))
    rnn_dir = make_run(tmp_path / "rnn")
    with pytest.raises(UserError, match="no encoder self-attention"):
        attention_plot(rnn_dir, source, beam=1, heads=HeadChoice(map="encoder"))
