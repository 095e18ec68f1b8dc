"""A tokenized corpus on disk, read through memory maps.

A shard directory holds one split tokenized with one pair of tokenizers::

    train-<key>/
      meta.json          pairs kept and dropped, token totals, format version
      src.tokens.npy     (source tokens,) int32: the ids of every kept source, end to end
      src.offsets.npy    (pairs + 1,) int64: source i is tokens[offsets[i]:offsets[i + 1]]
      tgt.tokens.npy     the same for the targets
      tgt.offsets.npy

Every file is a standard ``.npy`` file. The token files are written by appending chunk
after chunk (:class:`ShardWriter`), so the whole corpus is never in memory, and read with
``np.load(mmap_mode="r")`` (:func:`read_shards`): the operating system pages tokens in as
batches touch them and may drop them again, and the processes of a data-parallel run
share one copy in the page cache. Only the offsets (the index) are read into memory.

The directory is built under a temporary name and renamed when complete, so a reader
never sees half a corpus, and a crash leaves nothing that looks finished.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

VERSION = 1  # bump when the layout or the tokenization rules change
SIDES = ("src", "tgt")
HEADER_BYTES = 128  # room reserved for a .npy header at the front of a token file


def npy_header(count: int, dtype: str = "<i4", size: int = HEADER_BYTES) -> bytes:
    """A .npy (format 1.0) header for a 1-D array of `count` items, padded with spaces to
    exactly `size` bytes, so it can be written in front of data appended beforehand."""
    text = repr({"descr": dtype, "fortran_order": False, "shape": (count,)})
    body = text.ljust(size - 10 - 1) + "\n"  # 10 bytes of magic, version and length
    header = b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")
    if len(header) != size:
        raise ValueError(f"a header for {count} items does not fit in {size} bytes")
    return header


@dataclass
class ShardArrays:
    """What :func:`read_shards` returns: token maps, offsets and the drop counts."""

    src_tokens: np.ndarray  # memory-mapped, read-only
    src_offsets: np.ndarray
    tgt_tokens: np.ndarray
    tgt_offsets: np.ndarray
    dropped_empty: int
    dropped_long: int


class ShardWriter:
    """Appends chunks of a tokenized corpus to a shard directory being built.

    Memory: the lengths of the pairs written so far (4 bytes per pair and side); the
    token ids go to disk as each chunk arrives.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        self.temporary = self.directory.parent / f".{self.directory.name}.{uuid.uuid4().hex}"
        self.temporary.mkdir()
        self.files: dict[str, BinaryIO] = {}
        for side in SIDES:
            handle = open(self.temporary / f"{side}.tokens.npy", "wb")  # noqa: SIM115
            handle.write(b"\0" * HEADER_BYTES)  # the header goes here once the count is known
            self.files[side] = handle
        self.lengths: dict[str, list[np.ndarray]] = {side: [] for side in SIDES}
        self.tokens = dict.fromkeys(SIDES, 0)
        self.dropped_empty = 0
        self.dropped_long = 0

    def add(
        self,
        src_tokens: np.ndarray,
        src_lengths: np.ndarray,
        tgt_tokens: np.ndarray,
        tgt_lengths: np.ndarray,
        dropped_empty: int = 0,
        dropped_long: int = 0,
    ) -> None:
        """Append one chunk of pairs: each side's ids end to end, and their lengths."""
        for side, tokens, lengths in (
            ("src", src_tokens, src_lengths),
            ("tgt", tgt_tokens, tgt_lengths),
        ):
            if int(lengths.sum()) != len(tokens):
                raise ValueError(f"{side}: lengths add up to {lengths.sum()}, not {len(tokens)}")
            np.asarray(tokens, dtype="<i4").tofile(self.files[side])
            self.lengths[side].append(np.asarray(lengths, dtype=np.int32))
            self.tokens[side] += len(tokens)
        self.dropped_empty += dropped_empty
        self.dropped_long += dropped_long

    def finish(self) -> None:
        """Write headers, offsets and meta.json, then give the directory its name."""
        pairs = 0
        for side in SIDES:
            handle = self.files[side]
            handle.seek(0)
            handle.write(npy_header(self.tokens[side]))
            handle.close()
            lengths = np.concatenate([np.zeros(0, np.int32), *self.lengths[side]])
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)  # (pairs + 1,)
            np.cumsum(lengths, out=offsets[1:])
            np.save(self.temporary / f"{side}.offsets.npy", offsets)
            pairs = len(lengths)
        meta = {
            "version": VERSION,
            "pairs": pairs,
            "dropped_empty": self.dropped_empty,
            "dropped_long": self.dropped_long,
            "src_tokens": self.tokens["src"],
            "tgt_tokens": self.tokens["tgt"],
        }
        (self.temporary / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        try:
            self.temporary.rename(self.directory)
        except OSError:  # another process finished the same corpus first: keep its copy
            shutil.rmtree(self.temporary, ignore_errors=True)

    def abandon(self) -> None:
        """Delete the unfinished directory (after an error)."""
        for handle in self.files.values():
            handle.close()
        shutil.rmtree(self.temporary, ignore_errors=True)


def _load_tokens(path: Path, count: int) -> np.ndarray:
    if count == 0:  # an empty file cannot be mapped
        return np.zeros(0, dtype=np.int32)
    tokens = np.load(path, mmap_mode="r")
    if tokens.dtype != np.int32 or tokens.shape != (count,):
        raise ValueError(f"{path}: expected {count} int32 tokens")
    return tokens


def read_shards(directory: Path) -> ShardArrays | None:
    """The corpus in `directory`, or None if it is missing, incomplete or damaged."""
    try:
        meta = json.loads((Path(directory) / "meta.json").read_text())
        if meta.get("version") != VERSION:
            return None
        arrays = {}
        for side in SIDES:
            offsets = np.load(Path(directory) / f"{side}.offsets.npy", allow_pickle=False)
            count = int(meta[f"{side}_tokens"])
            if offsets.shape != (meta["pairs"] + 1,) or offsets[-1] != count:
                return None
            arrays[f"{side}_offsets"] = offsets
            arrays[f"{side}_tokens"] = _load_tokens(Path(directory) / f"{side}.tokens.npy", count)
        return ShardArrays(
            dropped_empty=int(meta["dropped_empty"]),
            dropped_long=int(meta["dropped_long"]),
            **arrays,
        )
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None
