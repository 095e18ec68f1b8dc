"""Fetch public corpora: Multi30k (Elliott et al. 2016), task 1, raw text.

Multi30k has 29,000 training, 1,014 validation and 1,000 test (``test_2016_flickr``)
image descriptions in English with German, French and Czech translations: small enough
to train a real attention model on a laptop CPU.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from attnmt.errors import UserError

MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw"
MULTI30K_SPLITS = ("train", "val", "test_2016_flickr")
MULTI30K_LANGUAGES = ("de", "en", "fr", "cs")
MULTI30K_FILES = tuple(
    f"{split}.{lang}.gz" for split in MULTI30K_SPLITS for lang in MULTI30K_LANGUAGES
)
TIMEOUT_S = 60  # seconds without progress before a download is given up
GZIP_MAGIC = b"\x1f\x8b"  # a gz file starts with these bytes; an error page does not


def download_multi30k(dest: Path, source: str | Path | None = None) -> list[Path]:
    """Put the Multi30k task-1 raw ``.gz`` files in `dest` and return their paths.

    `source` is where they come from: None for the official repository
    (:data:`MULTI30K_URL`), an ``http(s)://`` or ``file://`` base URL, or a local directory
    holding the files. A file already in `dest` with the source's size is kept as it is.
    Each file is written to a temp file and renamed, so an interrupted run leaves no
    partial file behind.
    """
    dest = Path(dest)
    fetch = _source_fetcher(source)
    dest.mkdir(parents=True, exist_ok=True)
    return [fetch(name, dest / name) for name in MULTI30K_FILES]


def _source_fetcher(source: str | Path | None) -> Callable[[str, Path], Path]:
    """A function (file name, target path) -> target path for this kind of source."""
    if source is None:
        return lambda name, target: _download(f"{MULTI30K_URL}/{name}", target)
    text = str(source)
    if text.startswith(("http://", "https://", "file://")):
        base = text.rstrip("/")
        return lambda name, target: _download(f"{base}/{name}", target)
    if Path(text).is_dir():
        return lambda name, target: _copy(Path(text) / name, target)
    raise UserError(f"--from {text}: not a directory or an http(s):// or file:// URL")


def _copy(path: Path, target: Path) -> Path:
    """Copy a local file to `target` unless a file of its size is already there."""
    if not path.is_file():
        raise UserError(f"{path}: not found (expected the Multi30k file {path.name})")
    if target.is_file() and target.stat().st_size == path.stat().st_size:
        return target
    with path.open("rb") as handle:
        _write_atomic(handle, target, path.stat().st_size, str(path))
    return target


def _download(url: str, target: Path) -> Path:
    """Download `url` to `target` unless a file of the remote size is already there."""
    if target.is_file() and target.stat().st_size == _remote_size(url):
        return target
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            _write_atomic(response, target, int(length) if length else None, url)
    except (OSError, http.client.HTTPException, ValueError) as err:  # URLError is an OSError
        raise UserError(f"could not download {target.name} from {url}: {_reason(err)}") from None
    return target


def _reason(err: Exception) -> object:
    """The useful part of a download error: "HTTP Error 404: Not Found", "[Errno 111] ..."."""
    if isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError):
        return err.reason
    return err


def _remote_size(url: str) -> int | None:
    """Content-Length from a HEAD request, or None if the server does not say."""
    try:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            return int(length) if length else None
    except (OSError, http.client.HTTPException, ValueError):
        return None  # the GET that follows reports the problem


def _write_atomic(handle: BinaryIO, target: Path, size: int | None, origin: str) -> None:
    """Stream `handle` into `target` through a temp file; check size and gzip magic."""
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(handle, out)
        _check_file(Path(tmp_name), size, target.name, origin)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _check_file(path: Path, size: int | None, name: str, origin: str) -> None:
    got = path.stat().st_size
    if size is not None and got != size:
        raise UserError(f"{name} from {origin}: got {got} bytes, expected {size} (cut off?)")
    with path.open("rb") as handle:
        if handle.read(2) != GZIP_MAGIC:
            raise UserError(f"{name} from {origin}: not a gzip file")
