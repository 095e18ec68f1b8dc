"""The HTTP app: routes, error answers and the page.

    GET  /health      ok, the models loaded, their settings, requests queued (only "ok"
                      without a key where the server has keys)
    GET  /models      the models: name, run directory, config summary
    GET  /metrics     Prometheus metrics (metrics.py)
    POST /translate   texts -> translations (the schema of attnmt translate --format json)
    POST /chat        a history and a message -> a reply, its attention, its candidates
                      (chat.py)
    GET  /            the attention page (static/); GET /docs: the OpenAPI docs, their
                      viewer (Swagger UI) served from static/swagger/, never a CDN

Every request passes the guard first (guard.py): its API key, its rate limit; then the
metrics and the access log. Every error is JSON ``{"detail": "one line"}`` with its status:

    401  no API key or a wrong one, where the server has keys (guard.py)
    429  over the rate limit, with Retry-After (guard.py)
    422  a body that is not JSON, not UTF-8 or not the schema; an unknown or bad option;
         /chat: an empty message, or a model that is not a dialogue model
    413  a text longer than max_chars, more than max_texts texts, or a body too big for them
    404  an unknown model
    503  the model's queue is full (try again later)
    504  the translation took longer than timeout_s
    500  a bug (logged with its traceback); the worker keeps serving
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from attnmt.serve.accesslog import AccessLog
from attnmt.serve.auth import ApiKeys
from attnmt.serve.batcher import Batcher
from attnmt.serve.chat import router as chat_router
from attnmt.serve.guard import Guard, declare_security
from attnmt.serve.limits import Limits
from attnmt.serve.metrics import Metrics
from attnmt.serve.metrics import router as metrics_router
from attnmt.serve.ratelimit import RateLimiter
from attnmt.serve.requests import (
    AUTH_ERROR,
    ERRORS,
    ApiError,
    answer_of,
    body_limit,
    check_size,
    checked_options,
    documented,
    json_body,
    one_line,
    parse,
)
from attnmt.serve.schemas import (
    HealthResponse,
    ModelInfo,
    ModelsResponse,
    TranslateRequest,
    TranslateResponse,
)
from attnmt.translate.chatbot import Responder
from attnmt.translate.translator import Translator

STATIC = Path(__file__).parent / "static"


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
        context_turns=responder.turns if responder is not None else None,
        loaded_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
    )


def create_app(
    translators: Mapping[str, Translator],
    limits: Limits | None = None,
    run_dirs: Mapping[str, str] | None = None,
    responders: Mapping[str, Responder] | None = None,
    *,
    keys: ApiKeys | None = None,
    rate_limit: int | None = None,
    access_log: AccessLog | None = None,
) -> FastAPI:
    """The app serving `translators` (name -> Translator; the first is the default).

    With `keys`, every route but the open ones needs one (guard.py); `rate_limit` allows
    that many decoding requests a minute per caller; `access_log` gets a line per request
    (closed when the app stops).

    Each model gets a :class:`Batcher` when the app starts, closed (after finishing its
    queue) when the app stops; uvicorn stops it on SIGINT or SIGTERM. `responders` (name
    -> :class:`Responder`, each with its backward model if one was given) answer POST
    /chat, through their model's Batcher; a dialogue model given none gets one without a
    backward model. They are kept in ``app.state.responders``.
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
    for name, translator in translators.items():
        if name not in responders and translator.config.data.task == "dialogue":
            responders[name] = Responder(translator)
    infos = {
        name: model_info(name, (run_dirs or {}).get(name, ""), translator, responders.get(name))
        for name, translator in translators.items()
    }
    batchers: dict[str, Batcher] = {}
    keys = keys or ApiKeys()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        app.state.loop = asyncio.get_running_loop()  # where reload.py swaps models
        for name, translator in translators.items():
            observe = metrics.observer(name)
            batchers[name] = Batcher(name, translator, limits, responders.get(name), observe)
        try:
            yield
        finally:
            for batcher in batchers.values():
                await asyncio.to_thread(batcher.close)
            batchers.clear()
            if access_log is not None:
                access_log.close()

    app = FastAPI(
        title="attnmt",
        summary="Translation with attention: every request's alignment, as JSON.",
        lifespan=lifespan,
        docs_url=None,  # /docs below, with the viewer's files from this package
        redoc_url=None,  # ReDoc would load from a CDN
    )
    app.state.batchers = batchers
    app.state.responders = responders
    app.state.limits = limits
    app.state.names = names  # the first is the default model
    app.state.metrics = metrics

    def swap(name: str, translator: Translator, responder: Responder | None) -> None:
        """Serve `translator` as `name` from now on (reload.py; call it on the event
        loop): new requests go to a new Batcher, the old one finishes its queue on the
        old model in the background, then stops."""
        if responder is None and translator.config.data.task == "dialogue":
            responder = Responder(translator)
        old = batchers[name]
        batchers[name] = Batcher(name, translator, limits, responder, metrics.observer(name))
        if responder is None:
            responders.pop(name, None)
        else:
            responders[name] = responder
        infos[name] = model_info(name, infos[name].run_dir, translator, responder)
        threading.Thread(target=old.close, name=f"attnmt-retire-{name}", daemon=True).start()

    app.state.swap = swap
    limiter = RateLimiter(rate_limit) if rate_limit is not None else None
    app.middleware("http")(Guard(keys, limiter, metrics, access_log))
    if keys:
        declare_security(app)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        return JSONResponse({"detail": err.detail}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": one_line(err)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(err.detail)}, status_code=err.status_code)

    @app.exception_handler(Exception)
    async def bug(_: Request, err: Exception) -> JSONResponse:  # logged by the batcher
        return JSONResponse({"detail": f"internal error: {type(err).__name__}"}, status_code=500)

    @app.get("/health", response_model=HealthResponse, response_model_exclude_none=True)
    async def health(request: Request) -> dict[str, Any]:
        """Ok, with the models loaded and how many requests each has waiting; only ok
        without a key, where the server has keys."""
        if not request.state.authorized:
            return {"status": "ok"}
        queued = {name: batcher.queued for name, batcher in batchers.items()}
        return {"status": "ok", "models": infos, "queued": queued}

    @app.get("/models", response_model=ModelsResponse, responses=documented(AUTH_ERROR))
    async def models() -> dict[str, Any]:
        """The loaded models; the first is used when a request names none."""
        return {"default": names[0], "models": list(infos.values())}

    @app.post(
        "/translate",
        response_model=TranslateResponse,
        responses=documented(ERRORS),
        openapi_extra=json_body(TranslateRequest),
    )
    async def translate(request: Request) -> JSONResponse:
        """Translate one text or a list. Options left out keep the model's defaults."""
        body = await parse(request, TranslateRequest, body_limit(limits.max_texts, limits))
        name = body.model or names[0]
        usage = request.state.usage
        usage.model = name
        batcher = batchers.get(name)
        if batcher is None:
            raise ApiError(404, f"unknown model {name!r}; loaded: {', '.join(names)}")
        translator = batcher.translator
        texts = body.texts()
        usage.texts, usage.text = len(texts), texts
        check_size(texts, limits)
        options = checked_options(body, translator, limits)
        ids = [translator.src_tok.encode(text) for text in texts]
        usage.tokens = sum(len(row) for row in ids)
        submit = partial(batcher.submit, ids, options, body.heads, request.state.caller)
        results = translator.with_surfaces(await answer_of(submit, limits, "translation"), texts)
        records = [result.to_dict(body.units, body.attention) for result in results]
        return JSONResponse({"model": name, "translations": records})

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="attnmt API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )

    app.include_router(chat_router)
    app.include_router(metrics_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
