"""The server under pressure: a full queue (503), a slow decode (504), a request that fails
inside a batch, a bug in decoding, and shutdown with requests in flight. None of them
stops the worker; the next request is answered."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import SENTENCES, make_run

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from attnmt.config import DecodeOptions
from attnmt.errors import UserError  # noqa: E402
from attnmt.serve.app import create_app  # noqa: E402
from attnmt.serve.batcher import Batcher  # noqa: E402
from attnmt.serve.limits import Limits  # noqa: E402
from attnmt.translate.schema import Translation  # noqa: E402
from attnmt.translate.translator import Translator  # noqa: E402

POISON = "poison"  # an unknown word: the wrapped translator refuses its source
CRASH = "the dog " * 30  # a 60-token source: the wrapped translator has a bug


class Controlled:
    """A real Translator, wrapped: decoding can be held at a gate, and fails on purpose
    for a source with an unknown word like POISON (a UserError) or one longer than 40
    tokens like CRASH (a bug)."""

    def __init__(self, translator: Translator) -> None:
        self.inner = translator
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.calls: list[int] = []  # sources per translate_ids call
        (self.unknown,) = translator.src_tok.encode(POISON)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def translate_ids(
        self,
        ids: Sequence[Sequence[int]],
        options: DecodeOptions | None = None,
        *,
        heads: bool = False,
    ) -> list[Translation]:
        self.entered.set()
        self.gate.wait(timeout=30)
        self.calls.append(len(ids))
        rows = [list(row) for row in ids]
        if any(self.unknown in row for row in rows):
            raise UserError("this source is poison")
        if any(len(row) > 40 for row in rows):
            raise RuntimeError("a bug")
        return self.inner.translate_ids(rows, options, heads=heads)


@pytest.fixture(scope="module")
def translator(tmp_path_factory: pytest.TempPathFactory) -> Translator:
    return Translator.load(make_run(tmp_path_factory.mktemp("run")), device="cpu")


@pytest.fixture()
def controlled(translator: Translator) -> Iterator[Controlled]:
    wrapper = Controlled(translator)
    yield wrapper
    wrapper.gate.set()


def wait_for(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_full_queue_is_503_then_serves(controlled: Controlled) -> None:
    limits = Limits(queue_size=1, max_batch=1, max_wait_ms=0)
    app = create_app({"m": controlled}, limits)  # type: ignore[dict-item]
    with TestClient(app) as client, ThreadPoolExecutor(2) as pool:
        batcher = app.state.batchers["m"]
        controlled.gate.clear()
        first = pool.submit(client.post, "/translate", json={"text": SENTENCES[0]})
        wait_for(controlled.entered.is_set)  # the worker holds the first request
        second = pool.submit(client.post, "/translate", json={"text": SENTENCES[1]})
        wait_for(lambda: batcher.queued == 1)  # the second fills the queue
        full = client.post("/translate", json={"text": SENTENCES[2]})
        assert full.status_code == 503
        assert full.json()["detail"].startswith("model 'm' has 1 requests waiting")
        controlled.gate.set()
        assert first.result().status_code == second.result().status_code == 200
        assert client.post("/translate", json={"text": SENTENCES[2]}).status_code == 200


def test_slow_decode_is_504_then_serves(controlled: Controlled) -> None:
    app = create_app({"m": controlled}, Limits(timeout_s=0.3))  # type: ignore[dict-item]
    with TestClient(app) as client:
        controlled.gate.clear()
        slow = client.post("/translate", json={"text": SENTENCES[0]})
        assert slow.status_code == 504
        assert slow.json() == {"detail": "no translation within 0.3 s"}
        controlled.gate.set()
        assert client.post("/translate", json={"text": SENTENCES[0]}).status_code == 200


def test_a_bad_request_fails_alone_in_its_batch(controlled: Controlled, translator) -> None:
    """Four requests make one batch (max_batch 4, a long wait); its one call fails on the
    poisoned source, each request is retried alone, and only that one gets the error."""
    limits = Limits(max_batch=4, max_wait_ms=5000)
    app = create_app({"m": controlled}, limits)  # type: ignore[dict-item]
    texts = [SENTENCES[0], f"a {POISON} dog", SENTENCES[1], SENTENCES[2]]
    with TestClient(app) as client, ThreadPoolExecutor(len(texts)) as pool:
        answers = [pool.submit(client.post, "/translate", json={"text": t}) for t in texts]
        results = [answer.result() for answer in answers]
    assert controlled.calls == [4, 1, 1, 1, 1]  # the batch, then each request alone
    statuses = {text: result.status_code for text, result in zip(texts, results, strict=True)}
    assert statuses == {text: 422 if POISON in text else 200 for text in texts}
    for text, result in zip(texts, results, strict=True):
        if POISON in text:
            assert result.json() == {"detail": "this source is poison"}
        else:
            assert result.json()["translations"][0]["text"] == translator.translate(text).text


def test_a_bug_is_json_500_and_the_worker_lives(controlled: Controlled) -> None:
    app = create_app({"m": controlled})  # type: ignore[dict-item]
    with TestClient(app, raise_server_exceptions=False) as client:
        broken = client.post("/translate", json={"text": CRASH})
        assert broken.status_code == 500
        assert broken.json() == {"detail": "internal error: RuntimeError"}
        assert client.post("/translate", json={"text": SENTENCES[0]}).status_code == 200


def test_close_finishes_every_queued_request(translator: Translator) -> None:
    batcher = Batcher("m", translator, Limits(max_batch=2))
    futures = [batcher.submit([translator.src_tok.encode(s)], translator.decode) for s in SENTENCES]
    batcher.close()
    assert all(f.done() for f in futures)
    expected = [t.text for t in translator.translate(SENTENCES)]
    assert [f.result()[0].text for f in futures] == expected
    assert batcher.batches >= len(SENTENCES) // 2


def test_hundreds_of_texts_within_the_limit_and_long_inputs(
    translator: Translator, tmp_path: Path
) -> None:
    """300 texts in one request, and a 10,000-character text, when the limits allow them:
    bounded answers (outputs capped by max_len), in order."""
    limits = Limits(max_texts=300, max_chars=10_000, max_len=20)
    with TestClient(create_app({"m": translator}, limits)) as client:
        texts = [SENTENCES[i % len(SENTENCES)] for i in range(300)]
        many = client.post("/translate", json={"text": texts, "attention": False})
        assert many.status_code == 200
        assert len(many.json()["translations"]) == 300
        assert many.json()["translations"][5]["text"] == translator.translate(texts[5]).text
        long = client.post("/translate", json={"text": ("the dog " * 1250)[:10_000]})
        assert long.status_code == 200
        (record,) = long.json()["translations"]
        assert len(record["tokens"]) <= 20
        assert len(record["source_tokens"]) == 2500
