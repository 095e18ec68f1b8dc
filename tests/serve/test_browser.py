"""The attention page in a real browser: Debian's Chromium driven by Playwright, against a
real `attnmt serve` of a tiny model trained here, a second to compare with, and a random
dialogue model with a backward run for the Chat tab.

Skipped, with the reason shown, when Playwright or Chromium is missing. The README's
screenshot comes from this test, with the models trained longer:

    ATTNMT_SCREENSHOT=docs/serve.png pytest tests/serve/test_browser.py
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import make_run

from attnmt.compare.evaluation import torch_threads
from attnmt.config import build_config
from attnmt.data.synthetic import write_task
from attnmt.train.trainer import Trainer

CHROMIUM = os.environ.get("ATTNMT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SENTENCE = "the dog sees a red cat"
SCREENSHOT = os.environ.get("ATTNMT_SCREENSHOT")  # also save the screenshot here
STEPS = 600 if SCREENSHOT else 20  # training steps: a couple of dozen suffice for the test

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium, or set ATTNMT_CHROMIUM)",
        allow_module_level=True,
    )


def train_tiny(root: Path, seed: int) -> Path:
    """A word-level run trained for STEPS steps: enough for its attention to vary."""
    data = root / "data"
    if not data.is_dir():
        write_task(data, train=300, dev=4, test=4)
    split = {"src": str(data / "train.src"), "tgt": str(data / "train.tgt")}
    dev = {"src": str(data / "dev.src"), "tgt": str(data / "dev.tgt")}
    config = build_config(
        [
            (
                "test",
                {
                    "run_dir": str(root / f"run{seed}"),
                    "model": {"embed_dim": 16, "hidden_dim": 32, "dropout": 0.0},
                    "data": {"train": split, "dev": dev, "tokenizer": "word", "vocab_size": 200},
                    "train": {
                        "max_steps": STEPS,
                        "validate_every": STEPS,
                        "lr": 0.01,
                        "seed": seed,
                    },
                    "decode": {"beam": 3, "max_len": 30},
                },
            )
        ]
    )
    with torch_threads(1):
        Trainer.setup(config, progress_bar=False, log=lambda _: None).run()
    return root / f"run{seed}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`attnmt serve` of a tiny trained model and a second one to compare it with (random,
    untrained, unless for the README's screenshot), and a random dialogue model with a
    backward run that reranks its replies, on a free loopback port; its URL."""
    root = tmp_path_factory.mktemp("browser")
    first = train_tiny(root, 1)
    second = train_tiny(root, 2) if SCREENSHOT else make_run(root / "random", seed=2)
    chat = make_run(root / "chat", seed=3, task="dialogue", context_turns=1)
    backward = make_run(root / "backward", seed=4, task="dialogue_backward", turned=True)
    port = free_port()
    command = [sys.executable, "-m", "attnmt.cli", "serve", "--port", str(port), "--threads", "1"]
    command += ["--model", f"tiny={first}", "--model", f"other={second}"]
    command += ["--model", f"chat={chat}", "--rerank", f"chat={backward}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_until_up(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"attnmt serve exited with {process.returncode}:\n{output}")
        try:
            urllib.request.urlopen(url + "/health", timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"attnmt serve did not answer at {url} within {seconds} s")


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return dict(json.load(answer))


def api_translation(url: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(post(url + "/translate", body)["translations"][0])


def explore(page: Any, url: str, screenshot: Path) -> dict[str, Any]:
    """Drive the page as a user would; return what it showed, and save a screenshot."""
    page.goto(url + "/")
    page.get_by_label("Source text").fill(SENTENCE)
    page.get_by_role("tabpanel", name="Translate").get_by_label("Beam").fill("4")
    page.get_by_label("N-best").fill("3")
    page.get_by_role("button", name="Translate").click()
    panel = page.locator(".panel").first
    panel.locator(".heatmap svg").wait_for()
    shown: dict[str, Any] = {"output": panel.locator(".output").inner_text()}
    shown["hypotheses"] = panel.locator(".nbest button").count()
    target = panel.locator('.label[data-side="tgt"][data-index="1"]')
    target.hover()
    shown["active_cells"] = active_cells(panel)
    shown["top_source"] = panel.locator('.label.top[data-side="src"]').all_text_contents()
    shown["note"] = panel.locator(".focus-note").inner_text()
    panel.locator(".nbest button").nth(1).click()
    shown["pressed"] = panel.locator('.nbest button[aria-pressed="true"]').get_attribute(
        "data-index"
    )
    shown["target_after"] = panel.locator('.label[data-side="tgt"]').all_text_contents()
    panel.locator('.label[data-side="tgt"][data-index="0"]').click()  # pin the first word
    page.mouse.move(0, 0)
    shown["pinned"] = panel.locator(".label.pinned").all_text_contents()
    page.get_by_label("Compare with").check()  # re-translates with both models
    page.locator(".panel").nth(1).locator(".heatmap svg").wait_for()
    shown["panels"] = [page.locator(".panel .model-name").nth(i).inner_text() for i in (0, 1)]
    first = page.locator(".panel").first
    first.locator('.label[data-side="tgt"][data-index="1"]').hover()
    top = first.locator(".label.top").get_attribute("data-index")
    box = first.locator(f'.label-bg[data-side="src"][data-index="{top}"]')
    shown["top_box"] = (float(box.get_attribute("width") or 0), box.evaluate("e => e.style.fill"))
    page.screenshot(path=str(screenshot), full_page=True)
    return shown


def active_cells(panel: Any) -> list[tuple[int, int]]:
    cells = panel.locator(".cell.active")
    return [
        (int(cells.nth(i).get_attribute("data-row")), int(cells.nth(i).get_attribute("data-col")))
        for i in range(cells.count())
    ]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_translate_hover_switch_and_screenshot(server: str, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    shot = tmp_path / "serve.png"
    shown = explore(page, server, shot)
    expected = api_translation(
        server, {"text": SENTENCE, "beam": 4, "n_best": 3, "units": "words", "model": "tiny"}
    )
    assert errors == []
    assert shown["output"] == (expected["text"] or "(empty)")
    assert shown["hypotheses"] == len(expected["hypotheses"]) == 3
    source = expected["source_tokens"]
    assert source == SENTENCE.split()
    # hovering output word 1 marks its row, and the source word it attends to most
    assert sorted(shown["active_cells"]) == [(1, j) for j in range(len(source))]
    looked_at = source[int(np.argmax(expected["attention"][1]))]
    assert shown["top_source"] == [looked_at]
    assert shown["note"].startswith(f"“{expected['tokens'][1]}” looked at: {looked_at} ")
    # the second hypothesis redraws the heatmap with its own words
    assert shown["pressed"] == "1"
    assert shown["target_after"] == [*expected["hypotheses"][1]["tokens"], "</s>"]
    assert shown["pinned"] == [expected["hypotheses"][1]["tokens"][0]]
    assert shown["panels"] == ["tiny", "other"]  # compare: both models side by side
    width, fill = shown["top_box"]  # the source word looked at most is marked
    assert width > 0 and fill.startswith("rgba(240, 165, 0")
    assert shot.stat().st_size > 10_000
    if SCREENSHOT:
        shutil.copyfile(shot, SCREENSHOT)


def test_server_errors_show_inline(server: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(server + "/")
    page.get_by_label("Source text").fill("x" * 1500)  # over the 1000-character limit
    page.get_by_role("button", name="Translate").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == "413: text 1 has 1500 characters; at most 1000"
    page.get_by_label("Source text").fill(SENTENCE)
    page.get_by_role("button", name="Translate").click()
    page.locator(".panel .heatmap svg").wait_for()
    assert page.get_by_role("alert").is_hidden()


def heads_record() -> dict[str, Any]:
    """A translation with 2 layers x 2 heads; head maps put `peak` on one source word per
    row, shifted per head, and the default map is the mean of the last layer's heads."""
    source, tokens = ["a", "red", "cat"], ["ein", "rote", "katze"]
    rows, cols = len(tokens) + 1, len(source)

    def one_hot(shift: int, peak: float = 0.9) -> list[list[float]]:
        rest = (1 - peak) / (cols - 1)
        return [
            [peak if j == (t + shift) % cols else rest for j in range(cols)] for t in range(rows)
        ]

    heads = [[one_hot(0), one_hot(1, peak=0.6)], [one_hot(2), one_hot(2)]]
    hypothesis = {
        "text": "ein rote katze",
        "score": -1.0,
        "rank_score": -1.0,
        "tokens": tokens,
        "attention": one_hot(2),
        "attention_heads": heads,
    }
    return {**hypothesis, "source_tokens": source, "hypotheses": [hypothesis]}


def test_heads_get_layer_and_head_selectors_and_a_grid(
    server: str, browser: Any, tmp_path: Path
) -> None:
    """The page's path for models with heads, fed a known answer (the served RNNs have none)."""
    page = browser.new_page()
    record = heads_record()
    body = json.dumps({"model": "tiny", "translations": [record]})
    page.route("**/translate", lambda route: route.fulfill(status=200, body=body))
    page.goto(server + "/")
    page.get_by_label("Source text").fill("a red cat")
    page.get_by_role("button", name="Translate").click()
    panel = page.locator(".panel").first
    panel.locator(".heatmap svg").wait_for()
    assert panel.locator(".heads").is_visible()
    panel.get_by_label("Layer").select_option(index=1)  # layer 2
    panel.get_by_label("Head").select_option(index=1)  # head 1: shifted by 2
    panel.locator('.label[data-side="tgt"][data-index="0"]').hover()
    assert panel.locator('.label.top[data-side="src"]').all_text_contents() == ["cat"]
    panel.get_by_role("button", name="All heads").click()
    figures = panel.locator(".grid figure")
    assert figures.count() == 4
    assert panel.locator(".grid figure.selected").get_attribute("aria-label") == "Layer 2, head 1"
    figures.nth(1).click()  # layer 1, head 2: shifted by 1
    panel.locator('.label[data-side="tgt"][data-index="0"]').hover()
    assert panel.locator('.label.top[data-side="src"]').all_text_contents() == ["red"]
    assert panel.locator("select.head").input_value() == "1"
    # the keyboard: focus a source word, see who looked at it; Enter pins it
    source_word = panel.locator('.label[data-side="src"][data-index="2"]')
    source_word.focus()
    assert panel.locator('.label.top[data-side="tgt"]').all_text_contents() == ["rote"]
    assert panel.locator(".focus-note").inner_text().startswith("“cat” was looked at by: rote")
    source_word.press("Enter")
    assert source_word.get_attribute("aria-pressed") == "true"
    # the pin stays through a new layer; "average" is the mean of that layer's heads
    panel.locator("select.layer").select_option(index=0)
    panel.locator("select.head").select_option(index=0)
    assert panel.locator(".label.pinned").all_text_contents() == ["cat"]
    source_word.press("Enter")  # unpin
    page.mouse.move(0, 0)
    panel.locator('.label[data-side="tgt"][data-index="0"]').hover()
    assert panel.locator('.label.top[data-side="src"]').all_text_contents() == ["a"]
    page.screenshot(path=str(tmp_path / "heads.png"), full_page=True)
    assert panel.locator("select.layer").input_value() == "0"


def test_chat_tab_conversation_attention_and_candidates(
    server: str, browser: Any, tmp_path: Path
) -> None:
    """Two messages in the Chat tab: each reply is the server's (reranked by default, the
    beam widened for the candidates), its map reads the previous turn and the message,
    hovering a reply word marks the word it looked at most, and every candidate is listed
    with its scores; a word outside the vocabulary shows as written, marked; choosing a
    candidate (click or Enter) shows its own map, the reply brings the reply's back; a bad
    option is shown inline and the message is kept."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server + "/#chat")
    assert page.get_by_role("tab", name="Chat").get_attribute("aria-selected") == "true"
    assert page.get_by_label("Rerank (MMI)").is_checked()
    messages = ["the dog sees a red cat", "a friend draws this qwxz mountain"]
    replies: list[dict[str, Any]] = []
    for message in messages:
        history = [replies[-1]["reply"]] if replies else []  # context_turns 1
        body = {"model": "chat", "history": history, "message": message, "beam": 10}
        body["candidate_attention"] = True  # as the page asks
        replies.append(post(server + "/chat", {**body, "rerank": True, "sample": False}))
        page.get_by_label("Message").fill(message)
        page.get_by_label("Message").press("Enter")
        page.locator(".turn.bot").nth(len(replies) - 1).wait_for()
    panel = page.locator("#reply-panel")
    bubbles = page.locator(".turn .text").all_text_contents()
    assert bubbles == [messages[0], replies[0]["reply"], messages[1], replies[1]["reply"]]
    # the last reply is shown: what it read, its map, its candidates
    last = replies[1]
    assert last["reranked"] and len(last["candidates"]) > 1
    read = " ".join(last["source_tokens"]).split(" ||| ")  # the previous reply, the message
    assert len(read) == 2 and read[1] == messages[1]  # (the reply's words may be <unk>)
    assert panel.locator("#read li").all_text_contents() == read
    backward = {candidate["backward"] for candidate in last["candidates"]}
    assert len(backward) > 1  # the backward run reads the replies: they differ
    rows = panel.locator("#candidates tbody tr")
    assert rows.count() == len(last["candidates"])
    first_row = rows.first.locator("td").all_text_contents()
    best = last["candidates"][0]
    numbers = [f"{best[key]:.2f}" for key in ("forward", "backward", "score")]
    assert first_row == ["✓", best["text"], *numbers]
    panel.locator('.label[data-side="tgt"][data-index="0"]').hover()
    looked_at = last["source_tokens"][int(np.argmax(last["attention"][0]))]
    assert panel.locator('.label.top[data-side="src"]').all_text_contents() == [looked_at]
    assert panel.locator(".focus-note").inner_text().startswith(f"“{last['tokens'][0]}” looked")
    page.screenshot(path=str(tmp_path / "chat.png"), full_page=True)
    # the word outside the vocabulary: as written, marked, in the list and on the map
    unknown = panel.locator("#read .unknown")
    assert unknown.all_text_contents()[-1] == "qwxz"
    assert "not in the model's vocabulary" in (unknown.last.get_attribute("title") or "")
    marked = panel.locator('.label.unknown[data-side="src"]')
    assert [marked.nth(i).text_content() for i in range(marked.count())][-1].startswith("qwxz")
    assert "qwxz" in last["source_tokens"] and "<unk>" not in last["source_tokens"]

    # a candidate's own map, then the reply's again
    def row_labels() -> list[str]:
        return panel.locator('.label[data-side="tgt"]').all_text_contents()

    assert row_labels() == [*last["tokens"], "</s>"]
    rows.nth(1).click()
    assert row_labels() == [*last["candidates"][1]["tokens"], "</s>"]
    assert rows.nth(1).get_attribute("aria-selected") == "true"
    assert rows.first.get_attribute("aria-selected") == "false"
    page.screenshot(path=str(tmp_path / "chat-candidate.png"), full_page=True)
    rows.last.focus()
    page.keyboard.press("Enter")
    assert row_labels() == [*last["candidates"][-1]["tokens"], "</s>"]
    page.locator(".turn.bot .reply").last.click()
    assert row_labels() == [*last["tokens"], "</s>"]
    assert rows.first.get_attribute("aria-selected") == "true"
    # an earlier reply brings its own map back
    page.locator(".turn.bot .reply").first.click()
    assert panel.locator("#read li").all_text_contents() == [messages[0]]
    assert panel.locator(".reply-title").inner_text() == f"“{replies[0]['reply']}”"
    # a beam too narrow for the candidates: the server's one line, the message kept
    page.get_by_role("tabpanel", name="Chat").get_by_label("Beam").fill("2")
    page.get_by_label("Message").fill("a cat")
    page.get_by_role("button", name="Send").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text().startswith("422: beam: reranking takes 10 candidates")
    assert '"sample": true' in alert.inner_text() and "--" not in alert.inner_text()
    assert page.get_by_label("Message").input_value() == "a cat"
    assert page.locator(".turn").count() == 4
    # without reranking: no backward scores
    page.get_by_label("Rerank (MMI)").uncheck()
    page.get_by_role("button", name="Send").click()
    page.locator(".turn.bot").nth(2).wait_for()
    assert page.get_by_role("alert").is_hidden()
    assert panel.locator("#candidates tbody tr").first.locator("td").nth(3).inner_text() == "—"
    assert panel.locator("#candidates-note").inner_text().startswith("Not reranked")
    assert errors == []
