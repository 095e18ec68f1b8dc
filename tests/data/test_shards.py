"""Sharding: each rank's batches per epoch, and the on-disk shard directories that
parallel preprocessing writes and training reads through memory maps."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from attnmt.config import DataConfig, SplitPaths
from attnmt.data import preprocess
from attnmt.data.batching import BatchSampler
from attnmt.data.corpus import load_corpus
from attnmt.data.preprocess import Filter, PairTokenizer, tokenize_to_disk
from attnmt.data.shards import ShardWriter, npy_header, read_shards
from attnmt.data.tokenize import WordTokenizer
from attnmt.errors import UserError

# ---------------------------------------------------------------------------
# BatchSampler shards


def lengths(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 40, size=n), rng.integers(0, 40, size=n)


def samplers(n: int, world_size: int, batch_tokens: int = 150) -> list[BatchSampler]:
    src, tgt = lengths(n)
    return [
        BatchSampler(src, tgt, batch_tokens, shuffle=True, seed=3, rank=r, world_size=world_size)
        for r in range(world_size)
    ]


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_shards_cover_every_pair_once_per_epoch(world_size: int) -> None:
    ranks = samplers(501, world_size)
    widths = ranks[0].widths
    orders = []
    for _epoch in range(3):
        shards = [list(sampler) for sampler in ranks]  # one epoch on every rank
        assert len({len(shard) for shard in shards}) == 1  # the same number of steps
        assert all(len(shard) == len(ranks[0]) for shard in shards)
        pairs = [i for shard in shards for batch in shard for i in batch]
        assert sorted(pairs) == list(range(501))  # disjoint, and nothing left out
        for shard in shards:
            assert all(len(b) * widths[b].max() <= 150 or len(b) == 1 for b in map(np.array, shard))
        orders.append(shards[0])
    assert orders[0] != orders[1] != orders[2]  # each epoch draws a new order
    assert list(samplers(501, world_size)[0]) == orders[0]  # seed and epoch decide it


def test_ranks_draw_their_shards_from_one_epoch_order() -> None:
    one = samplers(300, 1)[0]
    two = samplers(300, 2)
    # Rank r takes batches r, r + 2, r + 4 ... of the order every rank draws alike.
    everything = two[0]._epoch_batches(0)
    assert [b.tolist() for b in everything[0::2]] == list(two[0])
    assert [b.tolist() for b in everything[1::2]] == list(two[1])
    assert sorted(i for b in everything for i in b) == sorted(i for b in one for i in b)


def test_a_sharded_sampler_resumes_where_it_stopped() -> None:
    first = samplers(400, 2)[1]
    taken = []
    for k, batch in enumerate(first):
        taken.append(batch)
        if k == 4:
            state = first.state_dict()
            break
    resumed = samplers(400, 2)[1]
    resumed.load_state_dict(state)
    straight = samplers(400, 2)[1]
    assert taken + list(resumed) + list(resumed) == list(straight) + list(straight)


def test_a_state_from_another_world_size_keeps_the_epoch_fraction() -> None:
    two = samplers(400, 2)[0]
    for k, _ in enumerate(two):
        if k == 5:
            break
    state = two.state_dict()  # 6 batches on each of 2 ranks: 12 of the epoch
    alone = samplers(400, 1)[0]
    alone.load_state_dict(state)
    assert (alone.epoch, alone.position) == (0, 12)


def test_too_few_pairs_for_the_ranks_is_a_clear_error() -> None:
    with pytest.raises(UserError, match="processes"):
        BatchSampler(np.array([50]), np.array([50]), 10, True, 0, rank=0, world_size=2)


# ---------------------------------------------------------------------------
# Shard directories


def test_reserved_header_makes_a_standard_npy_file(tmp_path: Path) -> None:
    values = np.arange(1000, dtype=np.int32)
    path = tmp_path / "a.npy"
    path.write_bytes(npy_header(len(values)) + values.tobytes())
    loaded = np.load(path, mmap_mode="r")
    assert isinstance(loaded, np.memmap) and np.array_equal(loaded, values)


def test_writer_appends_chunks_and_reader_maps_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    writer = ShardWriter(tmp_path / "corpus")
    sides: dict[str, list[list[int]]] = {"src": [], "tgt": []}
    for _ in range(5):
        chunk = {}
        for side in sides:
            sentences = [rng.integers(0, 99, size=rng.integers(0, 9)).tolist() for _ in range(7)]
            sides[side] += sentences
            flat = np.array([t for s in sentences for t in s], dtype=np.int32)
            chunk[side] = (flat, np.array([len(s) for s in sentences], dtype=np.int32))
        writer.add(*chunk["src"], *chunk["tgt"], dropped_empty=1, dropped_long=2)
    writer.finish()
    assert [p.name for p in tmp_path.iterdir()] == ["corpus"]  # no temporary left
    arrays = read_shards(tmp_path / "corpus")
    assert arrays is not None
    assert isinstance(arrays.src_tokens, np.memmap) and not arrays.src_tokens.flags.writeable
    assert (arrays.dropped_empty, arrays.dropped_long) == (5, 10)
    for side in sides:
        tokens, offsets = getattr(arrays, f"{side}_tokens"), getattr(arrays, f"{side}_offsets")
        got = [tokens[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
        assert got == sides[side]


def test_an_abandoned_or_empty_corpus(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path / "broken")
    writer.add(np.array([1, 2], np.int32), np.array([2], np.int32), *[np.zeros(0, np.int32)] * 2)
    writer.abandon()
    assert list(tmp_path.iterdir()) == [] and read_shards(tmp_path / "broken") is None
    empty = ShardWriter(tmp_path / "empty")
    empty.finish()
    arrays = read_shards(tmp_path / "empty")
    assert arrays is not None and len(arrays.src_tokens) == 0 and arrays.src_offsets.tolist() == [0]


# ---------------------------------------------------------------------------
# Parallel preprocessing


WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "ran", "fast", "red", "blue"]


def write_pairs(tmp_path: Path, n: int, seed: int = 0) -> SplitPaths:
    rng = np.random.default_rng(seed)

    def line() -> str:  # now and then empty or long, to exercise the filters
        return " ".join(rng.choice(WORDS, size=rng.choice([0, 1, 3, 5, 8, 30])))

    lines = [(line(), line()) for _ in range(n)]
    (tmp_path / "s.txt").write_text("".join(s + "\n" for s, _ in lines))
    (tmp_path / "t.txt").write_text("".join(t + "\n" for _, t in lines))
    return SplitPaths(src=str(tmp_path / "s.txt"), tgt=str(tmp_path / "t.txt"))


def test_workers_write_what_one_process_writes(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(preprocess, "CHUNK_PAIRS", 37)  # many chunks from a small file
    split = write_pairs(tmp_path, 1000)
    tok = WordTokenizer.build([" ".join(WORDS)], 100)
    encoder = PairTokenizer(tok, tok, Filter(enabled=True, max_len=20, drop_empty=True))
    tokenize_to_disk(split, "train", encoder, tmp_path / "one", workers=1)
    tokenize_to_disk(split, "train", encoder, tmp_path / "three", workers=3)
    one, three = read_shards(tmp_path / "one"), read_shards(tmp_path / "three")
    assert one is not None and three is not None
    assert one.dropped_empty > 0 and one.dropped_long > 0
    assert (one.dropped_empty, one.dropped_long) == (three.dropped_empty, three.dropped_long)
    for name in ("src_tokens", "src_offsets", "tgt_tokens", "tgt_offsets"):
        assert np.array_equal(getattr(one, name), getattr(three, name)), name
    kept = len(one.src_offsets) - 1
    assert kept + one.dropped_empty + one.dropped_long == 1000


def test_an_empty_line_in_a_late_chunk_is_named(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(preprocess, "CHUNK_PAIRS", 10)
    src = ["a cat"] * 53 + [""] + ["the dog"] * 20
    (tmp_path / "s.txt").write_text("".join(s + "\n" for s in src))
    (tmp_path / "t.txt").write_text("a dog\n" * len(src))
    split = SplitPaths(src=str(tmp_path / "s.txt"), tgt=str(tmp_path / "t.txt"))
    tok = WordTokenizer.build([" ".join(WORDS)], 100)
    encoder = PairTokenizer(tok, tok, Filter(enabled=True, max_len=20, drop_empty=False))
    with pytest.raises(UserError, match=r"s\.txt:54 \(set data\.drop_empty"):
        tokenize_to_disk(split, "train", encoder, tmp_path / "out", workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.txt", "t.txt"]  # nothing left


def test_cache_key_sees_an_edit_that_keeps_size_and_time(tmp_path: Path) -> None:
    split = write_pairs(tmp_path, 200)
    tok = WordTokenizer.build([" ".join(WORDS)], 100)
    config = DataConfig()
    first = load_corpus(split, "train", tok, tok, config, tmp_path / "cache")
    path = Path(str(split.src))
    stat = path.stat()
    text = path.read_text()
    path.write_text(text.replace("cat", "dog", 1) if "cat" in text else "dog" + text[3:])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as a restored backup would be
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    second = load_corpus(split, "train", tok, tok, config, tmp_path / "cache")
    assert len(list((tmp_path / "cache").iterdir())) == 2  # a new key, tokenized again
    assert not np.array_equal(np.asarray(first.src_tokens), np.asarray(second.src_tokens))
