"""The HTTP app: routes, error answers and the page.

    GET  /health      ok, the models loaded, their settings, requests queued
    GET  /models      the models: name, run directory, config summary
    POST /translate   texts -> translations (the schema of attnmt translate --format json)
    GET  /            the attention page (static/); GET /docs: the OpenAPI docs

Every error is JSON ``{"detail": "one line"}`` with its status:

    422  a body that is not JSON, not UTF-8 or not the schema; an unknown or bad option
    413  a text longer than max_chars, more than max_texts texts, or a body too big for them
    404  an unknown model
    503  the model's queue is full (try again later)
    504  the translation took longer than timeout_s
    500  a bug (logged with its traceback); the worker keeps serving
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from attnmt.config import DecodeOptions
from attnmt.errors import UserError
from attnmt.serve.batcher import Batcher, QueueFull
from attnmt.serve.limits import Limits
from attnmt.serve.schemas import (
    ErrorResponse,
    HealthResponse,
    ModelInfo,
    ModelsResponse,
    TranslateRequest,
    TranslateResponse,
)
from attnmt.translate.chatbot import Responder
from attnmt.translate.translator import Translator

STATIC = Path(__file__).parent / "static"


class ApiError(Exception):
    """An answer with a status and one line, raised anywhere in a route."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def model_info(
    name: str, run_dir: str, translator: Translator, responder: Responder | None = None
) -> ModelInfo:
    """What GET /models says about a model: its settings, not its weights."""
    parameters = getattr(translator.model, "parameters", None)
    count = sum(p.numel() for p in parameters()) if callable(parameters) else 0
    reranker = responder.reranker if responder is not None else None
    return ModelInfo(
        name=name,
        run_dir=run_dir,
        has_attention=translator.has_attention,
        has_heads=translator.has_attention,
        parameters=count,
        model=translator.config.model.model_dump(mode="json"),
        decode=translator.config.decode.model_dump(mode="json"),
        task=translator.config.data.task,
        reranker=reranker.name if reranker is not None else None,
        rerank=responder.rerank.model_dump() if responder and reranker else None,
    )


def _one_line(err: ValidationError | RequestValidationError) -> str:
    """The first validation error as `field: message` (pydantic's wording)."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = "unknown option" if first.get("type") == "extra_forbidden" else first["msg"]
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def create_app(
    translators: Mapping[str, Translator],
    limits: Limits | None = None,
    run_dirs: Mapping[str, str] | None = None,
    responders: Mapping[str, Responder] | None = None,
) -> FastAPI:
    """The app serving `translators` (name -> Translator; the first is the default).

    Each model gets a :class:`Batcher` when the app starts, closed (after finishing its
    queue) when the app stops; uvicorn stops it on SIGINT or SIGTERM. `responders` (name
    -> :class:`Responder`, for the dialogue models among them, each with its backward
    model if one was given) are kept in ``app.state.responders``: ``respond(history,
    message, options, rerank=...)`` gives a reply and its candidates with forward,
    backward and combined scores.
    """
    if not translators:
        raise ValueError("serve at least one model")
    limits = limits or Limits()
    limits.check()
    names = list(translators)
    responders = dict(responders or {})
    unknown = set(responders) - set(translators)
    if unknown:
        raise ValueError(f"responders for models not served: {', '.join(sorted(unknown))}")
    infos = {
        name: model_info(name, (run_dirs or {}).get(name, ""), translator, responders.get(name))
        for name, translator in translators.items()
    }
    batchers: dict[str, Batcher] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for name, translator in translators.items():
            batchers[name] = Batcher(name, translator, limits)
        try:
            yield
        finally:
            for batcher in batchers.values():
                await asyncio.to_thread(batcher.close)
            batchers.clear()

    app = FastAPI(
        title="attnmt",
        summary="Translation with attention: every request's alignment, as JSON.",
        lifespan=lifespan,
    )
    app.state.batchers = batchers
    app.state.responders = responders
    app.state.limits = limits

    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        return JSONResponse({"detail": err.detail}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _one_line(err)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(err.detail)}, status_code=err.status_code)

    @app.exception_handler(Exception)
    async def bug(_: Request, err: Exception) -> JSONResponse:  # logged by the batcher
        return JSONResponse({"detail": f"internal error: {type(err).__name__}"}, status_code=500)

    @app.get("/health", response_model=HealthResponse)
    async def health() -> dict[str, Any]:
        """Ok, with the models loaded and how many requests each has waiting."""
        queued = {name: batcher.queued for name, batcher in batchers.items()}
        return {"status": "ok", "models": infos, "queued": queued}

    @app.get("/models", response_model=ModelsResponse)
    async def models() -> dict[str, Any]:
        """The loaded models; the first is used when a request names none."""
        return {"default": names[0], "models": list(infos.values())}

    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorResponse} for code in (404, 413, 422, 503, 504)
    }

    @app.post(
        "/translate",
        response_model=TranslateResponse,
        responses=errors,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": TranslateRequest.model_json_schema()}},
            }
        },
    )
    async def translate(request: Request) -> JSONResponse:
        """Translate one text or a list. Options left out keep the model's defaults."""
        body = await _parse(request, limits)
        name = body.model or names[0]
        batcher = batchers.get(name)
        if batcher is None:
            raise ApiError(404, f"unknown model {name!r}; loaded: {', '.join(names)}")
        translator = batcher.translator
        texts = body.texts()
        _check_size(texts, limits)
        options = _checked_options(body, translator, limits)
        ids = [translator.src_tok.encode(text) for text in texts]
        try:
            future = batcher.submit(ids, options, heads=body.heads)
        except QueueFull as err:
            raise ApiError(503, f"{err}; try again shortly") from None
        try:
            results = await asyncio.wait_for(asyncio.wrap_future(future), limits.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, f"no translation within {limits.timeout_s:g} s") from None
        except UserError as err:
            raise ApiError(422, str(err)) from None
        records = [result.to_dict(body.units, body.attention) for result in results]
        return JSONResponse({"model": name, "translations": records})

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes `limit` bytes (never held)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is over {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse(request: Request, limits: Limits) -> TranslateRequest:
    """The body as a TranslateRequest; 422 for bad UTF-8, bad JSON or a bad schema."""
    # the longest valid body: every text at its limit, 4 UTF-8 bytes a character, options
    raw = await _read_body(request, limits.max_texts * (4 * limits.max_chars + 16) + 4096)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ApiError(422, f"the body is not valid UTF-8 (byte {err.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ApiError(422, f"the body is not valid JSON: {err}") from None
    try:
        return TranslateRequest.model_validate(data)
    except ValidationError as err:
        raise ApiError(422, _one_line(err)) from None


def _check_size(texts: list[str], limits: Limits) -> None:
    """413 for too many texts or one too long."""
    if len(texts) > limits.max_texts:
        raise ApiError(413, f"{len(texts)} texts; at most {limits.max_texts} per request")
    for number, text in enumerate(texts, start=1):
        if len(text) > limits.max_chars:
            raise ApiError(
                413, f"text {number} has {len(text)} characters; at most {limits.max_chars}"
            )


def _checked_options(
    body: TranslateRequest, translator: Translator, limits: Limits
) -> DecodeOptions:
    """The request's one DecodeOptions: the model's settings with the options the request
    gives, validated against the model and the server's limits."""
    given = body.decode_options()
    if "max_len" not in given:  # the model's own default, capped by the server
        given["max_len"] = min(translator.decode.max_len, limits.max_len)
    try:
        options = translator.options(**given)
    except UserError as err:
        raise ApiError(422, str(err)) from None
    if options.beam > limits.max_beam or options.n_best > limits.max_beam:
        biggest = max(options.beam, options.n_best)
        raise ApiError(422, f"beam/n_best {biggest} is over the limit {limits.max_beam}")
    if options.max_len > limits.max_len:
        raise ApiError(422, f"max_len {options.max_len} is over the limit {limits.max_len}")
    return options
