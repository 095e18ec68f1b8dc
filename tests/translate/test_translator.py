"""The Translator API: results in input order whatever the batching, n-best lists,
attention shapes, empty inputs, ensembles, and one-line errors for user mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import SENTENCES, make_run

from attnmt.data.tokenize import WORD_START
from attnmt.errors import UserError
from attnmt.translate.schema import Translation
from attnmt.translate.translator import Translator


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"))


@pytest.fixture(scope="module")
def translator(run_dir: Path) -> Translator:
    return Translator.load(run_dir, device="cpu")


def summary(result: Translation) -> tuple[str, list[str]]:
    return result.text, result.tokens


def test_a_str_gives_one_result_and_a_list_gives_a_list(translator: Translator) -> None:
    one = translator.translate(SENTENCES[0])
    many = translator.translate(SENTENCES[:1])
    assert isinstance(one, Translation)
    assert isinstance(many, list) and len(many) == 1
    assert summary(one) == summary(many[0])
    assert translator.translate([]) == []


@pytest.mark.parametrize("beam", [1, 3])
def test_batching_changes_nothing_and_order_is_kept(translator: Translator, beam: int) -> None:
    alone = [translator.translate(s, beam=beam) for s in SENTENCES]
    lengths = {len(s.split()) for s in SENTENCES}
    assert len(lengths) > 2, "the sentences should have mixed lengths"
    for batch_tokens in (8, 30, 8000):  # one per batch, a few per batch, all at once
        together = translator.translate(SENTENCES, beam=beam, batch_tokens=batch_tokens)
        assert [summary(r) for r in together] == [summary(r) for r in alone]
        for a, b in zip(together, alone, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-4)
            assert a.src_tokens == b.src_tokens


@pytest.mark.parametrize("beam", [1, 3])
def test_the_batch_budget_counts_every_beam_row(
    translator: Translator, beam: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch holds about batch_tokens source tokens of beam rows, whatever the beam."""
    import attnmt.translate.translator as module

    sizes: list[int] = []
    original = module.length_batches

    def recording(lengths: list[int], budget: int) -> list[list[int]]:
        groups = original(lengths, budget)
        sizes.extend(sum(lengths[i] for i in group) for group in groups if len(group) > 1)
        return groups

    monkeypatch.setattr(module, "length_batches", recording)
    translator.translate(SENTENCES, beam=beam, batch_tokens=30)
    assert sizes and all(size * beam <= 30 for size in sizes)


def test_results_describe_their_own_input(translator: Translator) -> None:
    for source, result in zip(SENTENCES, translator.translate(SENTENCES), strict=True):
        assert result.src_tokens == [WORD_START + word for word in source.split()]
        assert result.text == " ".join(token.removeprefix(WORD_START) for token in result.tokens)
        assert result.score <= 0.0


def test_n_best_lists_are_sorted_distinct_and_headed_by_the_result(
    translator: Translator,
) -> None:
    for result in translator.translate(SENTENCES[:4], beam=4, n_best=4):
        hypotheses = result.hypotheses
        assert len(hypotheses) == 4
        ranks = [h.rank_score for h in hypotheses]
        assert ranks == sorted(ranks, reverse=True)
        assert len({tuple(h.tokens) for h in hypotheses}) == 4
        assert summary(hypotheses[0]) == summary(result)
        assert hypotheses[0].score == result.score
        assert all(h.src_tokens == result.src_tokens for h in hypotheses)


def test_attention_has_a_row_per_output_and_eos_each_a_distribution(
    translator: Translator,
) -> None:
    for result in translator.translate(SENTENCES, beam=2, n_best=2):
        for hypothesis in result.hypotheses:
            attention = hypothesis.attention
            assert attention is not None
            assert attention.shape == (len(hypothesis.tokens) + 1, len(result.src_tokens))
            np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-5)
            assert (attention >= 0).all()


def test_word_attention_sums_source_pieces_and_averages_target_pieces() -> None:
    attention = np.array(
        [[0.5, 0.25, 0.25], [0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.2, 0.2, 0.6]]
    )  # 3 target pieces + EOS, 3 source pieces
    result = Translation(
        text="newspaper",
        tokens=["▁new", "s", "▁paper"],
        src_tokens=["▁zei", "tung", "▁."],
        score=-1.0,
        rank_score=-1.0,
        attention=attention,
    )
    src_words, tgt_words, merged = result.word_attention()
    assert src_words == ["zeitung", "."]
    assert tgt_words == ["news", "paper", "</s>"]
    expected = [[0.625, 0.375], [1.0, 0.0], [0.4, 0.6]]  # rows 0,1 averaged; cols 0,1 summed
    np.testing.assert_allclose(merged, expected)
    np.testing.assert_allclose(merged.sum(axis=1), 1.0)


def test_word_attention_of_a_word_level_model_is_the_attention_itself(
    translator: Translator,
) -> None:
    result = translator.translate(SENTENCES[0])
    src_words, tgt_words, merged = result.word_attention()
    assert src_words == SENTENCES[0].split()
    assert tgt_words == [*result.text.split(), "</s>"]
    np.testing.assert_allclose(merged, result.attention, rtol=1e-6)


def test_empty_and_blank_lines_give_empty_translations(translator: Translator) -> None:
    results = translator.translate(["", SENTENCES[1], "   "], beam=2, n_best=2)
    for empty in (results[0], results[2]):
        assert (empty.text, empty.tokens, empty.src_tokens, empty.score) == ("", [], [], 0.0)
        assert empty.attention is not None and empty.attention.shape == (1, 0)
        assert len(empty.hypotheses) == 1
        assert empty.word_attention()[1] == ["</s>"]
    assert summary(results[1]) == summary(translator.translate(SENTENCES[1], beam=2))


def test_seeded_sampling_is_reproducible(translator: Translator) -> None:
    first = translator.translate(SENTENCES[:3], sample=True, seed=7, n_best=2)
    again = translator.translate(SENTENCES[:3], sample=True, seed=7, n_best=2)
    assert [[h.tokens for h in r.hypotheses] for r in first] == [
        [h.tokens for h in r.hypotheses] for r in again
    ]


def test_an_ensemble_of_one_run_twice_decodes_like_the_run(
    run_dir: Path, translator: Translator
) -> None:
    ensemble = Translator.load(run_dir, ensemble=[run_dir], device="cpu")
    for beam in (1, 3):
        single = translator.translate(SENTENCES, beam=beam)
        double = ensemble.translate(SENTENCES, beam=beam)
        assert [summary(r) for r in double] == [summary(r) for r in single]
        for a, b in zip(double, single, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-4)


def test_an_ensemble_needs_identical_tokenizers(run_dir: Path, tmp_path: Path) -> None:
    other = make_run(tmp_path / "other", seed=1, vocab_size=50)
    with pytest.raises(UserError, match="tokenizers differ"):
        Translator.load(run_dir, ensemble=[other], device="cpu")


def test_a_model_without_attention_has_none(tmp_path: Path) -> None:
    plain = Translator.load(make_run(tmp_path / "plain", decoder="none"), device="cpu")
    result = plain.translate(SENTENCES[0])
    assert result.attention is None and result.text
    with pytest.raises(UserError, match="no attention"):
        result.word_attention()


@pytest.mark.parametrize(
    "options,fragment",
    [
        ({"bem": 3}, "unknown key 'decode.bem'"),
        ({"beam": 0}, "decode.beam"),
        ({"beam": 2, "n_best": 3}, "n_best (3) must be at most beam (2)"),
        ({"top_p": 1.5}, "decode.top_p"),
    ],
)
def test_bad_options_are_one_line_user_errors(
    translator: Translator, options: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(UserError) as info:
        translator.translate(SENTENCES[0], **options)
    message = str(info.value)
    assert fragment in message and "\n" not in message


def test_a_missing_run_directory_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="run directory not found"):
        Translator.load(tmp_path / "nowhere")
