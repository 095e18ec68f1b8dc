"""Fuzz `attnmt serve` from its own OpenAPI schema with Schemathesis: requests generated
for every operation (/translate, /chat, /models, /health, /metrics), both bodies that fit
the schema and bodies that break it, each answer checked by Schemathesis's checks (no
500, a documented status, the documented content type, headers and body schema; a body
that breaks the schema refused). Then a normal request must still get the Translator's
answer. Writes a summary (examples, statuses by operation, failures) and appends it to
BENCHMARKS.md:

    python -m benchmarks.serve_fuzz --examples 1300          # >= 5,000 requests in all
    python -m benchmarks.serve_fuzz --examples 50 --no-record  # a smoke run

The server is a random tiny translation model and a random tiny dialogue model with a
backward run (their answers are nonsense, their code paths real), with tight limits, so
every limit is in play. It has no API keys: with keys, Schemathesis's negative cases
break the Authorization header, which the fuzzer must replace with a valid key to reach
the routes at all, and the check then takes that valid request for an invalid one that
was accepted. The keys' 401s are tested in tests/serve/test_guard.py instead.
tests/serve/test_fuzz.py runs the same :func:`fuzz` with a few hundred examples.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as seeded
from hypothesis.errors import Unsatisfiable
from schemathesis.core.failures import FailureGroup

from benchmarks import common

DESIGNED = {503, 504}  # a full queue or a timeout: fine when they happen, counted apart


@dataclass
class Summary:
    """What a fuzz run saw: requests by operation and status, and every failure."""

    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(sum(counts.values()) for counts in self.statuses.values())

    def count(self, status: int) -> int:
        return sum(counts[status] for counts in self.statuses.values())


def fuzz(app: Any, examples: int, headers: dict[str, str], seed: int = 0) -> Summary:
    """`examples` generated requests for each operation of `app` and each generation mode
    (positive: fits the schema, negative: breaks it), sent in-process; the app's lifespan
    must be running (``with TestClient(app)``). Failures are collected, not raised."""
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=_config())
    summary = Summary()
    started = time.perf_counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        counts = summary.statuses.setdefault(label, Counter())
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            run = _runner(strategy, examples, seed, headers, counts, summary.failures, label)
            with contextlib.suppress(Unsatisfiable):  # GET /models has nothing to break
                run()
    summary.seconds = time.perf_counter() - started
    return summary


def _runner(
    strategy: Any,
    examples: int,
    seed: int,
    headers: dict[str, str],
    counts: Counter[int],
    failures: list[str],
    label: str,
) -> Any:
    """A Hypothesis test over `strategy` that sends each case and checks its answer."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,  # every run starts afresh: the counts are this run's
        suppress_health_check=list(HealthCheck),
    )
    @seeded(seed)
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        counts[response.status_code] += 1
        try:
            case.validate_response(response, excluded_checks=_excluded())
        except (Exception, FailureGroup) as err:  # noqa: BLE001 - recorded, the run goes on
            body = response.text[:300]
            failures.append(f"{label} -> {response.status_code} {body!r}: {_first_line(err)}")

    return run


REJECTIONS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]
"""What may answer a request that breaks the schema: Schemathesis's default list plus 413,
the server's documented answer to a body over its size limit, which it checks before it
parses the body (so a large invalid body is a 413, not a 422). The not-a-server-error
check still fails every 5xx."""


def _config() -> Any:
    from schemathesis.config import SchemathesisConfig

    checks = {"negative_data_rejection": {"expected-statuses": REJECTIONS}}
    return SchemathesisConfig.from_dict({"checks": checks})


def _excluded() -> list[Any]:
    """Checks left out: positive_data_acceptance wants every request that fits the
    schema answered 2xx, but the schema cannot hold the server's settings (--max-beam,
    --max-chars, ...) nor a model's own rules (n_best <= beam): those are refused with
    their documented 413 or 422, which the status-code check still checks."""
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    return [positive_data_acceptance]


def _first_line(err: BaseException) -> str:
    """What failed, in one line: each failed check's title and message."""
    if isinstance(err, FailureGroup):
        return "; ".join(_first_line(failure) for failure in err.exceptions)
    title = getattr(err, "title", None)
    if title:
        message = " ".join(str(getattr(err, "message", "")).split())
        return f"{title}: {message}"[:400]
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else "".join(traceback.format_exception_only(err)).strip()


HEADERS: dict[str, str] = {}  # sent with every request besides the generated headers


def fuzz_app(root: Path) -> tuple[Any, Any]:
    """The app under fuzzing: a tiny random dialogue model ("chat", the default, so a
    request naming no model reaches /chat's decoding) with a backward run, a tiny random
    translation model ("mt"), tight limits. Returns the app and the
    translation model's Translator (for the check after fuzzing)."""
    from attnmt.config import RerankOptions
    from attnmt.serve.app import create_app
    from attnmt.serve.limits import Limits
    from attnmt.translate.chatbot import Responder
    from attnmt.translate.rerank import Reranker
    from attnmt.translate.translator import Translator
    from tests.helpers import make_run  # the tests' tiny random runs

    mt = Translator.load(make_run(root / "mt", seed=0), device="cpu")
    chat = Translator.load(make_run(root / "chat", seed=1, task="dialogue"), device="cpu")
    backward = make_run(root / "backward", seed=2, task="dialogue_backward", turned=True)
    reranker = Reranker.load(backward, device="cpu")
    rerank = RerankOptions(candidates=1)  # any beam gives it: reranked chats can succeed
    responders = {"chat": Responder(chat, reranker, rerank)}
    limits = Limits(max_chars=200, max_texts=4, max_beam=4, max_len=12, timeout_s=30)
    app = create_app({"chat": chat, "mt": mt}, limits, responders=responders)
    return app, mt


def still_right(client: Any, translator: Any) -> bool:
    """After the fuzzing: a normal request gets the Translator's own answer."""
    from tests.helpers import SENTENCES

    body = {"text": SENTENCES[:3], "model": "mt", "beam": 2, "max_len": 12}
    answer = client.post("/translate", json=body, headers=HEADERS)
    expected = [t.text for t in translator.translate(SENTENCES[:3], beam=2, max_len=12)]
    return (
        answer.status_code == 200
        and [record["text"] for record in answer.json()["translations"]] == expected
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples", type=int, default=1300, help="per operation and mode (5 x 2 of them)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the summary here as JSON")
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    with tempfile.TemporaryDirectory() as scratch:
        app, translator = fuzz_app(Path(scratch))
        with TestClient(app) as client:
            summary = fuzz(app, args.examples, HEADERS, args.seed)
            right = still_right(client, translator)
    statuses = {label: dict(sorted(counts.items())) for label, counts in summary.statuses.items()}
    rows = [
        ("requests generated and sent", f"{summary.requests:,}"),
        ("examples per operation and mode (positive, negative)", str(args.examples)),
        ("seconds", f"{summary.seconds:.0f}"),
        ("500 answers", str(summary.count(500))),
        (
            "503 / 504 answers (queue full / timeout)",
            f"{summary.count(503)} / {summary.count(504)}",
        ),
        (
            "failed checks (server error, status, headers, content type, schema)",
            str(len(summary.failures)),
        ),
        ("a normal request afterwards gets the Translator's answer", "yes" if right else "NO"),
    ]
    rows += [(f"statuses of {label}", json.dumps(counts)) for label, counts in statuses.items()]
    for failure in summary.failures[:20]:
        print(f"failure: {failure}", file=sys.stderr)
    if args.json:
        record = {"rows": dict(rows), "statuses": statuses, "failures": summary.failures}
        args.json.write_text(json.dumps(record, indent=1))
    if args.no_record:
        print("\n".join(f"{a}: {b}" for a, b in rows))
    else:
        notes = "Schemathesis over the server's OpenAPI schema (benchmarks/serve_fuzz.py)."
        common.append("attnmt serve fuzzed from its OpenAPI schema", rows, notes)
    if summary.failures or not right:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
