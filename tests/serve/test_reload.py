"""Reload on SIGHUP (serve/reload.py): a changed checkpoint is loaded and swapped in, a
request in flight finishes on the old model, a failed load keeps the old one; and the
real server does it on a real SIGHUP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import SENTENCES, make_run
from test_robustness import Controlled, wait_for
from test_serve_cli import free_port, wait_up

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from attnmt.serve.app import create_app  # noqa: E402
from attnmt.serve.reload import Reloader  # noqa: E402
from attnmt.translate.translator import Translator  # noqa: E402


def replace_checkpoint(run_dir: Path, source: Path) -> None:
    """Put `source`'s checkpoint in place of `run_dir`'s, atomically (a new inode)."""
    target = run_dir / "checkpoints" / "best.pt"
    temporary = target.with_suffix(".new")
    shutil.copyfile(source / "checkpoints" / "best.pt", temporary)
    os.replace(temporary, target)


def test_in_flight_finishes_on_the_old_model_new_requests_get_the_new(tmp_path: Path) -> None:
    old_run, new_run = make_run(tmp_path / "old", seed=0), make_run(tmp_path / "new", seed=7)
    old = Controlled(Translator.load(old_run, device="cpu"))
    new = Translator.load(new_run, device="cpu")
    text = SENTENCES[0]
    assert old.inner.translate(text).text != new.translate(text).text  # tell them apart
    app = create_app({"m": old})  # type: ignore[dict-item]
    loads: list[str] = []

    def load(name: str) -> tuple[Translator, None]:
        loads.append(name)
        return Translator.load(old_run, device="cpu"), None

    checkpoint = old_run / "checkpoints" / "best.pt"
    with TestClient(app) as client, ThreadPoolExecutor(1) as pool:
        reloader = Reloader(app, {"m": checkpoint}, load)
        assert reloader.reload_changed() == [] and loads == []  # nothing changed yet
        before = client.get("/models").json()["models"][0]["loaded_at"]
        old.gate.clear()
        in_flight = pool.submit(client.post, "/translate", json={"text": text})
        wait_for(old.entered.is_set)  # decoding on the old model, held
        replace_checkpoint(old_run, new_run)
        swapped = threading.Thread(target=reloader.reload_changed)
        swapped.start()
        swapped.join(timeout=60)
        assert loads == ["m"] and reloader.changed() == []
        after = client.post("/translate", json={"text": text}).json()["translations"][0]
        assert after["text"] == new.translate(text).text  # the new model, at once
        old.gate.set()
        held = in_flight.result().json()["translations"][0]
        assert held["text"] == old.inner.translate(text).text  # the old model finished it
        assert client.get("/models").json()["models"][0]["loaded_at"] > before


def test_a_failed_reload_keeps_the_old_model_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = make_run(tmp_path / "run")
    translator = Translator.load(run_dir, device="cpu")
    app = create_app({"m": translator})
    checkpoint = run_dir / "checkpoints" / "best.pt"
    with TestClient(app) as client:
        load = lambda name: (Translator.load(run_dir, device="cpu"), None)  # noqa: E731
        reloader = Reloader(app, {"m": checkpoint}, load)
        checkpoint.write_bytes(b"not a checkpoint")
        assert reloader.reload_changed() == []
        err = capsys.readouterr().err
        assert err.startswith("attnmt serve: reload of 'm' failed, still serving the model")
        assert err.count("\n") == 1
        answer = client.post("/translate", json={"text": SENTENCES[1]})
        assert answer.json()["translations"][0]["text"] == translator.translate(SENTENCES[1]).text
        assert reloader.changed() == ["m"]  # the next SIGHUP tries again


def get(url: str) -> dict:
    return dict(json.load(urllib.request.urlopen(url, timeout=10)))


def test_sighup_reloads_a_replaced_checkpoint_in_the_running_server(tmp_path: Path) -> None:
    run_dir, new_run = make_run(tmp_path / "run", seed=0), make_run(tmp_path / "new", seed=7)
    port = free_port()
    command = [sys.executable, "-m", "attnmt.cli", "serve", "--model", f"m={run_dir}"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--threads", "1"], stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, process)
        before = get(url + "/models")["models"][0]["loaded_at"]
        replace_checkpoint(run_dir, new_run)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while get(url + "/models")["models"][0]["loaded_at"] == before:
            assert time.monotonic() < deadline, "no reload within 60 s"
            time.sleep(0.2)
        body = json.dumps({"text": SENTENCES[0]}).encode()
        request = urllib.request.Request(
            url + "/translate", body, {"content-type": "application/json"}
        )
        answer = json.load(urllib.request.urlopen(request, timeout=30))
        expected = Translator.load(new_run, device="cpu").translate(SENTENCES[0]).text
        assert answer["translations"][0]["text"] == expected
    finally:
        process.terminate()
        process.wait(timeout=30)
    err = process.stderr.read() if process.stderr else ""
    assert f"attnmt serve: reloaded 'm' from {run_dir}/checkpoints/best.pt" in err
