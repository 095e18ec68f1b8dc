"""Parallel text in, padded batches out.

Three steps, top to bottom:

1. :func:`read_parallel` streams ``(source, target)`` line pairs from two line-aligned
   files or one TSV file (``.gz`` read directly), with one-line errors for broken input.
2. :func:`load_corpus` tokenizes them once into a :class:`TokenizedCorpus`: one flat int32
   array of token ids per side plus offsets, never a Python list per sentence, cached on
   disk as ``.npz`` so the next run starts at once.
3. :class:`BatchSampler` groups sentences of similar length into batches that fit a token
   budget, and :func:`make_batch` pads them into a :class:`Batch` of tensors (batch-first).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zipfile
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from attnmt.config import DataConfig, SplitPaths
from attnmt.errors import UserError
from attnmt.fileio import atomic_write
from attnmt.special import BOS_ID, EOS_ID, PAD_ID

if TYPE_CHECKING:
    from attnmt.tokenize import Tokenizer

# ---------------------------------------------------------------------------
# 1. Reading parallel text


def _check_file(path: Path, name: str) -> None:
    """Fail in one line unless `path` is an existing file."""
    if not path.exists():
        raise UserError(f"data.{name}: file not found: {path}")
    if path.is_dir():
        raise UserError(f"data.{name}: {path} is a directory, not a text file")


def _split_files(split: SplitPaths, name: str) -> list[Path]:
    """The files of a split (the TSV, or source then target), checked to exist."""
    if split.tsv is not None:
        files = [Path(split.tsv)]
    elif split.src is not None and split.tgt is not None:
        files = [Path(split.src), Path(split.tgt)]
    else:
        raise UserError(f"data.{name}: no src/tgt or tsv given")
    for path in files:
        _check_file(path, name)
    return files


def read_lines(path: Path) -> Iterator[str]:
    """Yield the lines of `path` (gzip if it ends in .gz) without their line ending.

    The file is read as bytes and each line decoded on its own, so a bad byte is reported
    with its line number. Only b"\\n" ends a line; a "\\r" before it is dropped too.
    """
    line_number = 0
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            for line_number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise UserError(f"{path}:{line_number}: invalid UTF-8") from None
                if line_number == 1:
                    line = line.removeprefix("\ufeff")  # a byte-order mark is not text
                yield line.rstrip("\r\n")
    except (gzip.BadGzipFile, EOFError, zlib.error):
        raise UserError(f"{path}: corrupt gzip file (after line {line_number})") from None


def _read_pair(src_path: Path, tgt_path: Path, name: str) -> Iterator[tuple[str, str]]:
    """Zip two line-aligned files, failing as soon as one ends before the other."""
    src_lines, tgt_lines = read_lines(src_path), read_lines(tgt_path)
    count = 0
    for src in src_lines:
        tgt = next(tgt_lines, None)
        if tgt is None:
            src_count = count + 1 + sum(1 for _ in src_lines)
            raise _mismatch(name, src_path, src_count, tgt_path, count)
        count += 1
        yield src, tgt
    tgt_rest = sum(1 for _ in tgt_lines)
    if tgt_rest:
        raise _mismatch(name, src_path, count, tgt_path, count + tgt_rest)


def _mismatch(
    name: str, src_path: Path, src_count: int, tgt_path: Path, tgt_count: int
) -> UserError:
    return UserError(
        f"data.{name}: {src_path} has {src_count} lines but {tgt_path} has {tgt_count}; "
        "source and target files must be line-aligned"
    )


def _read_tsv(path: Path) -> Iterator[tuple[str, str]]:
    """Split each ``source<TAB>target`` line of one file."""
    for line_number, line in enumerate(read_lines(path), start=1):
        tabs = line.count("\t")
        if tabs != 1:
            raise UserError(
                f"{path}:{line_number}: expected source<TAB>target (one tab), found {tabs} tabs"
            )
        src, tgt = line.split("\t")
        yield src, tgt


def read_parallel(split: SplitPaths, name: str) -> Iterator[tuple[str, str]]:
    """Stream the ``(source, target)`` pairs of one split, e.g. ``data.train``.

    `name` is the split's key in the config (``train``, ``dev``, ``test``), used in error
    messages. A split not given, or a missing or directory path, fails at once; bad lines
    (invalid UTF-8, a TSV line without exactly one tab, unequal line counts) fail when
    they are reached.
    """
    files = _split_files(split, name)
    if len(files) == 1:
        return _read_tsv(files[0])
    return _read_pair(files[0], files[1], name)


# ---------------------------------------------------------------------------
# 2. Tokenized corpus: flat arrays + offsets, cached as .npz


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
    Ids carry no BOS/EOS; :func:`make_batch` adds them.
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

    def __len__(self) -> int:
        return len(self.src_lengths)

    def src(self, i: int) -> np.ndarray:
        """Source token ids of pair i (a view, no copy)."""
        return self.src_tokens[self.src_offsets[i] : self.src_offsets[i + 1]]

    def tgt(self, i: int) -> np.ndarray:
        """Target token ids of pair i (a view, no copy)."""
        return self.tgt_tokens[self.tgt_offsets[i] : self.tgt_offsets[i + 1]]


class _SideBuffer:
    """Growable token buffer for one side: array('i') grows in place, amortised O(1)."""

    def __init__(self) -> None:
        self.tokens = array("i")
        self.lengths = array("i")

    def add(self, ids: list[int]) -> None:
        self.tokens.extend(ids)
        self.lengths.append(len(ids))

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(tokens int32, offsets int64 with a leading 0)."""
        tokens = (
            np.frombuffer(self.tokens, dtype=np.int32) if self.tokens else np.zeros(0, np.int32)
        )
        offsets = np.zeros(len(self.lengths) + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(self.lengths, dtype=np.int32), out=offsets[1:])
        return tokens, offsets


assert array("i").itemsize == 4, "attnmt needs a 4-byte C int for its token buffers"

_CACHE_VERSION = 1  # bump when the cached layout or the tokenization rules change


def _empty_location(split: SplitPaths, line: int, src_empty: bool, tgt_empty: bool) -> str:
    """'file:line' of the empty side(s) of a pair, for error messages."""
    if split.tsv is not None:
        return f"{split.tsv}:{line}"
    sides = [path for path, empty in ((split.src, src_empty), (split.tgt, tgt_empty)) if empty]
    return " and ".join(f"{path}:{line}" for path in sides)


def _cache_key(
    files: list[Path],
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    config: DataConfig,
    filter_pairs: bool,
) -> str:
    """sha256 naming everything a cached corpus depends on.

    Files are identified by resolved path, size and modification time (not their content,
    so a cache hit costs no read of a large corpus); tokenizers by a hash of their model
    bytes; and the config fields that change which pairs are kept.
    """
    described_files = []
    for path in files:  # one file is a TSV, two are source and target
        stat = path.stat()
        described_files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    described = {
        "version": _CACHE_VERSION,
        "files": described_files,
        "src_tokenizer": src_tok.fingerprint(),
        "tgt_tokenizer": tgt_tok.fingerprint(),
        "filter_pairs": filter_pairs,
        "max_len": config.max_len if filter_pairs else None,
        "drop_empty": config.drop_empty if filter_pairs else None,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def _tokenize(
    split: SplitPaths,
    name: str,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    config: DataConfig,
    filter_pairs: bool,
) -> TokenizedCorpus:
    """Stream the split through both tokenizers into compact arrays, filtering as asked."""
    src_buffer, tgt_buffer = _SideBuffer(), _SideBuffer()
    dropped_empty = dropped_long = 0
    for line, (src_text, tgt_text) in enumerate(read_parallel(split, name), start=1):
        src_ids, tgt_ids = src_tok.encode(src_text), tgt_tok.encode(tgt_text)
        if filter_pairs and not (src_ids and tgt_ids):
            if not config.drop_empty:
                where = _empty_location(split, line, not src_ids, not tgt_ids)
                raise UserError(
                    f"data.{name}: empty sentence at {where} (set data.drop_empty=true to drop)"
                )
            dropped_empty += 1
            continue
        if filter_pairs and max(len(src_ids), len(tgt_ids)) > config.max_len:
            dropped_long += 1
            continue
        src_buffer.add(src_ids)
        tgt_buffer.add(tgt_ids)
    stats = CorpusStats(len(src_buffer.lengths), dropped_empty, dropped_long)
    return TokenizedCorpus(*src_buffer.arrays(), *tgt_buffer.arrays(), stats=stats)


def _save_npz(corpus: TokenizedCorpus, path: Path) -> None:
    """Write the corpus to `path` atomically (temp file + rename)."""
    stats = np.array([corpus.stats.pairs, corpus.stats.dropped_empty, corpus.stats.dropped_long])
    atomic_write(
        path,
        lambda handle: np.savez(
            handle,
            src_tokens=corpus.src_tokens,
            src_offsets=corpus.src_offsets,
            tgt_tokens=corpus.tgt_tokens,
            tgt_offsets=corpus.tgt_offsets,
            stats=stats,
        ),
    )


def _load_npz(path: Path) -> TokenizedCorpus | None:
    """The cached corpus at `path`, or None if it is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            pairs, dropped_empty, dropped_long = (int(x) for x in data["stats"])
            return TokenizedCorpus(
                data["src_tokens"],
                data["src_offsets"],
                data["tgt_tokens"],
                data["tgt_offsets"],
                CorpusStats(pairs, dropped_empty, dropped_long),
            )
    except (OSError, ValueError, KeyError, EOFError, zlib.error, zipfile.BadZipFile):
        return None


def load_corpus(
    split: SplitPaths,
    name: str,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    config: DataConfig,
    cache_dir: Path,
    filter_pairs: bool = True,
) -> TokenizedCorpus:
    """Tokenize one split, or load it from `cache_dir` if nothing it depends on changed.

    With `filter_pairs` (training), pairs with an empty side are dropped and counted (an
    error if data.drop_empty is false) and so are pairs with more than data.max_len tokens
    on either side. Without it (dev/test), every line is kept so indices match the file.
    See :func:`_cache_key` for what invalidates the cache.
    """
    files = _split_files(split, name)  # a missing file or split fails here, before hashing
    key = _cache_key(files, src_tok, tgt_tok, config, filter_pairs)
    path = Path(cache_dir) / f"{name}-{key[:24]}.npz"
    cached = _load_npz(path) if path.exists() else None
    if cached is not None:
        return cached
    corpus = _tokenize(split, name, src_tok, tgt_tok, config, filter_pairs)
    _save_npz(corpus, path)
    return corpus


# ---------------------------------------------------------------------------
# 3. Batches


@dataclass
class Batch:
    """A padded batch of sentence pairs; every tensor is batch-first and PAD_ID padded."""

    src: Tensor  # (B, S) source ids
    src_lengths: Tensor  # (B,) real source lengths
    tgt_in: Tensor  # (B, T) decoder input: BOS y_1 ... y_n
    tgt_out: Tensor  # (B, T) decoder target: y_1 ... y_n EOS
    indices: Tensor  # (B,) positions in the corpus, to restore the original order

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on `device` (indices stay where they are, for bookkeeping)."""
        return Batch(
            src=self.src.to(device, non_blocking=True),
            src_lengths=self.src_lengths.to(device, non_blocking=True),
            tgt_in=self.tgt_in.to(device, non_blocking=True),
            tgt_out=self.tgt_out.to(device, non_blocking=True),
            indices=self.indices,
        )

    @property
    def n_tgt_tokens(self) -> int:
        """Real target tokens to predict (y and EOS, no padding): the loss normaliser."""
        return int((self.tgt_out != PAD_ID).sum())


def make_batch(corpus: TokenizedCorpus, indices: Sequence[int]) -> Batch:
    """Pad the pairs at `indices` into a :class:`Batch`.

    S is the longest source (at least 1, so an empty source is one padding column) and T
    the longest target plus one, for BOS at the front of tgt_in and EOS at the end of
    tgt_out.
    """
    index = np.asarray(indices, dtype=np.int64)  # (B,)
    src_lengths = corpus.src_lengths[index]  # (B,)
    tgt_lengths = corpus.tgt_lengths[index]  # (B,)
    batch = len(index)
    src = np.full((batch, max(1, int(src_lengths.max(initial=0)))), PAD_ID, np.int64)  # (B, S)
    width = int(tgt_lengths.max(initial=0)) + 1
    tgt_in = np.full((batch, width), PAD_ID, np.int64)  # (B, T)
    tgt_out = np.full((batch, width), PAD_ID, np.int64)  # (B, T)
    for row, i in enumerate(index):
        src_ids, tgt_ids = corpus.src(i), corpus.tgt(i)
        src[row, : len(src_ids)] = src_ids
        tgt_in[row, 0] = BOS_ID
        tgt_in[row, 1 : len(tgt_ids) + 1] = tgt_ids
        tgt_out[row, : len(tgt_ids)] = tgt_ids
        tgt_out[row, len(tgt_ids)] = EOS_ID
    return Batch(
        src=torch.from_numpy(src),
        src_lengths=torch.from_numpy(src_lengths.astype(np.int64)),
        tgt_in=torch.from_numpy(tgt_in),
        tgt_out=torch.from_numpy(tgt_out),
        indices=torch.from_numpy(index),
    )


class BatchSampler:
    """Token-budget batches of similar-length sentences, in a resumable order.

    The padded cost of a batch is ``B * max(S, T + 1)``: its size times the longest source
    or decoder sequence in it (``T + 1`` counts BOS/EOS). Each batch costs at most
    `batch_tokens`, except that a single sentence longer than the budget forms a batch of
    its own.

    Every epoch the sentences are sorted by length, so a batch holds sentences of about
    one length and padding is small. With `shuffle`, sentences of equal length are
    ordered randomly before the sort and the batches are then visited in random order,
    both drawn from ``(seed, epoch)``; without it the order is fixed, shortest first.
    Batch boundaries depend only on the sorted lengths, so every epoch has the same
    number of batches.

    The sampler remembers where it is: ``state_dict()`` after a batch is taken, loaded
    into a new sampler, continues with exactly the next batch.
    """

    def __init__(
        self,
        src_lengths: np.ndarray,
        tgt_lengths: np.ndarray,
        batch_tokens: int,
        shuffle: bool,
        seed: int,
    ) -> None:
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        src_lengths, tgt_lengths = np.asarray(src_lengths), np.asarray(tgt_lengths)
        if src_lengths.shape != tgt_lengths.shape:
            raise ValueError("src_lengths and tgt_lengths differ in shape")
        # Padded width each sentence needs; at least 1 because make_batch pads S to >= 1.
        self.widths = np.maximum(np.maximum(src_lengths, 1), tgt_lengths + 1).astype(np.int64)
        self.batch_tokens = batch_tokens
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.position = 0  # batches of the current epoch already handed out
        self._bounds = _pack(np.sort(self.widths, kind="stable"), batch_tokens)

    def __len__(self) -> int:
        return len(self._bounds) - 1

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """The batches of `epoch`, in the order they are visited."""
        bounds = zip(self._bounds[:-1], self._bounds[1:], strict=True)
        if not self.shuffle:
            order = np.argsort(self.widths, kind="stable")
            return [order[a:b] for a, b in bounds]
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.widths))  # random order among equal widths ...
        order = order[np.argsort(self.widths[order], kind="stable")]  # ... kept by the sort
        batches = [order[a:b] for a, b in bounds]
        return [batches[k] for k in rng.permutation(len(batches))]

    def __iter__(self) -> Iterator[list[int]]:
        """The rest of the current epoch; when it is exhausted, `epoch` advances."""
        batches = self._epoch_batches(self.epoch)
        while self.position < len(batches):
            batch = batches[self.position]
            self.position += 1  # count it before yielding: a state saved now resumes after it
            yield batch.tolist()
        self.epoch += 1
        self.position = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, position = int(state["epoch"]), int(state["position"])
        if not 0 <= position <= len(self):
            raise UserError(
                f"batch sampler state is at batch {position}, but an epoch has {len(self)} "
                "batches; the training data or data.* settings changed since the checkpoint"
            )
        self.epoch, self.position = epoch, position


def _pack(sorted_widths: np.ndarray, batch_tokens: int) -> list[int]:
    """Boundaries [0, b_1, ..., n] of greedy batches over ascending widths.

    A batch starting at i and ending at j (inclusive) costs ``(j - i + 1) * width[j]``,
    which grows with j, so the largest j within budget is found by bisection.
    """
    widths = sorted_widths.tolist()
    bounds = [0]
    while bounds[-1] < len(widths):
        bounds.append(_batch_end(widths, bounds[-1], batch_tokens))
    return bounds


def _batch_end(widths: list[int], start: int, batch_tokens: int) -> int:
    """One past the last sentence of the batch that starts at `start`."""
    size = bisect_right(
        range(start, len(widths)), batch_tokens, key=lambda j: (j - start + 1) * widths[j]
    )
    return start + max(size, 1)  # an over-long sentence still gets a batch of its own
