"""`POST /chat`: replies equal to the Responder's, with and without a backward run, each
candidate with its own attention; words the model read as the unknown piece shown as
written; every user error one line of JSON with its documented status (the narrow beam in
the request's terms, not the CLI's); the schema; and every use of a model on its batcher's
thread, whichever route asked."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import SENTENCES, make_run

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from attnmt.cli.main import build_parser  # noqa: E402
from attnmt.serve.app import create_app  # noqa: E402
from attnmt.serve.limits import Limits  # noqa: E402
from attnmt.translate.chatbot import NarrowBeam, Responder  # noqa: E402
from attnmt.translate.rerank import Reranker  # noqa: E402
from attnmt.translate.translator import Translator  # noqa: E402

LIMITS = Limits(max_chars=300, max_texts=4, max_wait_ms=20, max_beam=12, timeout_s=20)
SAMPLE = {"sample": True, "temperature": 2.0, "seed": 3, "max_len": 8}  # varied candidates


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("chat")
    return {
        "chat": make_run(root / "chat", seed=0, task="dialogue", context_turns=1),
        "backward": make_run(root / "backward", seed=1, task="dialogue_backward"),
        "mt": make_run(root / "mt", seed=2),
    }


@pytest.fixture(scope="module")
def translators(runs: dict[str, Path]) -> dict[str, Translator]:
    """chat (with a backward run), plain (the same dialogue run without one), mt (a
    translation model) and backward (the backward run, served as a model of its own)."""
    load = {name: Translator.load(run, device="cpu") for name, run in runs.items()}
    plain = Translator.load(runs["chat"], device="cpu")
    return {"chat": load["chat"], "plain": plain, "mt": load["mt"], "backward": load["backward"]}


@pytest.fixture(scope="module")
def responder(translators: dict[str, Translator], runs: dict[str, Path]) -> Responder:
    reranker = Reranker(Translator.load(runs["backward"], device="cpu"))
    return Responder(translators["chat"], reranker)


@pytest.fixture(scope="module")
def client(translators: dict[str, Translator], responder: Responder) -> Iterator[TestClient]:
    app = create_app(translators, LIMITS, responders={"chat": responder})
    with TestClient(app) as client:
        yield client


def chat(client: TestClient, **body: Any) -> dict[str, Any]:
    answer = client.post("/chat", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_a_reranked_reply_is_the_responders(client: TestClient, responder: Responder) -> None:
    """The default with a backward run: MMI-reranked candidates, best first, and the
    reply's attention over the words read (the previous turn, the separator, the message)."""
    history = [SENTENCES[5], SENTENCES[1]]
    answer = chat(client, history=history, message=f"  {SENTENCES[0]} ", model="chat", **SAMPLE)
    options = responder.translator.options(**SAMPLE)
    expected = responder.respond(history, SENTENCES[0], options)
    assert answer["model"] == "chat" and answer["reranked"] and expected.reranked
    assert answer["reply"] == expected.text == answer["candidates"][0]["text"]
    assert len(answer["candidates"]) > 1  # the candidates differ: there is a choice
    for got, want in zip(answer["candidates"], expected.candidates, strict=True):
        assert got["text"] == want.text and got["backward"] is not None
        scores = {key: got[key] for key in want.to_dict()}
        assert scores == pytest.approx(want.to_dict(), abs=1e-5)
    scores = [c["score"] for c in answer["candidates"]]
    assert scores == sorted(scores, reverse=True)
    # context_turns 1: the last history turn, the separator, the message
    read = f"{SENTENCES[1]} ||| {SENTENCES[0]}".split()
    assert answer["source_tokens"] == read
    record = expected.translation.to_dict("words")
    assert answer["tokens"] == record["tokens"] == answer["reply"].split()
    weights = np.array(answer["attention"])
    assert weights.shape == (len(answer["tokens"]) + 1, len(read))
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-3)
    assert np.allclose(weights, record["attention"], atol=1e-4)
    assert answer["unknown"] == []


def test_every_candidate_has_its_own_attention(client: TestClient, responder: Responder) -> None:
    """Each candidate's words and attention over the words read, as search found them:
    (words + EOS) x words read, rows distributions; the first is the reply's."""
    history = [SENTENCES[6]]
    answer = chat(
        client,
        history=history,
        message=SENTENCES[7],
        model="chat",
        candidate_attention=True,
        **SAMPLE,
    )
    expected = responder.respond(history, SENTENCES[7], responder.translator.options(**SAMPLE))
    read = len(answer["source_tokens"])
    assert len(answer["candidates"]) > 1
    for got, want in zip(answer["candidates"], expected.candidates, strict=True):
        words = want.translation.to_dict("words")
        assert got["tokens"] == words["tokens"] == got["text"].split()
        weights = np.array(got["attention"])
        assert weights.shape == (len(got["tokens"]) + 1, read)
        assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-3)
        assert np.allclose(weights, words["attention"], atol=1e-4)
    first = answer["candidates"][0]
    assert first["tokens"] == answer["tokens"] and first["attention"] == answer["attention"]
    attentions = {str(c["attention"]) for c in answer["candidates"]}
    assert len(attentions) == len(answer["candidates"])  # not the reply's, copied
    plain = chat(client, history=history, message=SENTENCES[7], model="chat", **SAMPLE)
    assert all(c.keys() == {"text", "forward", "backward", "score"} for c in plain["candidates"])
    assert plain["attention"] == answer["attention"]  # the reply's own map either way


def test_words_not_in_the_vocabulary_show_as_written(client: TestClient) -> None:
    """A word the model read as "<unk>" (in the message or a context turn) is shown as
    written and listed in "unknown"; the attention keeps one column per word. /translate's
    word units do the same; its pieces keep the model's piece."""
    history = [SENTENCES[0], f"{SENTENCES[1]} Zürichsee"]
    message = f"qwxz {SENTENCES[2]}"
    answer = chat(
        client, history=history, message=message, model="chat", candidate_attention=True, **SAMPLE
    )
    read = f"{SENTENCES[1]} Zürichsee ||| qwxz {SENTENCES[2]}".split()
    assert answer["source_tokens"] == read
    assert [read[i] for i in answer["unknown"]] == ["Zürichsee", "qwxz"]
    assert np.array(answer["attention"]).shape[1] == len(read)
    for candidate in answer["candidates"]:
        assert np.array(candidate["attention"]).shape[1] == len(read)
    text = f"{SENTENCES[3]} qwxz"
    for units, shown in (("words", "qwxz"), ("pieces", "▁<unk>")):
        got = client.post("/translate", json={"text": text, "model": "mt", "units": units})
        record = got.json()["translations"][0]
        assert record["unknown"] == [len(text.split()) - 1]
        assert record["source_tokens"][-1] == shown
        assert np.array(record["attention"]).shape[1] == len(text.split())


def test_the_narrow_beam_names_fields_here_and_flags_in_the_cli(
    client: TestClient, responder: Responder
) -> None:
    """The server names the request's fields and the model's rerank.candidates; the CLI's
    message names flags that `attnmt chat` has."""
    answer = client.post("/chat", json={"message": SENTENCES[0], "model": "chat", "beam": 4})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "\n" not in detail and "--" not in detail
    for named in ('"beam": 10', '"sample": true', "10 candidates (rerank.candidates", "beam is 4"):
        assert named in detail, detail
    with pytest.raises(NarrowBeam) as caught:
        responder.reply_options(responder.translator.options(beam=4, sample=False))
    flags = re.findall(r"--[a-z-]+", str(caught.value))
    assert flags and "\n" not in str(caught.value)
    parser = build_parser("chat")
    known = parser._subparsers._group_actions[0].choices["chat"]._option_string_actions  # type: ignore[union-attr]
    assert all(flag in known for flag in flags), flags


def test_replies_without_reranking(client: TestClient, translators) -> None:
    """rerank false (or no backward run): the distinct hypotheses as search ranked them,
    with no backward score; a beam's n-best list gives the candidates."""
    body = {"history": [], "message": SENTENCES[2], "beam": 4, "n_best": 3}
    answers = [
        chat(client, **body, model="chat", rerank=False),
        chat(client, **body, model="plain"),
    ]
    translator = translators["plain"]
    found = translator.translate(SENTENCES[2], beam=4, n_best=3, allow_unk=False).hypotheses
    texts = list(dict.fromkeys(h.text for h in found if h.text.strip())) or [found[0].text]
    for answer in answers:
        assert not answer["reranked"]
        assert [c["text"] for c in answer["candidates"]] == texts
        assert all(c["backward"] is None for c in answer["candidates"])
        assert answer["candidates"][0]["forward"] == pytest.approx(found[0].score, abs=1e-4)
        assert answer["source_tokens"] == SENTENCES[2].split()  # no context: the message
    assert answers[0]["candidates"] == answers[1]["candidates"]


def test_seeded_chats_repeat_and_models_say_what_they_read(client: TestClient) -> None:
    body = {"message": SENTENCES[3], "history": [SENTENCES[4]], "model": "chat", **SAMPLE}
    assert chat(client, **body) == chat(client, **body)
    models = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert models["chat"]["context_turns"] == models["plain"]["context_turns"] == 1
    assert models["chat"]["reranker"] and models["plain"]["reranker"] is None
    assert models["mt"]["context_turns"] is None


NOT_DIALOGUE = "the model 'mt' is a translation model, not a dialogue model"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "mt"}, 422, NOT_DIALOGUE),
        ({"model": "backward"}, 422, "the model 'backward' is a backward dialogue model"),
        ({"model": "nope"}, 404, "unknown model 'nope'; loaded: chat, plain, mt, backward"),
        ({"message": " \t "}, 422, "message: an empty message has no reply"),
        ({"message": None}, 422, "message: Input should be a valid string"),
        ({"history": "hi"}, 422, "history: Input should be a valid list"),
        ({"beem": 3}, 422, "beem: unknown option"),
        ({"top_p": 1.5}, 422, "top_p: Input should be less than or equal to 1"),
        ({"beam": 2, "n_best": 3}, 422, "n_best (3) must be at most beam (2)"),
        ({"beam": 100}, 422, "beam/n_best 100 is over the limit 12"),
        ({"max_len": 10**6}, 422, "max_len 1000000 is over the limit 256"),
        (
            {"beam": 4},
            422,
            "beam: reranking takes 10 candidates (rerank.candidates of the model 'chat')",
        ),
        ({"model": "plain", "rerank": True}, 422, "rerank: the model 'plain' has no backward"),
        ({"message": "x" * 301}, 413, "the message has 301 characters; at most 300"),
        ({"history": ["a"] * 5}, 413, "5 history turns; at most 4 per request"),
        ({"history": ["a", "x" * 400]}, 413, "history turn 2 has 400 characters; at most 300"),
        ({"history": ["x" * 10**6]}, 413, "the body is over"),
    ],
)
def test_user_errors_are_one_line_json(
    client: TestClient, body: dict[str, Any], status: int, message: str
) -> None:
    answer = client.post("/chat", json={"message": SENTENCES[0], "model": "chat", **body})
    assert answer.status_code == status
    assert answer.json().keys() == {"detail"}
    assert answer.json()["detail"].startswith(message), answer.json()["detail"]
    assert "\n" not in answer.json()["detail"]
    assert client.post("/chat", json={"message": SENTENCES[0], "sample": True}).status_code == 200


def test_bad_bodies_are_422(client: TestClient) -> None:
    for raw, message in ((b'{"message": "a', "not valid JSON"), (b"\xff", "not valid UTF-8")):
        answer = client.post("/chat", content=raw, headers={"content-type": "application/json"})
        assert answer.status_code == 422 and message in answer.json()["detail"]


def test_the_schema_declares_chat(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    post = schema["paths"]["/chat"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert {"history", "message", "model", "rerank", "beam", "sample", "seed"} <= set(
        body["properties"]
    )
    assert body["required"] == ["message"]
    assert set(post["responses"]) == {"200", "401", "404", "413", "422", "429", "503", "504"}
    assert "not a dialogue model" in post["responses"]["422"]["description"]
    error = post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorResponse")
    reply = post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert reply.endswith("/ChatResponse")
    properties = schema["components"]["schemas"]["ChatResponse"]["properties"]
    assert set(properties) == {
        "model",
        "reply",
        "tokens",
        "source_tokens",
        "unknown",
        "attention",
        "candidates",
        "reranked",
    }
    candidate = schema["components"]["schemas"]["ChatCandidate"]["properties"]
    assert set(candidate) == {"text", "forward", "backward", "score", "tokens", "attention"}


def test_models_run_on_their_batcher_thread_only(
    translators: dict[str, Translator], responder: Responder
) -> None:
    """Chats and translations sent together to one dialogue model: each answer is what
    it is alone, and every forward pass of the model and of its backward model runs on
    that model's batcher thread, never two at once."""
    assert responder.reranker is not None
    modules = [translators["chat"].model.encoder, responder.reranker.backward.model.encoder]  # type: ignore[attr-defined]
    threads: set[str] = set()
    running, most = [0], [0]
    lock = threading.Lock()

    def enter(*_: Any) -> None:
        with lock:
            threads.add(threading.current_thread().name)
            running[0] += 1
            most[0] = max(most[0], running[0])

    def leave(*_: Any) -> None:
        with lock:
            running[0] -= 1

    hooks = [m.register_forward_pre_hook(enter) for m in modules]
    hooks += [m.register_forward_hook(leave) for m in modules]
    jobs = [("/chat", {"message": s, "beam": 10}) for s in SENTENCES[:6]]
    jobs += [("/translate", {"text": s, "beam": 2}) for s in SENTENCES[:6]]
    try:
        with TestClient(create_app(translators, LIMITS, responders={"chat": responder})) as client:
            barrier = threading.Barrier(len(jobs))

            def send(job: tuple[str, dict[str, Any]]) -> dict[str, Any]:
                barrier.wait()
                answer = client.post(job[0], json={"model": "chat", **job[1]})
                return dict(answer.json())

            with ThreadPoolExecutor(len(jobs)) as pool:
                together = list(pool.map(send, jobs))
            alone = [send_alone(client, job) for job in jobs]
    finally:
        for hook in hooks:
            hook.remove()
    assert threads == {"attnmt-chat"} and most[0] == 1
    for got, want in zip(together, alone, strict=True):
        if "reply" in want:
            assert got["reply"] == want["reply"]
            assert [c["text"] for c in got["candidates"]] == [c["text"] for c in want["candidates"]]
        else:
            assert got["translations"][0]["text"] == want["translations"][0]["text"]


def send_alone(client: TestClient, job: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(client.post(job[0], json={"model": "chat", **job[1]}).json())
