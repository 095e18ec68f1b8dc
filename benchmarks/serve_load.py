"""Load on `attnmt serve`: 16 concurrent clients x 200 requests each on loopback, with
dynamic batching and then one request at a time (``--max-batch 1``), in the same run.
Reports errors, p50/p99 latency and sentences/s of each, and the speed-up of batching;
appends them to BENCHMARKS.md.

    python -m benchmarks.serve_load                      # random model of reference size
    python -m benchmarks.serve_load --model runs/quickstart --no-record

Each request is one Multi30k test sentence (test_2016_flickr.de, cycled), greedy unless
--beam says otherwise. Without --model the server loads a *random* model of the size of
the Multi30k reference model (GRU, bahdanau/concat, hidden 512, embeddings 256, word
vocabularies of 8000 built from the Multi30k training text), its outputs capped at the
source length + 5 tokens (decode.max_len_ratio 1): the same work per sentence as a trained
model with outputs about as long as their sources, without waiting for training. Every
phase is bounded by --max-seconds; a phase cut short says so.

The long runs (benchmarks/serve_soak.py), each instead of the comparison above:

    python -m benchmarks.serve_load --soak 10        # 16 clients, a mix, 10 minutes
    python -m benchmarks.serve_load --fairness 60    # a quiet key beside a noisy one
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

import torch

from attnmt.config import build_config
from attnmt.data.tokenize import WordTokenizer, save_tokenizers
from attnmt.io.checkpoint import Checkpoint, CheckpointHeader, save_checkpoint
from attnmt.models.build import build_model
from attnmt.models.seq2seq import count_parameters
from benchmarks import common, serve_soak

DATA = common.ROOT.parent / "shared/data/multi30k"


def random_run(directory: Path) -> tuple[Path, int]:
    """A run directory holding a random model of the reference size; and its parameters."""

    def lines(name: str) -> list[str]:
        with gzip.open(DATA / name, "rt", encoding="utf-8") as handle:
            return [line.strip().lower() for line in handle]

    src_tok = WordTokenizer.build(lines("train.de.gz"), 8000)
    tgt_tok = WordTokenizer.build(lines("train.en.gz"), 8000)
    save_tokenizers(src_tok, tgt_tok, directory / "tokenizer")
    overrides: dict[str, Any] = {
        "run_dir": str(directory),
        "model": {"embed_dim": 256, "hidden_dim": 512, "decoder": "bahdanau"},
        "data": {"tokenizer": "word", "vocab_size": 8000},
        "train": {"precision": "auto"},  # bf16 where the CPU has it, like the reference run
        "decode": {"beam": 1, "max_len_ratio": 1.0},
    }
    config = build_config([("benchmark", overrides)])
    torch.manual_seed(0)
    model = build_model(config.model, src_tok.vocab_size, tgt_tok.vocab_size)
    header = CheckpointHeader.of_run(config, src_tok, tgt_tok, None, step=None)
    header = replace(header, precision=None)  # untrained: `auto` measures, as it did
    save_checkpoint(directory / "checkpoints" / "best.pt", Checkpoint(header, model.state_dict()))
    return directory, count_parameters(model)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`attnmt serve` in a child process (its own interpreter, like in production)."""

    def __init__(
        self, model: Path, threads: int, extra: list[str], env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "attnmt.cli", "serve", "--model", str(model)]
        command += ["--port", str(self.port), "--threads", str(threads), *extra]
        self.process = subprocess.Popen(command, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"attnmt serve exited with {self.process.returncode}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1)
                return
            except OSError:
                time.sleep(0.3)
        raise SystemExit("attnmt serve did not start within 120 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def client(
    port: int, texts: list[str], options: dict[str, Any], deadline: float, out: dict[str, Any]
) -> None:
    """Send `texts` one request at a time over one keep-alive connection, until done or
    the deadline; record each latency and each error."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    for text in texts:
        if time.monotonic() > deadline:
            out["cut"] = True
            break
        body = json.dumps({"text": text, "attention": False, **options})
        started = time.perf_counter()
        try:
            connection.request("POST", "/translate", body, {"content-type": "application/json"})
            answer = connection.getresponse()
            payload = answer.read()
            if answer.status != 200:
                out["errors"].append(f"{answer.status}: {payload[:200]!r}")
                continue
            out["sentences"] += len(json.loads(payload)["translations"])
        except (OSError, http.client.HTTPException) as err:
            out["errors"].append(repr(err))
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            continue
        out["latencies"].append(time.perf_counter() - started)
    connection.close()


def phase(port: int, sentences: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """`args.clients` clients x `args.requests` requests; their merged results."""
    deadline = time.monotonic() + args.max_seconds
    options = {"beam": args.beam}
    outs = [
        {"latencies": [], "errors": [], "sentences": 0, "cut": False} for _ in range(args.clients)
    ]
    threads = []
    for c in range(args.clients):
        start = c * args.requests
        texts = [sentences[(start + i) % len(sentences)] for i in range(args.requests)]
        thread = threading.Thread(target=client, args=(port, texts, options, deadline, outs[c]))
        threads.append(thread)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies = sorted(x for out in outs for x in out["latencies"])
    errors = [e for out in outs for e in out["errors"]]
    done = sum(out["sentences"] for out in outs)
    return {
        "requests": len(latencies),
        "errors": errors,
        "sentences_per_s": done / elapsed,
        "seconds": elapsed,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        "cut": any(out["cut"] for out in outs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model", type=Path, help="a trained run (default: random, reference size)"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=200, help="requests per client")
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    parser.add_argument("--max-seconds", type=float, default=240, help="bound on each phase")
    parser.add_argument("--no-record", action="store_true", help="do not append to BENCHMARKS.md")
    parser.add_argument("--soak", type=float, metavar="MINUTES", help="run the soak instead")
    parser.add_argument("--window", type=float, default=30, help="soak: seconds per record")
    parser.add_argument(
        "--fairness", type=float, metavar="SECONDS", help="run the fairness test instead"
    )
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with gzip.open(DATA / "test_2016_flickr.de.gz", "rt", encoding="utf-8") as handle:
        sentences = [line.strip().lower() for line in islice(handle, 1000)]
    with tempfile.TemporaryDirectory() as scratch:
        if args.model is None:
            model, parameters = random_run(Path(scratch) / "random")
            described = f"random, reference size ({parameters:,} parameters)"
        else:
            model, described = args.model, str(args.model)
        if args.soak is not None or args.fairness is not None:
            long_run(model, described, sentences, args, load_before)
            return
        results = {}
        for name, extra in (("batched", []), ("one at a time", ["--max-batch", "1"])):
            server = Server(model, args.threads, extra)
            try:
                phase(
                    server.port, sentences[:32], argparse.Namespace(**{**vars(args), "requests": 2})
                )
                results[name] = phase(server.port, sentences, args)  # after a warm-up above
            finally:
                server.stop()
            print(name, {k: v for k, v in results[name].items() if k != "errors"}, flush=True)

    rows = [("model", described), ("clients x requests", f"{args.clients} x {args.requests}")]
    rows.append(
        (
            "machine load average (1 min) before / after",
            f"{load_before:.2f} / {os.getloadavg()[0]:.2f}",
        )
    )
    rows.append(("decoding", "greedy" if args.beam == 1 else f"beam {args.beam}"))
    for name, result in results.items():
        cut = " (cut short by --max-seconds)" if result["cut"] else ""
        rows += [
            (f"{name}: requests answered", f"{result['requests']:,}{cut}"),
            (f"{name}: errors", str(len(result["errors"]))),
            (f"{name}: latency p50 / p99", f"{result['p50_ms']:.0f} / {result['p99_ms']:.0f} ms"),
            (f"{name}: sentences/s", f"{result['sentences_per_s']:.1f}"),
        ]
    speedup = results["batched"]["sentences_per_s"] / results["one at a time"]["sentences_per_s"]
    rows.append(("speed-up of dynamic batching", f"{speedup:.1f}x"))
    for name, result in results.items():
        for error in result["errors"][:3]:
            print(f"{name}: error: {error}", file=sys.stderr)
    if not args.no_record:
        common.append(f"attnmt serve under load: {args.clients} clients", rows)
    else:
        print("\n".join(f"{a}: {b}" for a, b in rows))


def long_run(
    model: Path, described: str, sentences: list[str], args: argparse.Namespace, load: float
) -> None:
    """--soak or --fairness against one server; the rows recorded like the comparison's."""
    keys = {"noisy": "noisy-key-0123456789", "quiet": "quiet-key-0123456789"}
    env = {"ATTNMT_API_KEYS": ",".join(f"{n}:{k}" for n, k in keys.items())}
    server = Server(model, args.threads, [], env if args.fairness is not None else None)
    try:
        if args.soak is not None:
            records = serve_soak.soak(
                server.port, server.process.pid, sentences, args.soak, args.clients, args.window
            )
            title = f"attnmt serve soak: {args.clients} clients, {args.soak:g} minutes"
            rows = serve_soak.soak_rows(records, args.clients)
            for error in [u for r in records[1:] for u in r["unexpected"]][:5]:
                print(f"unexpected: {error}", file=sys.stderr)
        else:
            title = "attnmt serve fairness: a quiet key beside a noisy one"
            rows, _ = serve_soak.fairness_rows(server.port, keys, sentences, args.fairness)
    finally:
        server.stop()
    rows = [("model", described), *rows]
    rows.append(
        ("machine load average (1 min) before / after", f"{load:.2f} / {os.getloadavg()[0]:.2f}")
    )
    if args.no_record:
        print("\n".join(f"{a}: {b}" for a, b in rows))
    else:
        common.append(title, rows)


if __name__ == "__main__":
    main()
