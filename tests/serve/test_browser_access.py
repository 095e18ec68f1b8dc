"""The page and /docs of a server with API keys, in a real browser (Chromium through
Playwright, skipped with the reason when either is missing): the page asks for the key,
keeps it in the tab only, and /docs renders with every request off this machine blocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import make_run
from test_browser import CHROMIUM, CHROMIUM_ARGS, free_port, sync_api, wait_until_up

KEY = "page-test-key-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`attnmt serve` of a random model on loopback, with one API key."""
    run_dir = make_run(tmp_path_factory.mktemp("access") / "run")
    port = free_port()
    command = [sys.executable, "-m", "attnmt.cli", "serve", "--port", str(port)]
    command += ["--threads", "1", "--model", f"tiny={run_dir}"]
    env = {**os.environ, "ATTNMT_API_KEYS": f"tester:{KEY}"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, seconds=180)  # a busy machine starts it slowly
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_the_page_asks_for_the_key_and_keeps_it_in_the_tab_only(server: str, browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server + "/")
    form = page.locator("#key-form")
    form.wait_for()
    assert page.locator("#key-note").inner_text() == "This server needs an API key."
    assert page.get_by_role("alert").inner_text().startswith("Could not list the models: 401")
    page.get_by_label("API key").fill("not-the-key-at-all")
    page.get_by_role("button", name="Use this key").click()
    page.get_by_text("The server refused that API key. Enter another.").wait_for()
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Use this key").click()
    page.locator("#model option").first.wait_for(state="attached")
    assert form.is_hidden() and page.get_by_role("alert").is_hidden()
    page.get_by_label("Source text").fill("the dog sees a cat")
    page.get_by_role("button", name="Translate").click()
    page.locator(".panel .heatmap svg").wait_for()  # the key went with the request
    # kept in this tab's sessionStorage: not in localStorage, not in a cookie
    assert page.evaluate("sessionStorage.getItem('attnmt-api-key')") == KEY
    assert page.evaluate("localStorage.length") == 0 and context.cookies() == []
    page.reload()  # the same tab: still known
    page.locator("#model option").first.wait_for(state="attached")
    assert form.is_hidden()
    other = browser.new_context().new_page()  # another tab: asks again
    other.goto(server + "/")
    other.locator("#key-form").wait_for()
    assert errors == []


def test_docs_render_with_the_network_off(server: str, browser, tmp_path: Path) -> None:
    """/docs with every request that is not to this server aborted: the viewer's script
    and style come from the server, and it lists the operations."""
    page = browser.new_page()
    outside: list[str] = []

    def only_here(route: Any) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    page.goto(server + "/docs")
    page.locator(".opblock-summary-path").first.wait_for(timeout=20_000)
    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    assert {"/translate", "/chat", "/models", "/health", "/metrics"} <= paths
    assert page.locator(".auth-wrapper .authorize").count() == 1  # the key scheme is shown
    assert outside == []  # nothing was even asked of another host
    page.screenshot(path=str(tmp_path / "docs.png"))
