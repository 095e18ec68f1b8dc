"""Streaming text through a translator: input lines, chunks, the interactive prompt."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from attnmt.data.text import read_lines
from attnmt.errors import UserError
from attnmt.translate.schema import Translation

CHUNK_LINES = 1000  # lines translated together: memory stays bounded on big inputs


def terminal_lines(prompt: str) -> Iterator[str]:
    """Lines typed at `prompt`, with line editing and in-memory history (readline) where
    available, until Ctrl-D or Ctrl-C; from a pipe, simply stdin's lines."""
    if not sys.stdin.isatty():
        yield from stdin_lines()
        return
    with contextlib.suppress(ImportError):
        importlib.import_module("readline")  # makes input() editable, with history
    while True:
        try:
            yield input(prompt)
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)  # leave the terminal on a fresh line
            return


def stdin_lines() -> Iterator[str]:
    """stdin's lines as UTF-8 text, without line endings."""
    for number, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            yield raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise UserError(f"<stdin>:{number}: invalid UTF-8") from None


def chunked(lines: Iterable[str], size: int = CHUNK_LINES) -> Iterator[list[str]]:
    """Consecutive lists of at most `size` lines."""
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def translate_stream(
    translate: Callable[[list[str], int], list[Translation]],
    lines: Iterable[str],
    write: Callable[[str], object],
    render: Callable[[int, Translation], str],
    chunk_lines: int = CHUNK_LINES,
) -> int:
    """Translate `lines` chunk by chunk, writing each chunk's output in input order.

    translate(chunk, chunk_number) does the work; returns the number of lines translated.
    """
    index = 0
    for number, chunk in enumerate(chunked(lines, chunk_lines)):
        write("".join(render(index + i, r) for i, r in enumerate(translate(chunk, number))))
        index += len(chunk)
    return index


def interactive(
    translate: Callable[[str], Translation],
    lines: Iterable[str],
    write: Callable[[str], object],
    render: Callable[[int, Translation], str],
) -> int:
    """One translation per typed line, until the lines end (Ctrl-D); returns 0."""
    for index, line in enumerate(lines):
        write(render(index, translate(line)))
    return 0


def input_lines(name: str | None) -> Iterator[str]:
    """The lines of --input (stdin for None or "-")."""
    if name is None or name == "-":
        return stdin_lines()
    path = Path(name)
    if not path.is_file():
        raise UserError(f"--input: {'a directory' if path.is_dir() else 'file not found'}: {path}")
    return read_lines(path)
