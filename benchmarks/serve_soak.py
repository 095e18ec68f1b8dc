"""The long runs of ``benchmarks/serve_load.py``: a soak and a fairness test.

Soak (``--soak MINUTES``): `clients` clients send requests nonstop for MINUTES, each drawn
from a mix (greedy, beam 5, beam 5 with 3-best, attention on and off) with one in ten a
bad request (over max_chars, beam 0, an unknown model, not JSON), each of which must get
its documented 4xx. Every `window` seconds (30 by default) it records the requests and
sentences answered, p50/p99 latency, unexpected answers, and the server's resident
memory (RSS, from /proc). Targets: no unexpected answer; RSS growth <= 5% over the last
5 minutes (over the second half, for a soak shorter than 10 minutes).

Fairness (``--fairness SECONDS``): with two API keys, a quiet key sends one request a
second alone for SECONDS; then again beside a noisy key whose 8 clients send 5-text
requests nonstop. Target: the quiet key's p50 beside the noisy one <= 3x its p50 alone.
"""

from __future__ import annotations

import http.client
import json
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# (share of requests, body options, the status it must get); the texts come per request
GOOD = [
    ({"beam": 1, "attention": False}, 200),
    ({"beam": 1, "attention": True}, 200),
    ({"beam": 5, "attention": False}, 200),
    ({"beam": 5, "n_best": 3, "attention": True}, 200),
]
BAD = [
    ({"text": "x" * 1001}, 413),  # over the default max_chars
    ({"beam": 0}, 422),
    ({"model": "no-such-model"}, 404),
    (None, 422),  # not JSON
]
BAD_SHARE = 0.1


@dataclass
class Window:
    """What happened in one window of the soak."""

    latencies: list[float] = field(default_factory=list)
    sentences: int = 0
    unexpected: list[str] = field(default_factory=list)
    bad_answered: int = 0  # bad requests that got their documented status


def rss_mb(pid: int) -> float:
    """The process's resident memory, from /proc/PID/status (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def send(
    connection: http.client.HTTPConnection, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    connection.request("POST", "/translate", body, {"content-type": "application/json", **headers})
    answer = connection.getresponse()
    return answer.status, answer.read()


def soak_client(
    port: int, sentences: list[str], seed: int, stop: threading.Event, current: list[Window]
) -> None:
    """Send a mix of requests until `stop`; record each in the current window."""
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while not stop.is_set():
        text = rng.choice(sentences)
        bad = rng.random() < BAD_SHARE
        options, expected = rng.choice(BAD if bad else GOOD)
        body = b"{not json" if options is None else json.dumps({"text": text, **options}).encode()
        started = time.perf_counter()
        try:
            status, payload = send(connection, body, {})
        except (OSError, http.client.HTTPException) as err:
            current[0].unexpected.append(repr(err))
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            continue
        window = current[0]
        if status != expected:
            window.unexpected.append(f"{status} for {expected}: {payload[:120]!r}")
        elif bad:
            window.bad_answered += 1
        else:
            window.latencies.append(time.perf_counter() - started)
            window.sentences += 1
    connection.close()


def soak(
    port: int,
    pid: int,
    sentences: list[str],
    minutes: float,
    clients: int = 16,
    window_s: float = 30.0,
) -> list[dict[str, Any]]:
    """Run the soak; one record per window."""
    current = [Window()]
    stop = threading.Event()
    threads = [
        threading.Thread(target=soak_client, args=(port, sentences, c, stop, current))
        for c in range(clients)
    ]
    records = [{"t_s": 0.0, "rss_mb": rss_mb(pid)}]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    end = started + 60 * minutes
    while (now := time.monotonic()) < end:
        time.sleep(min(window_s, end - now))
        window, current[0] = current[0], Window()
        elapsed = time.monotonic() - started
        span = elapsed - records[-1]["t_s"]
        latencies = sorted(window.latencies)
        records.append(
            {
                "t_s": elapsed,
                "rss_mb": rss_mb(pid),
                "requests": len(latencies) + window.bad_answered,
                "sentences_per_s": window.sentences / span if span else 0.0,
                "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
                "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))]
                if latencies
                else float("nan"),
                "unexpected": window.unexpected,
            }
        )
    stop.set()
    for thread in threads:
        thread.join()
    return records


def rss_growth(records: list[dict[str, Any]]) -> float:
    """RSS growth over the last 5 minutes (the second half, for a shorter soak), in %."""
    end = records[-1]["t_s"]
    start = max(end - 300, end / 2)
    first = next(r for r in records if r["t_s"] >= start)
    return 100 * (max(r["rss_mb"] for r in records if r["t_s"] >= start) / first["rss_mb"] - 1)


def soak_rows(records: list[dict[str, Any]], clients: int) -> list[tuple[str, str]]:
    unexpected = [u for r in records[1:] for u in r["unexpected"]]
    rows = [
        ("clients", str(clients)),
        ("mix", "greedy / beam 5 / beam 5 3-best, attention on and off; 1 in 10 a bad request"),
        ("requests answered", f"{sum(r['requests'] for r in records[1:]):,}"),
        ("unexpected answers (errors)", str(len(unexpected))),
        ("RSS at start / end", f"{records[0]['rss_mb']:.0f} / {records[-1]['rss_mb']:.0f} MB"),
        ("RSS growth over the last 5 min (or second half)", f"{rss_growth(records):+.1f}%"),
    ]
    for r in records[1:]:
        rows.append(
            (
                f"t = {r['t_s']:.0f} s",
                f"{r['sentences_per_s']:.1f} sentences/s, p50 {r['p50_ms']:.0f} ms, "
                f"p99 {r['p99_ms']:.0f} ms, {len(r['unexpected'])} errors, "
                f"RSS {r['rss_mb']:.0f} MB",
            )
        )
    return rows


def quiet_client(
    port: int,
    key: str,
    sentences: list[str],
    stop: threading.Event,
    latencies: list[float],
    errors: list[str],
) -> None:
    """One one-sentence request a second (from its start), until `stop`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"authorization": f"Bearer {key}"}
    next_at, n = time.monotonic(), 0
    while not stop.is_set():
        body = json.dumps({"text": sentences[n % len(sentences)], "attention": False}).encode()
        n += 1
        started = time.perf_counter()
        status, payload = send(connection, body, headers)
        if status == 200:
            latencies.append(time.perf_counter() - started)
        else:
            errors.append(f"{status}: {payload[:120]!r}")
        next_at += 1.0
        stop.wait(max(0.0, next_at - time.monotonic()))
    connection.close()


def noisy_client(
    port: int, key: str, sentences: list[str], seed: int, stop: threading.Event, errors: list[str]
) -> None:
    """5-text requests nonstop until `stop`."""
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"authorization": f"Bearer {key}"}
    while not stop.is_set():
        body = json.dumps({"text": rng.sample(sentences, 5), "attention": False}).encode()
        status, payload = send(connection, body, headers)
        if status != 200:
            errors.append(f"{status}: {payload[:120]!r}")
    connection.close()


def quiet_p50(
    port: int, keys: dict[str, str], sentences: list[str], seconds: float, noisy: int
) -> tuple[float, int, list[str]]:
    """The quiet key's p50 latency (ms) over `seconds`, beside `noisy` noisy clients."""
    stop = threading.Event()
    latencies: list[float] = []
    errors: list[str] = []
    threads = [
        threading.Thread(
            target=noisy_client, args=(port, keys["noisy"], sentences, c, stop, errors)
        )
        for c in range(noisy)
    ]
    threads.append(
        threading.Thread(
            target=quiet_client, args=(port, keys["quiet"], sentences, stop, latencies, errors)
        )
    )
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    p50 = 1000 * statistics.median(latencies) if latencies else float("nan")
    return p50, len(latencies), errors


def fairness_rows(
    port: int, keys: dict[str, str], sentences: list[str], seconds: float
) -> tuple[list[tuple[str, str]], float]:
    """The quiet key alone, then beside the noisy key; the rows and the ratio."""
    alone, n_alone, errors_alone = quiet_p50(port, keys, sentences, seconds, noisy=0)
    beside, n_beside, errors_beside = quiet_p50(port, keys, sentences, seconds, noisy=8)
    ratio = beside / alone
    rows = [
        ("seconds per phase", f"{seconds:g}"),
        ("quiet key alone: p50 (requests)", f"{alone:.0f} ms ({n_alone})"),
        (
            "quiet key beside 8 noisy clients (5 texts each): p50 (requests)",
            f"{beside:.0f} ms ({n_beside})",
        ),
        ("ratio (target <= 3)", f"{ratio:.2f}"),
        ("errors", str(len(errors_alone) + len(errors_beside))),
    ]
    return rows, ratio
