"""Multi30k download: from a local HTTP server, from a local folder, and its failures."""

from __future__ import annotations

import argparse
import functools
import gzip
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from attnmt.cli import data as data_command
from attnmt.data.datasets import MULTI30K_FILES, download_multi30k
from attnmt.errors import UserError


def make_source(directory: Path) -> Path:
    """A folder with a tiny gz file for every Multi30k file name."""
    directory.mkdir()
    for name in MULTI30K_FILES:
        (directory / name).write_bytes(gzip.compress(f"a line of {name}\n".encode()))
    return directory


class RecordingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder and records each (method, path) it is asked for."""

    requests: list[tuple[str, str]]

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def send_head(self) -> Any:
        self.requests.append((self.command, self.path))
        return super().send_head()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[tuple[str, str]]]]:
    """(base URL, its folder, request log) of an HTTP server on 127.0.0.1."""
    root = tmp_path / "served"
    root.mkdir()
    served = make_source(root / "raw")
    requests: list[tuple[str, str]] = []
    handler = type("Handler", (RecordingHandler,), {"requests": requests})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/raw", served, requests
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_from_url(tmp_path: Path, server: tuple[str, Path, list[tuple[str, str]]]) -> None:
    base, served, requests = server
    dest = tmp_path / "dest"
    paths = download_multi30k(dest, base)
    assert [p.name for p in paths] == list(MULTI30K_FILES)
    for path in paths:
        assert path.read_bytes() == (served / path.name).read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == sorted(MULTI30K_FILES)  # no temp files
    assert sum(method == "GET" for method, _ in requests) == len(MULTI30K_FILES)

    # Present with the right size: skipped, only HEAD requests.
    requests.clear()
    download_multi30k(dest, base + "/")
    assert {method for method, _ in requests} == {"HEAD"}

    # A file of the wrong size is fetched again.
    requests.clear()
    (dest / "val.fr.gz").write_bytes(b"short")
    download_multi30k(dest, base)
    assert [path for method, path in requests if method == "GET"] == ["/raw/val.fr.gz"]
    assert (dest / "val.fr.gz").read_bytes() == (served / "val.fr.gz").read_bytes()


def test_missing_file_on_server_names_file_and_url(
    tmp_path: Path, server: tuple[str, Path, list[tuple[str, str]]]
) -> None:
    base, served, _ = server
    (served / "val.de.gz").unlink()
    dest = tmp_path / "dest"
    with pytest.raises(UserError, match=r"val\.de\.gz from http://127.*/val\.de\.gz: .*404"):
        download_multi30k(dest, base)
    assert (dest / "train.de.gz").is_file()  # files before it arrived
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]  # no temp file left


def test_non_gzip_content_is_rejected(
    tmp_path: Path, server: tuple[str, Path, list[tuple[str, str]]]
) -> None:
    base, served, _ = server
    (served / "train.de.gz").write_text("<html>an error page</html>")
    with pytest.raises(UserError, match=r"train\.de\.gz from .*: not a gzip file"):
        download_multi30k(tmp_path / "dest", base)
    assert not (tmp_path / "dest" / "train.de.gz").exists()


def test_unreachable_server(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"could not download train\.de\.gz from http://127"):
        download_multi30k(tmp_path / "dest", "http://127.0.0.1:9")  # nothing listens on 9


def test_copy_from_folder_and_skip(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    dest = tmp_path / "dest"
    paths = download_multi30k(dest, source)
    assert all(p.read_bytes() == (source / p.name).read_bytes() for p in paths)
    mtimes = [p.stat().st_mtime_ns for p in paths]
    assert [p.stat().st_mtime_ns for p in download_multi30k(dest, str(source))] == mtimes


def test_missing_file_in_folder(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src")
    (source / "test_2016_flickr.cs.gz").unlink()
    with pytest.raises(UserError, match=r"test_2016_flickr\.cs\.gz: not found"):
        download_multi30k(tmp_path / "dest", source)


def test_source_neither_folder_nor_url(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a directory or an http"):
        download_multi30k(tmp_path / "dest", tmp_path / "no-such-folder")


def test_command_prints_each_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_source(tmp_path / "src")
    parser = argparse.ArgumentParser()
    data_command.add_arguments(parser)
    dest = tmp_path / "out"
    args = parser.parse_args(["multi30k", "--from", str(source), "--dest", str(dest)])
    assert data_command.run(args) == 0
    printed = capsys.readouterr().out
    for name in MULTI30K_FILES:
        assert str(dest / name) in printed
        assert (dest / name).is_file()
