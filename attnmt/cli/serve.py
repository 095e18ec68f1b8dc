"""Serve trained models over HTTP, with dynamic batching and an interactive attention page.

    attnmt serve --model runs/quickstart                       # http://127.0.0.1:8000
    attnmt serve --model bahdanau=runs/a --model luong=runs/b  # two models, to compare
    attnmt serve --model chat=runs/chitchat --rerank chat=runs/chitchat_backward

    ATTNMT_API_KEYS=alice:s3cr3t-key-1 attnmt serve --model runs/a --host 0.0.0.0

Endpoints: GET /health, GET /models, GET /metrics, POST /translate, POST /chat (dialogue
models), the page at / (a Translate and a Chat tab) and the OpenAPI docs at /docs.
Ctrl-C (or SIGTERM) stops the server after the requests in flight; SIGHUP reloads the
models whose checkpoint file changed (serve/reload.py). docs/serving.md: keys, limits,
metrics, the access log and reloading.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from attnmt.cli.translate import add_checkpoint_arguments
from attnmt.errors import UserError
from attnmt.io.checkpoint import find_model_checkpoint
from attnmt.serve.auth import ENV, ApiKeys
from attnmt.serve.limits import Limits
from attnmt.translate.chatbot import Responder, check_dialogue
from attnmt.translate.rerank import Reranker
from attnmt.translate.translator import Translator

if TYPE_CHECKING:
    from attnmt.serve.reload import Reloader

EPILOG = """\
example:
  curl -s localhost:8000/translate -H 'content-type: application/json' \\
       -d '{"text": "the dog sees a cat", "beam": 5, "n_best": 3}'
  curl -s localhost:8000/chat -H 'content-type: application/json' \\
       -d '{"history": ["hi!", "hello!"], "message": "what do you study?"}'

The server binds 127.0.0.1 unless --host names another address, which it refuses
without API keys (--api-key-file or ATTNMT_API_KEYS) unless --insecure is given. With
keys, send one: curl -H 'Authorization: Bearer KEY' ... (docs/serving.md)."""

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="[NAME=]RUN_DIR",
        help="a trained run directory to serve; repeat for more (the first is the default)",
    )
    parser.add_argument(
        "--rerank",
        action="append",
        default=[],
        metavar="[NAME=]BACKWARD_RUN",
        help="a backward dialogue run that reranks the replies of the dialogue model NAME "
        "(MMI-bidi, docs/chat.md); without NAME=, of the only model served",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    add_checkpoint_arguments(parser)
    parser.add_argument("--device", default="auto", metavar="D", help="auto, cpu, cuda or mps")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch")
    access = parser.add_argument_group("access")
    access.add_argument(
        "--api-key-file",
        type=Path,
        metavar="FILE",
        help=f"API keys, one a line: KEY or NAME:KEY; with {ENV} (comma-separated), "
        "either's keys work. With keys, every endpoint needs Authorization: Bearer KEY "
        "but the page, /docs, /openapi.json and /health (which then says only ok)",
    )
    access.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback --host without API keys: anyone who reaches it may use it",
    )
    access.add_argument(
        "--rate-limit",
        type=int,
        metavar="N",
        help="at most N /translate and /chat requests a minute per key (per client address "
        "without keys); more: 429 with Retry-After (default: no limit)",
    )
    access.add_argument(
        "--access-log",
        metavar="FILE",
        help="one JSON line per request (time, key name, endpoint, model, status, texts, "
        "source tokens, latency) appended to FILE, or - for stderr",
    )
    access.add_argument(
        "--log-text", action="store_true", help="also write the texts into the access log"
    )
    limits = parser.add_argument_group("limits")
    for flag, kind, metavar, text in (
        ("--max-chars", int, "N", "longest text in characters (longer: 413)"),
        ("--max-texts", int, "N", "most texts per request (more: 413)"),
        ("--queue-size", int, "N", "requests waiting per model (more: 503)"),
        ("--max-wait-ms", float, "MS", "how long a batch waits for more requests"),
        ("--batch-tokens", int, "N", "source tokens per batch"),
        ("--max-batch", int, "N", "requests per batch; 1 turns batching off"),
        ("--fair-batch", int, "N", "texts one caller may have in a batch while others wait"),
        ("--max-beam", int, "K", "largest beam or n-best a request may ask (more: 422)"),
        ("--max-len", int, "N", "longest output a request may ask, in tokens (more: 422)"),
        ("--timeout", float, "S", "seconds a request may wait for its translation (then 504)"),
    ):
        field = "timeout_s" if flag == "--timeout" else flag[2:].replace("-", "_")
        default = getattr(defaults, field)
        limits.add_argument(
            flag, type=kind, default=default, metavar=metavar, help=f"{text} (default: {default:g})"
        )
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def parse_models(values: list[str]) -> dict[str, str]:
    """``NAME=RUN_DIR`` or ``RUN_DIR`` (named after its folder) -> {name: run_dir}."""
    models: dict[str, str] = {}
    for value in values:
        name, sep, run_dir = value.partition("=")
        if not sep:
            name, run_dir = Path(value.rstrip("/")).name or value, value
        if not name or not run_dir:
            raise UserError(f"--model {value!r}: expected NAME=RUN_DIR or RUN_DIR")
        if name in models:
            raise UserError(f"--model: the name {name!r} is given twice (use NAME=RUN_DIR)")
        models[name] = run_dir
    return models


def parse_rerank(values: list[str], models: Mapping[str, str]) -> dict[str, str]:
    """``NAME=BACKWARD_RUN`` (or ``BACKWARD_RUN`` when one model is served) ->
    {model name: backward run directory}, each name one of `models`."""
    rerank: dict[str, str] = {}
    for value in values:
        name, sep, run_dir = value.partition("=")
        if not sep:
            if len(models) != 1:
                raise UserError(
                    f"--rerank {value!r}: name the model it reranks (NAME=BACKWARD_RUN; "
                    f"served: {', '.join(models)})"
                )
            name, run_dir = next(iter(models)), value
        if not name or not run_dir:
            raise UserError(f"--rerank {value!r}: expected NAME=BACKWARD_RUN")
        if name not in models:
            raise UserError(
                f"--rerank {value!r}: no model named {name!r} is served "
                f"(served: {', '.join(models)})"
            )
        if name in rerank:
            raise UserError(f"--rerank: the model {name!r} is given two backward runs")
        rerank[name] = run_dir
    return rerank


def responders_of(
    translators: Mapping[str, Translator], backward_runs: Mapping[str, str], device: str
) -> dict[str, Responder]:
    """A Responder for each dialogue model, with its backward run where --rerank names
    one; a one-line UserError for a backward run given to a model that cannot chat, or a
    run that is not a backward model."""
    responders = {}
    for name, translator in translators.items():
        reranker = None
        if name in backward_runs:
            check_dialogue(translator, f"--rerank {name}=...: the model {name!r}")
            reranker = Reranker.load(backward_runs[name], device=device)
        if translator.config.data.task == "dialogue":
            responders[name] = Responder(translator, reranker)
    return responders


def reloader_of(
    app: Any, run_dirs: Mapping[str, str], backward_runs: Mapping[str, str], args: Any
) -> Reloader:
    """What SIGHUP runs: each model's checkpoint file watched, loaded again as at start."""
    from attnmt.serve.reload import Reloader

    def load(name: str) -> tuple[Translator, Responder | None]:
        translator = Translator.load(
            run_dirs[name], device=args.device, which=args.which, precision=args.precision
        )
        backward = {name: backward_runs[name]} if name in backward_runs else {}
        return translator, responders_of({name: translator}, backward, args.device).get(name)

    checkpoints = {}
    for name, run_dir in run_dirs.items():
        try:
            checkpoints[name] = find_model_checkpoint(Path(run_dir), args.which)
        except UserError:  # not one checkpoint file (an export): not watched
            continue
    return Reloader(app, checkpoints, load)


def limits_of(args: argparse.Namespace) -> Limits:
    limits = Limits(
        max_chars=args.max_chars,
        max_texts=args.max_texts,
        queue_size=args.queue_size,
        max_wait_ms=args.max_wait_ms,
        batch_tokens=args.batch_tokens,
        max_batch=args.max_batch,
        fair_batch=args.fair_batch,
        max_beam=args.max_beam,
        max_len=args.max_len,
        timeout_s=args.timeout,
    )
    try:
        limits.check()
    except ValueError as err:
        raise UserError(str(err)) from None
    return limits


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from attnmt.serve.accesslog import AccessLog
        from attnmt.serve.app import create_app
    except ImportError as err:
        raise UserError(
            f"attnmt serve needs the serve extra: pip install 'attnmt[serve]' ({err.name} missing)"
        ) from None
    limits = limits_of(args)
    keys = ApiKeys.load(args.api_key_file)
    if args.host not in LOOPBACK and not keys and not args.insecure:
        raise UserError(
            f"--host {args.host} is reachable from other machines: give API keys "
            f"(--api-key-file or {ENV}) or --insecure to serve without any"
        )
    if args.rate_limit is not None and args.rate_limit < 1:
        raise UserError(f"--rate-limit must be at least 1 (got {args.rate_limit})")
    if args.log_text and not args.access_log:
        raise UserError("--log-text needs --access-log")
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be at least 1 (got {args.threads})")
        torch.set_num_threads(args.threads)
    run_dirs = parse_models(args.model)
    backward_runs = parse_rerank(args.rerank, run_dirs)
    translators = {
        name: Translator.load(
            run_dir, device=args.device, which=args.which, precision=args.precision
        )
        for name, run_dir in run_dirs.items()
    }
    responders = responders_of(translators, backward_runs, args.device)
    if args.host not in LOOPBACK and not keys:
        print(
            f"attnmt serve: warning: listening on {args.host}, reachable from other machines "
            "(no API keys: --insecure)",
            file=sys.stderr,
        )
    access_log = AccessLog(args.access_log, args.log_text) if args.access_log else None
    app = create_app(
        translators,
        limits,
        run_dirs,
        responders,
        keys=keys,
        rate_limit=args.rate_limit,
        access_log=access_log,
    )
    reloader_of(app, run_dirs, backward_runs, args).on_sighup()
    guarded = f", {len(keys.by_name)} API keys" if keys else ""
    print(
        f"attnmt serve: {', '.join(translators)} at http://{args.host}:{args.port}/"
        f"{guarded} (Ctrl-C stops)",
        file=sys.stderr,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
