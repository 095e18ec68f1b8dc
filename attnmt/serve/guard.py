"""The gate every request passes: its key, its rate, then the route; on the way out, the
metrics and the access log.

    request --key? (401)--> --rate? (429: /translate, /chat)--> the route --> answer
                                                                  `--> metrics, access log

With keys (:mod:`attnmt.serve.auth`), everything needs ``Authorization: Bearer KEY``
except what a browser loads before it can know a key:

    /  /static/*       the page (it asks for a key when the API answers 401)
    /docs  /openapi.json
    /health            open, but without a key it answers only {"status": "ok"}

A missing or wrong key gets 401 with ``WWW-Authenticate: Bearer`` and one JSON line. The
caller is the key's name, or the client's address without keys: the rate limit
(:mod:`attnmt.serve.ratelimit`) and the batcher's round-robin lanes are per caller.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from attnmt.serve.accesslog import AccessLog, Usage
from attnmt.serve.auth import ApiKeys
from attnmt.serve.metrics import Metrics, endpoint_of
from attnmt.serve.ratelimit import RateLimiter

OPEN = ("/", "/docs", "/openapi.json")
LIMITED = ("/translate", "/chat")  # the routes that decode: the rate limit counts these
SCHEME = "apiKey"  # the security scheme's name in the OpenAPI schema


def is_open(path: str) -> bool:
    return path in OPEN or path.startswith("/static/")


@dataclass
class Guard:
    """The middleware: ``app.middleware("http")(guard)``."""

    keys: ApiKeys
    limiter: RateLimiter | None
    metrics: Metrics
    access_log: AccessLog | None = None

    async def __call__(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        key = self.keys.name_of(request.headers.get("authorization")) if self.keys else None
        client = request.client.host if request.client else None
        request.state.key = key
        request.state.caller = key or client or ""
        request.state.authorized = not self.keys or key is not None
        request.state.usage = Usage()
        status = 500  # unless an answer comes back
        try:
            response = self.refusal(request) or await call_next(request)
            status = response.status_code
            return response
        finally:
            self.record(request, client, status, time.perf_counter() - started)

    def refusal(self, request: Request) -> Response | None:
        """401 or 429 before the route runs; None lets the request through."""
        path = request.url.path
        given = "authorization" in request.headers
        less = path == "/health" and not given  # /health answers less without a key
        if not request.state.authorized and not is_open(path) and not less:
            detail = "wrong API key" if given else "this server needs an API key"
            return JSONResponse(
                {"detail": f"{detail}: send Authorization: Bearer KEY"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if self.limiter is not None and path in LIMITED:
            wait = self.limiter.take(request.state.caller)
            if wait:
                per = "key" if self.keys else "client"
                return JSONResponse(
                    {"detail": f"over {self.limiter.per_minute} requests a minute per {per}"},
                    status_code=429,
                    headers={"Retry-After": str(wait)},
                )
        return None

    def record(self, request: Request, client: str | None, status: int, seconds: float) -> None:
        usage: Usage = request.state.usage
        endpoint = endpoint_of(request.url.path)
        served = usage.model if usage.model in request.app.state.batchers else None
        self.metrics.request(endpoint, served or "", status, seconds)  # bounded labels only
        if self.access_log is not None:
            path = request.url.path if endpoint != "other" else "other"
            self.access_log.write(
                request.state.key, client, request.method, path, status, usage, seconds
            )


def declare_security(app: FastAPI) -> None:
    """Add the bearer scheme to the app's OpenAPI schema: required by every operation
    but /health, where it is optional."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "description": "an API key of the server's (attnmt serve --api-key-file)",
        }
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                operation["security"] = [{}, {SCHEME: []}] if path == "/health" else [{SCHEME: []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
