"""`attnmt serve` on the command line: model names, limits, a public address refused
without keys (and the warning with --insecure), and a clean stop on SIGTERM that still
answers the request in flight."""

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
from attnmt.cli.serve import parse_models, parse_rerank, responders_of
from attnmt.errors import UserError


def test_model_names() -> None:
    assert parse_models(["runs/a/", "b=runs/x"]) == {"a": "runs/a/", "b": "runs/x"}
    with pytest.raises(UserError, match="the name 'a' is given twice"):
        parse_models(["a=runs/x", "runs/a"])
    with pytest.raises(UserError, match="expected NAME=RUN_DIR"):
        parse_models(["=runs/x"])


def test_rerank_names() -> None:
    models = {"chat": "runs/c", "mt": "runs/m"}
    assert parse_rerank(["chat=runs/b"], models) == {"chat": "runs/b"}
    assert parse_rerank(["runs/b"], {"chat": "runs/c"}) == {"chat": "runs/b"}
    with pytest.raises(UserError, match="name the model it reranks"):
        parse_rerank(["runs/b"], models)
    with pytest.raises(UserError, match="no model named 'x' is served"):
        parse_rerank(["x=runs/b"], models)
    with pytest.raises(UserError, match="two backward runs"):
        parse_rerank(["chat=runs/a", "chat=runs/b"], models)


def test_the_registry_holds_a_responder_for_each_dialogue_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from attnmt.serve.app import create_app
    from attnmt.translate.translator import Translator

    runs = {
        "chat": make_run(tmp_path / "chat", seed=0, task="dialogue"),
        "mt": make_run(tmp_path / "mt", seed=1),
    }
    backward = make_run(tmp_path / "backward", seed=2, task="dialogue_backward")
    translators = {name: Translator.load(run, device="cpu") for name, run in runs.items()}
    with pytest.raises(UserError, match="'mt' is a translation model, not a dialogue model"):
        responders_of(translators, {"mt": str(backward)}, "cpu")
    with pytest.raises(UserError, match="not a backward dialogue model"):
        responders_of(translators, {"chat": str(runs["mt"])}, "cpu")
    responders = responders_of(translators, {"chat": str(backward)}, "cpu")
    assert set(responders) == {"chat"}  # the translation model cannot chat

    app = create_app(
        translators, run_dirs={k: str(v) for k, v in runs.items()}, responders=responders
    )
    with TestClient(app) as client:
        models = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert models["chat"]["task"] == "dialogue" and models["chat"]["reranker"] == str(backward)
    assert models["chat"]["rerank"] == {"mmi_weight": 0.5, "length_bonus": 0.0, "candidates": 10}
    assert models["mt"]["task"] == "translation" and models["mt"]["reranker"] is None
    # what POST /chat will call: a reply and its candidates with every score
    responder = app.state.responders["chat"]
    options = translators["chat"].options(sample=True, seed=0, max_len=6)
    answer = responder.respond([SENTENCES[1]], SENTENCES[0], options)
    assert answer.reranked and answer.text == answer.candidates[0].text
    assert all(c.to_dict()["backward"] is not None for c in answer.candidates)
    plain = responder.respond([], SENTENCES[0], options, rerank=False)
    assert not plain.reranked and plain.candidates[0].backward is None

    # on the command line, a bad --rerank is one line before anything loads
    assert main(["serve", "--model", f"chat={runs['chat']}", "--rerank", "x=runs/b"]) == 2
    assert "no model named 'x'" in capsys.readouterr().err


def test_bad_limit_and_missing_run_are_one_line_errors(capsys, tmp_path: Path) -> None:
    assert main(["serve", "--model", str(tmp_path), "--max-batch", "0"]) == 2
    assert capsys.readouterr().err == "attnmt serve: error: max_batch must be at least 1 (got 0)\n"
    assert main(["serve", "--model", str(tmp_path), "--rate-limit", "0"]) == 2
    assert (
        capsys.readouterr().err == "attnmt serve: error: --rate-limit must be at least 1 (got 0)\n"
    )
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


def test_public_host_without_keys_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ATTNMT_API_KEYS", raising=False)
    assert main(["serve", "--model", str(tmp_path / "nope"), "--host", "0.0.0.0"]) == 2
    assert capsys.readouterr().err == (
        "attnmt serve: error: --host 0.0.0.0 is reachable from other machines: give API keys "
        "(--api-key-file or ATTNMT_API_KEYS) or --insecure to serve without any\n"
    )
    keys = tmp_path / "keys.txt"
    keys.write_text("alice\n")  # a key too short to be one
    assert main(["serve", "--model", str(tmp_path), "--api-key-file", str(keys)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"attnmt serve: error: {keys}, line 1: expected NAME:KEY or KEY")
    assert err.count("\n") == 1


def test_public_host_warns_and_sigterm_finishes_in_flight(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run")
    port = free_port()
    process = start(run_dir, port, "--host", "0.0.0.0", "--max-wait-ms", "300", "--insecure")
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
