"""Schemathesis fuzzes the server from its own OpenAPI schema (benchmarks/serve_fuzz.py):
a few hundred generated requests over every operation, bodies that fit the schema and
bodies that break it, with tight limits. No 500, no answer outside the
schema, no 503/504 (the queue never fills, nothing times out here); and afterwards a
normal request gets the Translator's answer. The benchmark runs the same with >= 5,000."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("schemathesis", reason="Schemathesis is not installed (the dev extra)")
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from benchmarks.serve_fuzz import HEADERS, fuzz, fuzz_app, still_right  # noqa: E402

EXAMPLES = 75  # per operation and mode: ~300 distinct requests (a GET without parameters
# has one: /translate and /chat get the rest)


def test_fuzzing_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    app, translator = fuzz_app(tmp_path)
    with TestClient(app) as client:
        summary = fuzz(app, EXAMPLES, HEADERS, seed=0)
        assert summary.failures == []
        assert summary.count(500) == summary.count(503) == summary.count(504) == 0
        assert summary.requests >= 250
        translate = summary.statuses["POST /translate"]
        assert translate[200] and translate[422] and translate[404]  # each path was taken
        assert summary.statuses["POST /chat"][200]
        assert still_right(client, translator)
