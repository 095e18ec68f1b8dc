"""Atomic file writes: a reader never sees a half-written file, and a failed write leaves
the old file as it was. Every file attnmt writes (checkpoints, tokenizers, caches,
outputs, figures, reports) goes through here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from attnmt.errors import UserError


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(handle)` on a temporary file beside `path`, fsync it, rename it over
    `path`. OS problems with the path (permissions, a directory in the way, a full disk)
    become a one-line UserError; errors raised by `write` itself pass through."""
    path = Path(path)
    # A name of our own (not mkstemp), so the file gets the usual umask-based permissions.
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(temp, "xb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from err


def write_bytes_atomic(path: Path, data: bytes) -> None:
    atomic_write(path, lambda handle: handle.write(data))


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
