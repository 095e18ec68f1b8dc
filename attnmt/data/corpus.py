"""A tokenized corpus, stored compactly and cached on disk.

:func:`load_corpus` tokenizes the pairs of a split once into a :class:`TokenizedCorpus`:
one flat int32 array of token ids per side plus offsets, never a Python list per
sentence. The arrays live on disk in a shard directory (:mod:`attnmt.data.shards`),
written chunk by chunk by parallel workers (:mod:`attnmt.data.preprocess`) and read back
through memory maps, so neither tokenizing nor training holds a corpus in memory: only
its index, the lengths and offsets of the pairs. The next run with the same files,
tokenizers and filters finds the directory and starts at once."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnmt.config import DataConfig, SplitPaths
from attnmt.data.preprocess import Filter, PairTokenizer, tokenize_to_disk
from attnmt.data.shards import VERSION, read_shards
from attnmt.data.text import split_files
from attnmt.data.tokenize import Tokenizer
from attnmt.errors import UserError

SAMPLE_BLOCKS = 16  # blocks of a file hashed into the cache key ...
SAMPLE_BLOCK_BYTES = 64 * 1024  # ... of this size, spread from its start to its end


@dataclass
class CorpusStats:
    pairs: int
    """Pairs kept in the corpus."""
    dropped_empty: int
    """Pairs dropped because one side had no tokens."""
    dropped_long: int
    """Pairs dropped because one side had more than data.max_len tokens."""


class TokenizedCorpus:
    """Token ids of every sentence pair, stored compactly.

    Sentence i of the source side is ``src_tokens[src_offsets[i]:src_offsets[i + 1]]``:
    one int32 array for the whole side and an int64 array of n + 1 offsets, so a corpus of
    millions of sentences costs a few bytes per token and no Python object per sentence.
    The token arrays may be read-only memory maps (as :func:`load_corpus` returns them);
    the offsets and lengths are in memory. Ids carry no BOS/EOS; :func:`make_batch` adds
    them.
    """

    def __init__(
        self,
        src_tokens: np.ndarray,
        src_offsets: np.ndarray,
        tgt_tokens: np.ndarray,
        tgt_offsets: np.ndarray,
        stats: CorpusStats,
    ) -> None:
        if len(src_offsets) != len(tgt_offsets):
            raise ValueError("source and target offsets differ in length")
        self.src_tokens = src_tokens
        self.src_offsets = src_offsets
        self.tgt_tokens = tgt_tokens
        self.tgt_offsets = tgt_offsets
        self.stats = stats
        self.src_lengths: np.ndarray = np.diff(src_offsets).astype(np.int32)  # (N,)
        self.tgt_lengths: np.ndarray = np.diff(tgt_offsets).astype(np.int32)  # (N,)

    @classmethod
    def from_ids(
        cls, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]]
    ) -> TokenizedCorpus:
        """A corpus in memory from pairs of id lists (no BOS/EOS), e.g. candidate
        replies to score by teacher forcing."""
        if len(src_ids) != len(tgt_ids):
            raise ValueError(f"{len(src_ids)} sources for {len(tgt_ids)} targets")
        src_tokens, src_offsets = _flat(src_ids)
        tgt_tokens, tgt_offsets = _flat(tgt_ids)
        stats = CorpusStats(len(src_ids), 0, 0)
        return cls(src_tokens, src_offsets, tgt_tokens, tgt_offsets, stats)

    def __len__(self) -> int:
        return len(self.src_lengths)

    def src(self, i: int) -> np.ndarray:
        """Source token ids of pair i (a view, no copy)."""
        return self.src_tokens[self.src_offsets[i] : self.src_offsets[i + 1]]

    def tgt(self, i: int) -> np.ndarray:
        """Target token ids of pair i (a view, no copy)."""
        return self.tgt_tokens[self.tgt_offsets[i] : self.tgt_offsets[i + 1]]


def _flat(rows: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Id lists -> one int32 array of every token (T,) and the offsets (N + 1,)."""
    lengths = np.fromiter((len(row) for row in rows), np.int64, len(rows))  # (N,)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)  # (N + 1,)
    tokens = np.asarray([token for row in rows for token in row], dtype=np.int32)  # (T,)
    return tokens, offsets


def _describe_file(path: Path) -> list[object]:
    """Path, size, modification time and a hash of a sample of the content.

    The sample is SAMPLE_BLOCKS blocks spread evenly over the file, first and last
    included: an edit that keeps the size and the time (a restored backup, a copy with
    preserved times) still changes the key unless it falls between blocks, and a cache
    hit on a corpus of gigabytes reads one megabyte of it.
    """
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        span = max(stat.st_size - SAMPLE_BLOCK_BYTES, 0)
        for k in range(SAMPLE_BLOCKS):
            handle.seek(span * k // (SAMPLE_BLOCKS - 1))
            digest.update(handle.read(SAMPLE_BLOCK_BYTES))
    return [str(path.resolve()), stat.st_size, stat.st_mtime_ns, digest.hexdigest()]


def _cache_key(
    files: list[Path],
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    config: DataConfig,
    filter_pairs: bool,
) -> str:
    """sha256 naming everything a cached corpus depends on: the files (path, size,
    modification time and a content sample, see :func:`_describe_file`), the tokenizers
    (a hash of their model bytes) and the config fields that change which pairs are
    kept."""
    described = {
        "version": VERSION,
        "files": [_describe_file(path) for path in files],  # a TSV, or source and target
        "src_tokenizer": src_tok.fingerprint(),
        "tgt_tokenizer": tgt_tok.fingerprint(),
        "filter_pairs": filter_pairs,
        "max_len": config.max_len if filter_pairs else None,
        "drop_empty": config.drop_empty if filter_pairs else None,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def load_corpus(
    split: SplitPaths,
    name: str,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    config: DataConfig,
    cache_dir: Path,
    filter_pairs: bool = True,
    workers: int | None = None,
) -> TokenizedCorpus:
    """Tokenize one split, or load it from `cache_dir` if nothing it depends on changed.

    With `filter_pairs` (training), pairs with an empty side are dropped and counted (an
    error if data.drop_empty is false) and so are pairs with more than data.max_len tokens
    on either side. Without it (dev/test), every line is kept so indices match the file.
    `workers` processes tokenize a large split (None: one per core, at most 8). See
    :func:`_cache_key` for what invalidates the cache.
    """
    files = split_files(split, name)  # a missing file or split fails here, before hashing
    key = _cache_key(files, src_tok, tgt_tok, config, filter_pairs)
    directory = Path(cache_dir) / f"{name}-{key[:24]}"
    arrays = read_shards(directory)
    if arrays is None:
        if directory.exists():  # damaged or from an older layout: build it again
            shutil.rmtree(directory)
        pair_tokenizer = PairTokenizer(src_tok, tgt_tok, Filter.of(config, filter_pairs))
        tokenize_to_disk(split, name, pair_tokenizer, directory, workers)
        arrays = read_shards(directory)
        if arrays is None:
            raise UserError(f"{directory}: the tokenized corpus just written cannot be read")
    pairs = len(arrays.src_offsets) - 1
    return TokenizedCorpus(
        arrays.src_tokens,
        arrays.src_offsets,
        arrays.tgt_tokens,
        arrays.tgt_offsets,
        CorpusStats(pairs, arrays.dropped_empty, arrays.dropped_long),
    )
