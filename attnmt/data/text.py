"""Reading parallel text: two line-aligned files or one TSV file, ``.gz`` read directly,
with one-line errors for broken input."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

from attnmt.config import SplitPaths
from attnmt.errors import UserError


def _check_file(path: Path, name: str) -> None:
    """Fail in one line unless `path` is an existing file."""
    if not path.exists():
        raise UserError(f"data.{name}: file not found: {path}")
    if path.is_dir():
        raise UserError(f"data.{name}: {path} is a directory, not a text file")


def split_files(split: SplitPaths, name: str) -> list[Path]:
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
    files = split_files(split, name)
    if len(files) == 1:
        return _read_tsv(files[0])
    return _read_pair(files[0], files[1], name)
