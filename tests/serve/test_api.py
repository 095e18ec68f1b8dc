"""`attnmt serve`'s HTTP API: every endpoint and every error code, and batched answers that
equal the Translator's."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from helpers import SENTENCES, make_run

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from attnmt.serve.app import create_app  # noqa: E402
from attnmt.serve.limits import Limits  # noqa: E402
from attnmt.translate.translator import Translator  # noqa: E402

LIMITS = Limits(max_chars=300, max_texts=8, max_wait_ms=20, max_beam=8, timeout_s=20)


@pytest.fixture(scope="module")
def translators(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Translator]:
    first = make_run(tmp_path_factory.mktemp("bahdanau"), seed=0)
    second = make_run(tmp_path_factory.mktemp("luong"), seed=1, decoder="luong")
    return {
        "bahdanau": Translator.load(first, device="cpu"),
        "luong": Translator.load(second, device="cpu"),
    }


@pytest.fixture(scope="module")
def client(translators: dict[str, Translator]) -> Iterator[TestClient]:
    with TestClient(create_app(translators, LIMITS)) as client:
        yield client


def test_health_and_models(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert set(health["models"]) == {"bahdanau", "luong"}
    assert health["models"]["luong"]["model"]["decoder"] == "luong"
    assert health["models"]["bahdanau"]["parameters"] > 0
    models = client.get("/models").json()
    assert models["default"] == "bahdanau"
    assert [m["name"] for m in models["models"]] == ["bahdanau", "luong"]
    assert all(m["has_attention"] for m in models["models"])


def test_page_static_files_and_docs(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text
        assert client.get(asset).status_code == 200
    modules, seen = ["app.js"], set()  # the page's JS modules, each served as JavaScript
    while modules:
        name = modules.pop()
        seen.add(name)
        script = client.get(f"/static/{name}")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        modules += [m for m in re.findall(r'from "\./([\w.]+)"', script.text) if m not in seen]
    assert {"app.js", "common.js", "heatmap.js", "translate.js", "chat.js"} <= seen
    docs = client.get("/docs")  # the viewer's files from this server, never a CDN
    assert docs.status_code == 200 and "/static/swagger/swagger-ui-bundle.js" in docs.text
    assert "https://" not in docs.text and client.get("/redoc").status_code == 404
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE"):
        assert client.get(f"/static/swagger/{asset}").status_code == 200
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/translate"]["post"]["requestBody"]["content"]["application/json"]
    assert {"text", "beam", "n_best", "units"} <= set(body["schema"]["properties"])


def test_one_text_matches_translator(client: TestClient, translators) -> None:
    answer = client.post("/translate", json={"text": SENTENCES[0], "beam": 3, "n_best": 2})
    assert answer.status_code == 200
    (record,) = answer.json()["translations"]
    expected = translators["bahdanau"].translate(SENTENCES[0], beam=3, n_best=2).to_dict()
    assert record["text"] == expected["text"]
    assert record["tokens"] == expected["tokens"]
    assert record["source_tokens"] == expected["source_tokens"]
    assert [h["text"] for h in record["hypotheses"]] == [h["text"] for h in expected["hypotheses"]]
    assert record["score"] == pytest.approx(expected["score"], abs=1e-4)
    assert np.allclose(record["attention"], expected["attention"], atol=1e-3)


def test_concurrent_requests_are_batched_and_equal_translator(
    translators: dict[str, Translator],
) -> None:
    """Requests sent together are decoded in fewer batches than requests, and every
    answer equals what the Translator gives for the same text and options."""
    options = [{"beam": 1}, {"beam": 3, "n_best": 2}, {"beam": 2, "alpha": 0.0}]
    jobs = [(text, options[i % 3]) for i, text in enumerate(SENTENCES)] * 2
    limits = Limits(max_wait_ms=200, max_beam=8)
    with TestClient(create_app(translators, limits)) as client:
        barrier = threading.Barrier(len(jobs))

        def send(job: tuple[str, dict]) -> dict:
            barrier.wait()
            return client.post("/translate", json={"text": job[0], **job[1]}).json()

        with ThreadPoolExecutor(len(jobs)) as pool:
            answers = list(pool.map(send, jobs))
        batches = client.app.state.batchers["bahdanau"].batches  # type: ignore[attr-defined]
    assert batches < len(jobs)
    translator = translators["bahdanau"]
    for (text, option), answer in zip(jobs, answers, strict=True):
        expected = translator.translate(text, **option)
        (record,) = answer["translations"]
        assert record["text"] == expected.text
        assert [h["text"] for h in record["hypotheses"]] == [h.text for h in expected.hypotheses]
        assert record["score"] == pytest.approx(expected.score, abs=1e-4)


def test_list_of_texts_words_and_no_attention(client: TestClient, translators) -> None:
    texts = [SENTENCES[1], "", SENTENCES[2]]
    answer = client.post("/translate", json={"text": texts, "model": "luong", "units": "words"})
    records = answer.json()["translations"]
    assert answer.json()["model"] == "luong"
    assert [r["text"] for r in records] == [t.text for t in translators["luong"].translate(texts)]
    assert records[1]["text"] == "" and records[1]["source_tokens"] == []
    for record in records:
        assert not any(token.startswith("\u2581") for token in record["tokens"])
        assert len(record["attention"]) == len(record["tokens"]) + 1
        assert all(sum(row) == pytest.approx(1.0, abs=1e-3) for row in record["attention"][1:])
    bare = client.post("/translate", json={"text": "a dog", "attention": False}).json()
    assert bare["translations"][0]["attention"] is None


def test_seeded_sampling_is_reproducible(client: TestClient) -> None:
    body = {"text": SENTENCES[3], "sample": True, "seed": 7, "n_best": 3, "beam": 3}
    first, second = (client.post("/translate", json=body).json() for _ in range(2))
    assert first == second


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"text": "a", "model": "nope"}, 404, "unknown model 'nope'; loaded: bahdanau, luong"),
        ({"text": "a", "beem": 3}, 422, "beem: unknown option"),
        ({"text": "a", "beam": 0}, 422, "beam: Input should be greater than or equal to 1"),
        ({"text": "a", "beam": 2, "n_best": 3}, 422, "n_best (3) must be at most beam (2)"),
        ({"text": "a", "beam": 10000}, 422, "beam/n_best 10000 is over the limit 8"),
        ({"text": "a", "max_len": 100000}, 422, "max_len 100000 is over the limit 256"),
        # found by the fuzzer: an int beyond int64 was a 500 in search's length rules
        ({"text": "a", "min_len": 2**64}, 422, "decode.min_len: Input should be less"),
        ({"text": "a", "seed": -1}, 422, "decode.seed: Input should be greater than or equal to 0"),
        ({"text": "a", "sample": True, "temperature": 3.4e38}, 422, "decode.temperature"),
        ({"text": 5}, 422, "text"),
        ({}, 422, "text: Field required"),
        ({"text": "x" * 301}, 413, "text 1 has 301 characters; at most 300"),
        ({"text": "x" * 10000}, 413, "text 1 has 10000 characters; at most 300"),
        ({"text": ["a dog"] * 300}, 413, "300 texts; at most 8 per request"),
    ],
)
def test_errors_are_one_line_json(client: TestClient, body: dict, status: int, message) -> None:
    answer = client.post("/translate", json=body)
    assert answer.status_code == status
    assert answer.json().keys() == {"detail"}
    assert answer.json()["detail"].startswith(message)
    assert "\n" not in answer.json()["detail"]
    assert client.post("/translate", json={"text": "a dog"}).status_code == 200  # still serving


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"text": "a \xff dog"}', "the body is not valid UTF-8"),
        (b'{"text": "a dog"', "the body is not valid JSON"),
        (b"", "the body is not valid JSON"),
        (b"[1, 2]", "Input should be a valid dictionary"),
    ],
)
def test_bad_bodies_are_422(client: TestClient, raw: bytes, message: str) -> None:
    answer = client.post("/translate", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(message)
    assert client.post("/translate", json={"text": "a dog"}).status_code == 200


def test_a_huge_body_is_413_unread(client: TestClient) -> None:
    huge = b'{"text": "' + b"a" * 2_000_000 + b'"}'
    answer = client.post("/translate", content=huge, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    assert answer.json()["detail"].startswith("the body is over")


def test_unknown_route_is_json_404(client: TestClient) -> None:
    answer = client.get("/nowhere")
    assert answer.status_code == 404 and answer.json() == {"detail": "Not Found"}


def test_empty_strings_and_many_empty_texts(client: TestClient) -> None:
    answer = client.post("/translate", json={"text": ["", " ", ""]})
    assert answer.status_code == 200
    assert [r["text"] for r in answer.json()["translations"]] == ["", "", ""]
    assert client.post("/translate", json={"text": []}).json() == {
        "model": "bahdanau",
        "translations": [],
    }


def multihead_translator(heads: int) -> Translator:
    """An RNN with the multihead score (one layer of `heads` heads), random weights."""
    from attnmt.config import build_config
    from attnmt.data.tokenize import WordTokenizer
    from attnmt.models.build import build_model

    src_tok = WordTokenizer.build(SENTENCES, 100)
    tgt_tok = WordTokenizer.build(SENTENCES, 100)
    attention = {"score": "multihead", "heads": heads}
    model_config = {"embed_dim": 8, "hidden_dim": 16, "dropout": 0.0, "attention": attention}
    config = build_config([("test", {"model": model_config, "decode": {"max_len": 12}})])
    torch.manual_seed(0)
    model = build_model(config.model, src_tok.vocab_size, tgt_tok.vocab_size).eval()
    return Translator(model, src_tok, tgt_tok, config)


def test_heads_of_a_multihead_model(translators: dict[str, Translator]) -> None:
    """heads=true adds (layers, heads, rows, columns) weights, each row a distribution whose
    mean over the heads is the default map; models report has_heads."""
    models = {"multihead": multihead_translator(heads=2), **translators}
    with TestClient(create_app(models)) as client:
        assert client.get("/models").json()["models"][0]["has_heads"]
        body = {"text": SENTENCES[0], "heads": True, "beam": 2, "n_best": 2, "units": "words"}
        (record,) = client.post("/translate", json=body).json()["translations"]
        plain = client.post("/translate", json={**body, "heads": False}).json()
    heads = np.array(record["attention_heads"])
    assert heads.shape == (1, 2, len(record["tokens"]) + 1, len(record["source_tokens"]))
    assert np.allclose(heads.sum(axis=-1), 1.0, atol=1e-3)
    assert np.allclose(heads[-1].mean(axis=0), record["attention"], atol=2e-3)
    assert all("attention_heads" in h for h in record["hypotheses"])
    assert "attention_heads" not in plain["translations"][0]
    assert plain["translations"][0]["text"] == record["text"]
