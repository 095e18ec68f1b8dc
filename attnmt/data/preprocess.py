"""Tokenizing a corpus bigger than memory: chunks in parallel, written straight to disk.

:func:`tokenize_to_disk` reads a split as a stream of chunks of `CHUNK_PAIRS` pairs.
A pool of worker processes tokenizes the chunks (sentencepiece encodes a whole chunk in
one call) and filters them; the main process appends each chunk's token ids to the
files of a shard directory (:mod:`attnmt.data.shards`) in corpus order, as they come
back. At most two chunks per worker are in flight, so memory is the same for a
thousand pairs or fifty million: only the index (one length per pair and side) grows
with the corpus, by 8 bytes per pair.

A corpus of a single chunk is tokenized in the main process: starting workers would
cost more than it saves.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult
from pathlib import Path

import numpy as np

from attnmt.config import DataConfig, SplitPaths
from attnmt.data.shards import ShardWriter
from attnmt.data.text import read_parallel
from attnmt.data.tokenize import Tokenizer
from attnmt.errors import UserError

CHUNK_PAIRS = 10_000  # pairs a worker tokenizes at a time
MAX_WORKERS = 8  # default cap on worker processes (reading the text limits speed beyond)


@dataclass(frozen=True)
class Filter:
    """Which pairs to keep: training drops empty and over-long pairs; dev and test keep
    every line so that indices match the file."""

    enabled: bool
    max_len: int
    drop_empty: bool

    @classmethod
    def of(cls, config: DataConfig, enabled: bool) -> Filter:
        return cls(enabled, config.max_len, config.drop_empty)


@dataclass
class EncodedChunk:
    """One chunk's kept pairs as flat arrays, and what was dropped."""

    src_tokens: np.ndarray  # (tokens,) int32, the kept sources end to end
    src_lengths: np.ndarray  # (pairs,) int32
    tgt_tokens: np.ndarray
    tgt_lengths: np.ndarray
    dropped_empty: int
    dropped_long: int
    first_empty: tuple[int, bool, bool] | None  # (line, source empty, target empty)


class PairTokenizer:
    """Tokenizes and filters chunks of pairs; one lives in each worker process."""

    def __init__(self, src_tok: Tokenizer, tgt_tok: Tokenizer, keep: Filter) -> None:
        self.src_tok = src_tok
        self.tgt_tok = tgt_tok
        self.keep = keep

    def __call__(self, pairs: list[tuple[str, str]], first_line: int) -> EncodedChunk:
        """Encode `pairs`, whose first is line `first_line` of the split."""
        src_ids = self.src_tok.encode_batch([src for src, _ in pairs])
        tgt_ids = self.tgt_tok.encode_batch([tgt for _, tgt in pairs])
        kept: list[int] = []
        dropped_empty = dropped_long = 0
        first_empty = None
        for i, (src, tgt) in enumerate(zip(src_ids, tgt_ids, strict=True)):
            if self.keep.enabled and not (src and tgt):
                if first_empty is None:
                    first_empty = (first_line + i, not src, not tgt)
                dropped_empty += 1
            elif self.keep.enabled and max(len(src), len(tgt)) > self.keep.max_len:
                dropped_long += 1
            else:
                kept.append(i)
        return EncodedChunk(
            *_flatten([src_ids[i] for i in kept]),
            *_flatten([tgt_ids[i] for i in kept]),
            dropped_empty,
            dropped_long,
            first_empty,
        )


def _flatten(sentences: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, lengths) as int32 arrays."""
    lengths = np.fromiter(map(len, sentences), dtype=np.int32, count=len(sentences))
    total = int(lengths.sum())
    flat = itertools.chain.from_iterable(sentences)
    return np.fromiter(flat, dtype=np.int32, count=total), lengths


_WORKER_TOKENIZER: PairTokenizer | None = None  # set in each worker process by _start_worker


def _start_worker(pair_tokenizer: PairTokenizer) -> None:
    global _WORKER_TOKENIZER
    _WORKER_TOKENIZER = pair_tokenizer


def _encode_in_worker(pairs: list[tuple[str, str]], first_line: int) -> EncodedChunk:
    assert _WORKER_TOKENIZER is not None, "the pool initializer sets the tokenizer"
    return _WORKER_TOKENIZER(pairs, first_line)


def default_workers() -> int:
    """One worker per CPU core this process may use, at most MAX_WORKERS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def _chunks(split: SplitPaths, name: str) -> Iterator[tuple[list[tuple[str, str]], int]]:
    """(pairs, line number of the first) for consecutive chunks of the split."""
    pairs = read_parallel(split, name)
    first_line = 1
    while chunk := list(itertools.islice(pairs, CHUNK_PAIRS)):
        yield chunk, first_line
        first_line += len(chunk)


def _context() -> multiprocessing.context.BaseContext:
    """fork where the platform has it: workers start at once with the tokenizers already
    in memory (the parent has loaded torch, which spawned workers would import again);
    spawn elsewhere."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def tokenize_to_disk(
    split: SplitPaths,
    name: str,
    pair_tokenizer: PairTokenizer,
    directory: Path,
    workers: int | None = None,
) -> None:
    """Tokenize `split` into the shard directory `directory`, written atomically.

    `workers` processes tokenize in parallel (None: :func:`default_workers`). With the
    filter on and data.drop_empty false, the first empty sentence is an error naming
    its line.
    """
    workers = workers or default_workers()
    chunks = _chunks(split, name)
    head = list(itertools.islice(chunks, 2))
    everything = itertools.chain(head, chunks)
    if len(head) < 2 or workers == 1:
        encoded: Generator[EncodedChunk, None, None] = (pair_tokenizer(*c) for c in everything)
    else:
        encoded = _encode_in_pool(pair_tokenizer, everything, workers)
    writer = ShardWriter(directory)
    try:
        for chunk in encoded:
            if chunk.first_empty is not None and not pair_tokenizer.keep.drop_empty:
                line, src_empty, tgt_empty = chunk.first_empty
                where = _empty_location(split, line, src_empty, tgt_empty)
                raise UserError(
                    f"data.{name}: empty sentence at {where} (set data.drop_empty=true to drop)"
                )
            writer.add(
                chunk.src_tokens,
                chunk.src_lengths,
                chunk.tgt_tokens,
                chunk.tgt_lengths,
                chunk.dropped_empty,
                chunk.dropped_long,
            )
        writer.finish()
    except BaseException:
        writer.abandon()
        raise
    finally:
        encoded.close()  # stops the pool's workers if we left early


def _encode_in_pool(
    pair_tokenizer: PairTokenizer, chunks: Iterator[tuple[list[tuple[str, str]], int]], workers: int
) -> Generator[EncodedChunk, None, None]:
    """Encoded chunks in corpus order, from `workers` processes with at most two chunks
    each in flight (so reading never runs ahead of them by more)."""
    with _context().Pool(workers, initializer=_start_worker, initargs=(pair_tokenizer,)) as pool:
        pending: deque[AsyncResult[EncodedChunk]] = deque()
        for chunk in chunks:
            pending.append(pool.apply_async(_encode_in_worker, chunk))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _empty_location(split: SplitPaths, line: int, src_empty: bool, tgt_empty: bool) -> str:
    """'file:line' of the empty side(s) of a pair, for error messages."""
    if split.tsv is not None:
        return f"{split.tsv}:{line}"
    sides = [path for path, empty in ((split.src, src_empty), (split.tgt, tgt_empty)) if empty]
    return " and ".join(f"{path}:{line}" for path in sides)
