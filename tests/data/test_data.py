"""Reading parallel text, the cached tokenized corpus, batches and the batch sampler."""

from __future__ import annotations

import gzip
import itertools
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from attnmt.config import DataConfig, SplitPaths
from attnmt.data.batching import BatchSampler, make_batch
from attnmt.data.corpus import CorpusStats, TokenizedCorpus, load_corpus
from attnmt.data.text import read_parallel
from attnmt.data.tokenize import WordTokenizer
from attnmt.errors import UserError
from attnmt.special import BOS_ID, EOS_ID, PAD_ID

# ---------------------------------------------------------------------------
# read_parallel


def write(path: Path, lines: list[str], ending: str = "\n") -> Path:
    data = "".join(line + ending for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def pair_split(tmp_path: Path, src: list[str], tgt: list[str], suffix: str = "") -> SplitPaths:
    return SplitPaths(
        src=str(write(tmp_path / f"s.txt{suffix}", src)),
        tgt=str(write(tmp_path / f"t.txt{suffix}", tgt)),
    )


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_read_two_files(tmp_path: Path, suffix: str) -> None:
    split = pair_split(tmp_path, ["a b", "", "c"], ["x", "y y", "z"], suffix)
    assert list(read_parallel(split, "train")) == [("a b", "x"), ("", "y y"), ("c", "z")]


def test_read_tsv_strips_crlf_and_bom(tmp_path: Path) -> None:
    tsv = write(tmp_path / "p.tsv", ["\ufeffa b\tx", "c\ty z"], ending="\r\n")
    assert list(read_parallel(SplitPaths(tsv=str(tsv)), "dev")) == [("a b", "x"), ("c", "y z")]


def test_read_is_lazy(tmp_path: Path) -> None:
    split = pair_split(tmp_path, ["a"] * 1000, ["b"] * 1000)
    assert next(iter(read_parallel(split, "train"))) == ("a", "b")


def test_split_not_given() -> None:
    with pytest.raises(UserError, match=r"^data\.test: no src/tgt or tsv given$"):
        read_parallel(SplitPaths(), "test")


def test_missing_file(tmp_path: Path) -> None:
    split = SplitPaths(src=str(write(tmp_path / "s", ["a"])), tgt=str(tmp_path / "nope"))
    with pytest.raises(UserError, match=r"data\.train: file not found: .*nope"):
        read_parallel(split, "train")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a directory"):
        read_parallel(SplitPaths(tsv=str(tmp_path)), "train")


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_invalid_utf8_names_file_and_line(tmp_path: Path, suffix: str) -> None:
    split = pair_split(tmp_path, ["a", "b", "c"], ["x", "y", "z"], suffix)
    bad = b"x\ny\nz\xff\xfe\n"
    assert split.tgt is not None
    Path(split.tgt).write_bytes(gzip.compress(bad) if suffix else bad)
    with pytest.raises(UserError, match=rf"t\.txt{suffix}:3: invalid UTF-8"):
        list(read_parallel(split, "train"))


@pytest.mark.parametrize(("n_src", "n_tgt"), [(5, 3), (3, 5)])
def test_mismatched_line_counts(tmp_path: Path, n_src: int, n_tgt: int) -> None:
    split = pair_split(tmp_path, ["a"] * n_src, ["b"] * n_tgt)
    with pytest.raises(UserError, match=rf"s\.txt has {n_src} lines but .*t\.txt has {n_tgt}"):
        list(read_parallel(split, "train"))


@pytest.mark.parametrize("bad_line", ["no tab here", "one\ttwo\tthree"])
def test_tsv_line_needs_exactly_one_tab(tmp_path: Path, bad_line: str) -> None:
    tsv = write(tmp_path / "p.tsv", ["a\tb", "c\td", bad_line])
    with pytest.raises(UserError, match=r"p\.tsv:3: expected source<TAB>target"):
        list(read_parallel(SplitPaths(tsv=str(tsv)), "train"))


def test_corrupt_gzip(tmp_path: Path) -> None:
    tsv = tmp_path / "p.tsv.gz"
    tsv.write_bytes(gzip.compress(b"a\tb\n" * 100)[:-20])
    with pytest.raises(UserError, match="corrupt gzip"):
        list(read_parallel(SplitPaths(tsv=str(tsv)), "train"))


# ---------------------------------------------------------------------------
# load_corpus

WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "ran", "fast", "red", "blue"]


class CountingTokenizer(WordTokenizer):
    """A word tokenizer that counts encode calls, to tell a cache hit from a rebuild."""

    calls = 0

    def encode(self, text: str) -> list[int]:
        CountingTokenizer.calls += 1
        return super().encode(text)


def tokenizer() -> CountingTokenizer:
    return CountingTokenizer(WordTokenizer.build([" ".join(WORDS)], vocab_size=100).pieces)


def random_lines(n: int, rng: np.random.Generator, max_words: int = 12) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, max_words + 1))) for _ in range(n)]


def data_config(**fields: Any) -> DataConfig:
    return DataConfig.model_validate(fields)


def test_corpus_holds_the_token_ids(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    src, tgt = random_lines(50, rng), random_lines(50, rng)
    tok = tokenizer()
    corpus = load_corpus(
        pair_split(tmp_path, src, tgt), "train", tok, tok, data_config(), tmp_path / "cache"
    )
    assert len(corpus) == corpus.stats.pairs == 50
    assert corpus.src_tokens.dtype == np.int32 and corpus.src_offsets.dtype == np.int64
    assert len(corpus.src_tokens) == sum(len(line.split()) for line in src)  # flat, no slack
    for i in (0, 17, 49):
        assert corpus.src(i).tolist() == tok.encode(src[i])
        assert corpus.tgt(i).tolist() == tok.encode(tgt[i])
        assert corpus.src_lengths[i] == len(src[i].split())


def test_filters_empty_and_long_pairs(tmp_path: Path) -> None:
    src = ["a cat", "", "the dog", "a " * 6, "cat", "   ", "cat"]
    tgt = ["a dog", "the cat", "", "dog", "the " * 7, "mat", "mat"]
    split = pair_split(tmp_path, src, tgt)
    tok = tokenizer()
    config = data_config(max_len=5)
    corpus = load_corpus(split, "train", tok, tok, config, tmp_path / "cache")
    assert (corpus.stats.pairs, corpus.stats.dropped_empty, corpus.stats.dropped_long) == (2, 3, 2)
    assert [corpus.src(i).tolist() for i in range(len(corpus))] == [
        tok.encode("a cat"),
        tok.encode("cat"),
    ]

    unfiltered = load_corpus(split, "dev", tok, tok, config, tmp_path / "cache", filter_pairs=False)
    assert len(unfiltered) == len(src)  # dev/test keep every line, so indices match the file
    assert unfiltered.src_lengths.tolist() == [len(line.split()) for line in src]


def test_empty_pair_is_an_error_without_drop_empty(tmp_path: Path) -> None:
    split = pair_split(tmp_path, ["a cat", "the dog", "cat"], ["a dog", "", "mat"])
    tok = tokenizer()
    with pytest.raises(UserError, match=r"data\.train: empty sentence at .*t\.txt:2"):
        load_corpus(split, "train", tok, tok, data_config(drop_empty=False), tmp_path / "cache")


def test_cache_is_hit_and_invalidated(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    split = pair_split(tmp_path, random_lines(30, rng), random_lines(30, rng))
    tok, cache = tokenizer(), tmp_path / "cache"

    def load(config: DataConfig) -> tuple[TokenizedCorpus, int]:
        before = CountingTokenizer.calls
        corpus = load_corpus(split, "train", tok, tok, config, cache)
        return corpus, CountingTokenizer.calls - before

    first, calls = load(data_config(max_len=8))
    assert calls == 60
    second, calls = load(data_config(max_len=8))
    assert calls == 0  # read from the .npz
    assert np.array_equal(first.src_tokens, second.src_tokens)
    assert np.array_equal(first.tgt_offsets, second.tgt_offsets)
    assert first.stats == second.stats
    (shards,) = cache.iterdir()  # one shard directory, no temporary one left behind
    assert shards.name.startswith("train-") and (shards / "meta.json").is_file()

    assert load(data_config(max_len=9))[1] == 60  # a relevant setting changed
    assert load(data_config(max_len=9, vocab_size=99))[1] == 0  # an irrelevant one did not
    assert split.src is not None
    with open(split.src, "a") as handle:
        handle.write("")  # contents unchanged, but the file was touched
    os.utime(split.src, ns=(0, 0))
    assert load(data_config(max_len=9))[1] == 60

    other = CountingTokenizer(tok.pieces[:-1])  # a different vocabulary
    before = CountingTokenizer.calls
    load_corpus(split, "train", other, other, data_config(max_len=9), cache)
    assert CountingTokenizer.calls - before == 60


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_damaged_cache_is_rebuilt(tmp_path: Path, damage: str) -> None:
    split = pair_split(tmp_path, ["a cat", "the dog"], ["a dog", "the mat"])
    tok, cache = tokenizer(), tmp_path / "cache"
    first = load_corpus(split, "train", tok, tok, data_config(), cache)
    expected = np.array(first.src_tokens)  # a copy: `first` maps the file damaged below
    (shards,) = cache.iterdir()
    tokens = shards / "src.tokens.npy"
    data = tokens.read_bytes()
    tokens.write_bytes(b"not an array" if damage == "garbage" else data[: len(data) // 2])
    before = CountingTokenizer.calls
    again = load_corpus(split, "train", tok, tok, data_config(), cache)
    assert CountingTokenizer.calls - before == 4  # tokenized again
    assert np.array_equal(expected, again.src_tokens)
    assert load_corpus(split, "train", tok, tok, data_config(), cache).stats == first.stats


# ---------------------------------------------------------------------------
# make_batch


def corpus_of(src: list[list[int]], tgt: list[list[int]]) -> TokenizedCorpus:
    def flat(side: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        tokens = np.array([t for s in side for t in s], dtype=np.int32)
        offsets = np.concatenate([[0], np.cumsum([len(s) for s in side])]).astype(np.int64)
        return tokens, offsets

    return TokenizedCorpus(*flat(src), *flat(tgt), stats=CorpusStats(len(src), 0, 0))


def random_corpus(n: int, seed: int = 0, max_len: int = 40) -> TokenizedCorpus:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, max_len, size=(2, n))
    src = [rng.integers(4, 50, size=k).tolist() for k in lengths[0]]
    tgt = [rng.integers(4, 50, size=k).tolist() for k in lengths[1]]
    return corpus_of(src, tgt)


def test_make_batch_shapes_and_specials() -> None:
    corpus = random_corpus(20)
    indices = [3, 0, 11, 7]
    batch = make_batch(corpus, indices)
    src_lengths = corpus.src_lengths[indices]
    tgt_lengths = corpus.tgt_lengths[indices]
    assert batch.src.shape == (4, src_lengths.max())
    assert batch.tgt_in.shape == batch.tgt_out.shape == (4, tgt_lengths.max() + 1)
    assert batch.src.dtype == batch.tgt_in.dtype == batch.src_lengths.dtype == torch.long
    assert batch.indices.tolist() == indices
    assert batch.src_lengths.tolist() == src_lengths.tolist()
    assert batch.n_tgt_tokens == int(tgt_lengths.sum()) + 4
    for row, i in enumerate(indices):
        s, t = len(corpus.src(i)), len(corpus.tgt(i))
        assert batch.src[row, :s].tolist() == corpus.src(i).tolist()
        assert (batch.src[row, s:] == PAD_ID).all()
        assert batch.tgt_in[row, 0] == BOS_ID
        assert batch.tgt_in[row, 1 : t + 1].tolist() == corpus.tgt(i).tolist()
        assert batch.tgt_out[row, :t].tolist() == corpus.tgt(i).tolist()
        assert batch.tgt_out[row, t] == EOS_ID
        assert (batch.tgt_in[row, t + 1 :] == PAD_ID).all()
        assert (batch.tgt_out[row, t + 1 :] == PAD_ID).all()
    moved = batch.to("cpu")
    assert torch.equal(moved.tgt_out, batch.tgt_out)


def test_make_batch_with_empty_sides() -> None:
    batch = make_batch(corpus_of([[], []], [[], [5]]), [0, 1])
    assert batch.src.shape == (2, 1) and (batch.src == PAD_ID).all()
    assert batch.src_lengths.tolist() == [0, 0]
    assert batch.tgt_out.tolist() == [[EOS_ID, PAD_ID], [5, EOS_ID]]
    assert batch.tgt_in.tolist() == [[BOS_ID, PAD_ID], [BOS_ID, 5]]


# ---------------------------------------------------------------------------
# BatchSampler


def sampler_for(corpus: TokenizedCorpus, **kwargs: Any) -> BatchSampler:
    settings: dict[str, Any] = dict(batch_tokens=200, shuffle=True, seed=0) | kwargs
    return BatchSampler(corpus.src_lengths, corpus.tgt_lengths, **settings)


def cost(corpus: TokenizedCorpus, batch: list[int]) -> int:
    """B * max(S, T + 1), as make_batch pads it."""
    made = make_batch(corpus, batch)
    return made.src.shape[0] * max(made.src.shape[1], made.tgt_in.shape[1])


@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_cover_every_index_once_within_budget(shuffle: bool) -> None:
    corpus = random_corpus(300)
    sampler = sampler_for(corpus, shuffle=shuffle)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(itertools.chain(*batches)) == list(range(300))
    assert all(cost(corpus, batch) <= 200 for batch in batches)
    assert sampler.epoch == 1


def test_over_long_sentence_gets_its_own_batch() -> None:
    corpus = corpus_of([[5] * 3, [5] * 50, [5] * 2], [[6] * 2, [6] * 4, [6] * 3])
    batches = list(sampler_for(corpus, batch_tokens=20))
    assert [1] in batches
    assert sorted(itertools.chain(*batches)) == [0, 1, 2]


def test_order_is_deterministic_per_seed_and_changes_per_epoch() -> None:
    corpus = random_corpus(300)
    a, b, c = sampler_for(corpus, seed=1), sampler_for(corpus, seed=1), sampler_for(corpus, seed=2)
    epoch0, epoch1 = list(a), list(a)
    assert epoch0 == list(b) and epoch1 == list(b)
    assert epoch0 != epoch1
    assert epoch0 != list(c)


def test_unshuffled_order_is_fixed_and_sorted_by_length() -> None:
    corpus = random_corpus(300)
    sampler = sampler_for(corpus, shuffle=False)
    first, second = list(sampler), list(sampler)
    assert first == second
    widths = [max(corpus.src_lengths[i], corpus.tgt_lengths[i] + 1) for i in first[0] + first[-1]]
    assert widths == sorted(widths)


def test_resume_mid_epoch_matches_uninterrupted_run() -> None:
    corpus = random_corpus(300)
    reference = sampler_for(corpus, seed=3)
    expected = [list(reference) for _ in range(3)]  # epochs 0, 1, 2

    interrupted = sampler_for(corpus, seed=3)
    list(interrupted)  # epoch 0
    taken = list(itertools.islice(iter(interrupted), 5))  # 5 batches of epoch 1
    state = interrupted.state_dict()
    assert taken == expected[1][:5]

    resumed = sampler_for(corpus, seed=3)
    resumed.load_state_dict(state)
    assert list(resumed) == expected[1][5:]
    assert list(resumed) == expected[2]


def test_breaking_off_continues_from_the_same_position() -> None:
    corpus = random_corpus(300)
    sampler, reference = sampler_for(corpus), sampler_for(corpus)
    head = list(itertools.islice(iter(sampler), 3))
    assert head + list(sampler) == list(reference)


def test_bad_state_is_rejected() -> None:
    sampler = sampler_for(random_corpus(50))
    with pytest.raises(UserError, match="batch sampler state"):
        sampler.load_state_dict({"epoch": 0, "position": len(sampler) + 1})


def test_length_bucketing_pads_less_than_random_batches() -> None:
    corpus = random_corpus(2000, max_len=60)
    batches = list(sampler_for(corpus, batch_tokens=600))
    real = int((np.maximum(corpus.src_lengths, corpus.tgt_lengths + 1)).sum())
    bucketed = sum(cost(corpus, batch) for batch in batches)
    # The same batch sizes filled with random sentences.
    order = np.random.default_rng(0).permutation(len(corpus)).tolist()
    ends = list(itertools.accumulate(len(batch) for batch in batches))
    starts = [0, *ends[:-1]]
    random_cost = sum(cost(corpus, order[a:b]) for a, b in zip(starts, ends, strict=True))
    assert bucketed - real < 0.1 * real  # under 10% padding
    assert bucketed - real < 0.2 * (random_cost - real)  # a fifth of random batching's
