"""Fetch public corpora: Multi30k (Elliott et al. 2016), task 1, raw text.

Multi30k has 29,000 training, 1,014 validation and 1,000 test (``test_2016_flickr``)
image descriptions in English with German, French and Czech translations: small enough
to train a real attention model on a laptop CPU.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from attnmt.errors import UserError
from attnmt.files import write_bytes_atomic

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
    Each file is checked (size, gzip header) and written atomically, so an interrupted or
    failed run leaves no partial file behind.
    """
    dest = Path(dest)
    fetch = _source_fetcher(source)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--dest {dest}: cannot create the folder ({err.strerror})") from None
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
    size = path.stat().st_size
    if not (target.is_file() and target.stat().st_size == size):
        _save(path.read_bytes(), size, target, str(path))
    return target


def _download(url: str, target: Path) -> Path:
    """Download `url` to `target` unless a file of the remote size is already there."""
    if target.is_file() and target.stat().st_size == _remote_size(url):
        return target
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            length = response.headers.get("Content-Length")
            data = response.read()  # each file is under 1 MB
    except (OSError, http.client.HTTPException, ValueError) as err:  # URLError is an OSError
        raise UserError(f"could not download {target.name} from {url}: {_reason(err)}") from None
    _save(data, int(length) if length else None, target, url)
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


def _save(data: bytes, size: int | None, target: Path, origin: str) -> None:
    """Check that `data` is a whole gzip file, then write it to `target` atomically."""
    if size is not None and len(data) != size:
        raise UserError(f"{target.name} from {origin}: got {len(data)} bytes, expected {size}")
    if not data.startswith(GZIP_MAGIC):
        raise UserError(f"{target.name} from {origin}: not a gzip file")
    write_bytes_atomic(target, data)
