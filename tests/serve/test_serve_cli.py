"""`attnmt serve` on the command line: model names, limits, the warning for a public
address, and a clean stop on SIGTERM that still answers the request in flight."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import SENTENCES, make_run

from attnmt.cli.main import main
from attnmt.cli.serve import parse_models
from attnmt.errors import UserError


def test_model_names() -> None:
    assert parse_models(["runs/a/", "b=runs/x"]) == {"a": "runs/a/", "b": "runs/x"}
    with pytest.raises(UserError, match="the name 'a' is given twice"):
        parse_models(["a=runs/x", "runs/a"])
    with pytest.raises(UserError, match="expected NAME=RUN_DIR"):
        parse_models(["=runs/x"])


def test_bad_limit_and_missing_run_are_one_line_errors(capsys, tmp_path: Path) -> None:
    assert main(["serve", "--model", str(tmp_path), "--max-batch", "0"]) == 2
    assert capsys.readouterr().err == "attnmt serve: error: max_batch must be at least 1 (got 0)\n"
    assert main(["serve", "--model", str(tmp_path / "nope")]) == 2
    assert "run directory not found" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(run_dir: Path, port: int, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "attnmt.cli", "serve", "--model", str(run_dir)]
    return subprocess.Popen(
        [*command, "--port", str(port), "--threads", "1", *extra],
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not start")


def test_public_host_warns_and_sigterm_finishes_in_flight(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run")
    port = free_port()
    process = start(run_dir, port, "--host", "0.0.0.0", "--max-wait-ms", "300")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, process)
        body = json.dumps({"text": SENTENCES, "beam": 4}).encode()
        request = urllib.request.Request(
            url + "/translate", body, {"content-type": "application/json"}
        )
        answers: list[dict] = []
        sender = threading.Thread(
            target=lambda: answers.append(json.load(urllib.request.urlopen(request, timeout=30)))
        )
        sender.start()
        time.sleep(0.15)  # the request waits in its 300 ms batch window
        process.send_signal(signal.SIGTERM)
        sender.join(timeout=30)
        # uvicorn shuts down, then re-raises the signal: the conventional exit status
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    assert len(answers[0]["translations"]) == len(SENTENCES)
    err = process.stderr.read() if process.stderr else ""
    warning = "attnmt serve: warning: listening on 0.0.0.0, reachable from other machines"
    assert err.splitlines()[0].startswith(warning)
