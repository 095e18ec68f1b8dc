"""The guard: API keys (401 and what stays open), the rate limit (429 with Retry-After),
the metrics and the access log, and the OpenAPI schema that declares them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import SENTENCES, make_run

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from attnmt.errors import UserError  # noqa: E402
from attnmt.serve.accesslog import AccessLog  # noqa: E402
from attnmt.serve.app import create_app  # noqa: E402
from attnmt.serve.auth import ApiKeys  # noqa: E402
from attnmt.serve.ratelimit import RateLimiter  # noqa: E402
from attnmt.translate.translator import Translator  # noqa: E402

ALICE, BOB = "alice-key-0123456789", "bob-key-9876543210"
BARE = "bare-key-abcdefgh"


@pytest.fixture(scope="module")
def translator(tmp_path_factory: pytest.TempPathFactory) -> Translator:
    return Translator.load(make_run(tmp_path_factory.mktemp("run")), device="cpu")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keys_from_a_file_and_the_environment_are_one_set(tmp_path: Path) -> None:
    file = tmp_path / "keys.txt"
    file.write_text(f"# the team\n\nalice:{ALICE}\n{BARE}\n")
    keys = ApiKeys.load(file, env=f"bob:{BOB}, alice:{ALICE}")
    assert set(keys.by_name) == {"alice", "bob", keys.name_of(f"Bearer {BARE}")}
    assert keys.name_of(f"Bearer {ALICE}") == "alice"
    assert keys.name_of(f"bearer   {BOB} ") == "bob"  # the scheme in any case
    bare_name = keys.name_of(f"Bearer {BARE}")
    assert bare_name is not None and bare_name.startswith("sha256:") and BARE not in bare_name
    for wrong in (None, "", "Bearer", f"Basic {ALICE}", f"Bearer {ALICE}x", f"Bearer {ALICE[:-1]}"):
        assert keys.name_of(wrong) is None
    assert not ApiKeys.load(None, env="")  # no keys at all
    with pytest.raises(UserError, match="ATTNMT_API_KEYS, entry 2: expected NAME:KEY or KEY"):
        ApiKeys.load(None, env=f"{ALICE},bob:short")
    with pytest.raises(UserError, match="the name 'alice' is given two different keys"):
        ApiKeys.load(file, env=f"alice:{BOB}")
    with pytest.raises(UserError) as err:  # never shows the key in the message
        ApiKeys.load(None, env="carol:has a space")
    assert "has a space" not in str(err.value)


@pytest.fixture(scope="module")
def guarded(translator: Translator, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    log = tmp_path_factory.mktemp("log") / "access.jsonl"
    keys = ApiKeys({"alice": ALICE, "bob": BOB})
    app = create_app({"m": translator}, keys=keys, access_log=AccessLog(str(log)))
    with TestClient(app) as client:
        yield client, log


def test_every_route_needs_a_key_but_the_open_ones(guarded) -> None:
    client, _ = guarded
    for method, path in (
        ("GET", "/models"),
        ("GET", "/metrics"),
        ("POST", "/translate"),
        ("POST", "/chat"),
        ("GET", "/nowhere"),
    ):
        for headers in ({}, bearer("nope-nope-nope"), {"Authorization": f"Basic {ALICE}"}):
            answer = client.request(method, path, json={"text": "a"}, headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert answer.headers["www-authenticate"] == "Bearer"
            assert set(answer.json()) == {"detail"} and "\n" not in answer.text
            assert answer.json()["detail"].endswith("send Authorization: Bearer KEY")
    for path in ("/", "/static/app.js", "/docs", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    assert client.get("/health").json() == {"status": "ok"}  # nothing about the models
    assert client.get("/health", headers=bearer("wrong-wrong-wrong")).status_code == 401
    full = client.get("/health", headers=bearer(ALICE)).json()
    assert set(full) == {"status", "models", "queued"} and "m" in full["models"]
    answer = client.post("/translate", json={"text": SENTENCES[0]}, headers=bearer(BOB))
    assert answer.status_code == 200


def test_the_access_log_names_keys_never_shows_them_nor_the_text(guarded) -> None:
    client, log = guarded
    before = len(log.read_text().splitlines()) if log.exists() else 0
    client.post("/translate", json={"text": SENTENCES[:2]}, headers=bearer(ALICE))
    client.post("/translate", json={"text": "a", "beam": 0}, headers=bearer(ALICE))
    client.get("/models")
    text = log.read_text()
    assert ALICE not in text and BOB not in text and SENTENCES[0] not in text
    ok, bad, refused = (json.loads(line) for line in text.splitlines()[before:])
    assert {k: ok[k] for k in ("key", "endpoint", "model", "status", "texts")} == {
        "key": "alice",
        "endpoint": "/translate",
        "model": "m",
        "status": 200,
        "texts": 2,
    }
    assert ok["source_tokens"] == sum(len(s.split()) for s in SENTENCES[:2])  # word tokenizer
    assert ok["latency_ms"] > 0 and ok["time"].endswith("+00:00") and ok["method"] == "POST"
    assert (bad["status"], bad["key"], bad["model"], bad["texts"]) == (422, "alice", None, 0)
    assert (refused["status"], refused["key"], refused["endpoint"]) == (401, None, "/models")


def test_log_text_writes_the_texts(translator: Translator, tmp_path: Path) -> None:
    log = tmp_path / "access.jsonl"
    app = create_app({"m": translator}, access_log=AccessLog(str(log), log_text=True))
    with TestClient(app) as client:
        client.post("/translate", json={"text": SENTENCES[:2]})
    (record,) = (json.loads(line) for line in log.read_text().splitlines())
    assert record["text"] == SENTENCES[:2] and record["key"] is None


def test_metrics_count_requests_batches_and_sentences(guarded) -> None:
    client, _ = guarded
    client.post("/translate", json={"text": SENTENCES[:3]}, headers=bearer(ALICE))
    client.post("/translate", json={"text": "a", "model": "x"}, headers=bearer(ALICE))
    answer = client.get("/metrics", headers=bearer(BOB))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    samples = parse_metrics(answer.text)
    assert samples['attnmt_requests_total{endpoint="/translate",model="m",status="200"}'] >= 1
    assert samples['attnmt_requests_total{endpoint="/translate",model="",status="404"}'] == 1
    assert samples['attnmt_requests_total{endpoint="other",model="",status="401"}'] >= 1
    assert samples['attnmt_sentences_total{model="m"}'] >= 3
    assert samples['attnmt_batch_size_count{model="m"}'] >= 1
    assert samples['attnmt_batch_source_tokens_sum{model="m"}'] >= 3
    assert samples['attnmt_queue_depth{model="m"}'] == 0
    assert samples['attnmt_request_seconds_count{endpoint="/translate"}'] >= 2


def parse_metrics(text: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items() if k != "le")
            if "le" not in sample.labels:
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def test_openapi_declares_keys_401_and_429(guarded) -> None:
    client, _ = guarded
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    for route in ("/translate", "/chat"):
        post = schema["paths"][route]["post"]
        assert {"401", "429"} <= set(post["responses"])
        assert "Retry-After" in post["responses"]["429"]["headers"]
        assert post["security"] == [{"apiKey": []}]
    assert schema["paths"]["/health"]["get"]["security"] == [{}, {"apiKey": []}]


def test_rate_limiter_bursts_then_keeps_to_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0])  # 3 a minute: a token every 20 s
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == 20
    assert limiter.take("b") == 0  # each caller has its own bucket
    now[0] = 15.0
    assert limiter.take("a") == 5
    now[0] = 20.0
    assert limiter.take("a") == 0 and limiter.take("a") == 20


def test_rate_limit_is_429_with_retry_after_per_key(translator: Translator) -> None:
    keys = ApiKeys({"alice": ALICE, "bob": BOB})
    with TestClient(create_app({"m": translator}, keys=keys, rate_limit=2)) as client:
        body = {"text": SENTENCES[0]}
        codes = [client.post("/translate", json=body, headers=bearer(ALICE)).status_code]
        codes.append(
            client.post("/chat", json={"message": "hi"}, headers=bearer(ALICE)).status_code
        )
        over = client.post("/translate", json=body, headers=bearer(ALICE))
        assert codes == [200, 422] and over.status_code == 429  # a refused chat counts too
        assert 1 <= int(over.headers["retry-after"]) <= 30
        assert over.json() == {"detail": "over 2 requests a minute per key"}
        assert client.get("/models", headers=bearer(ALICE)).status_code == 200  # not limited
        assert client.post("/translate", json=body, headers=bearer(BOB)).status_code == 200
