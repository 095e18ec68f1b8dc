"""Reading a request and waiting for its answer, the same way for every route.

    body  --read_body: at most N bytes--> --parse: UTF-8, JSON, the schema-->  a request
    options --checked_options: the model's, the request's, the server's limits--> DecodeOptions
    a batcher's future --answer_of: within timeout_s--> the result

Anything the user can fix becomes an :class:`ApiError`: a status and one line, answered
as JSON ``{"detail": "..."}`` by the app's handler.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from attnmt.config import DecodeOptions
from attnmt.errors import UserError
from attnmt.serve.batcher import QueueFull
from attnmt.serve.limits import Limits
from attnmt.serve.schemas import DecodeRequest, ErrorResponse
from attnmt.translate.translator import Translator

Body = TypeVar("Body", bound=BaseModel)

# Refused by the guard (guard.py) before a route runs.
AUTH_ERROR = {401: "no API key, or a wrong one, where the server has keys"}
RATE_ERROR = {429: "over the server's --rate-limit: try again after Retry-After seconds"}
HEADERS = {
    401: {"WWW-Authenticate": "Bearer"},
    429: {"Retry-After": "seconds until the next request is allowed"},
}

# The errors of the decoding routes, as the OpenAPI schema documents them.
ERRORS = {
    **AUTH_ERROR,
    **RATE_ERROR,
    404: "an unknown model",
    413: "a text over max_chars, more than max_texts texts, or a body too big for them",
    422: "a body that is not UTF-8, JSON or the schema; an unknown or bad option",
    503: "the model's queue is full: try again shortly",
    504: "no answer within the server's timeout",
}


def documented(errors: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """FastAPI's ``responses=`` for `errors` (status -> when): each a one-line detail,
    with the headers that come with it."""
    documented: dict[int | str, dict[str, Any]] = {}
    for status, when in errors.items():
        documented[status] = {"model": ErrorResponse, "description": f"{when} (one line in detail)"}
        headers = HEADERS.get(status, {})
        if headers:
            documented[status]["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in headers.items()
            }
    return documented


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """FastAPI's ``openapi_extra=`` for a route that reads and checks its own JSON body
    (:func:`parse`): the request body `model`, required, in the schema."""
    content = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": True, "content": content}}


class ApiError(Exception):
    """An answer with a status and one line, raised anywhere in a route."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


def one_line(err: ValidationError | RequestValidationError) -> str:
    """The first validation error as `field: message` (pydantic's wording)."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = "unknown option" if first.get("type") == "extra_forbidden" else first["msg"]
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def body_limit(texts: int, limits: Limits) -> int:
    """The longest valid body holding `texts` texts: each at its limit, 4 UTF-8 bytes a
    character, with room for the options."""
    return texts * (4 * limits.max_chars + 16) + 4096


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it passes `limit` bytes (never held)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is over {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def parse(request: Request, schema: type[Body], limit: int) -> Body:
    """The body as a `schema`; 413 past `limit` bytes, 422 for bad UTF-8, bad JSON or a
    body that does not fit the schema."""
    raw = await read_body(request, limit)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ApiError(422, f"the body is not valid UTF-8 (byte {err.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ApiError(422, f"the body is not valid JSON: {err}") from None
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise ApiError(422, one_line(err)) from None


def check_size(texts: list[str], limits: Limits, what: str = "text") -> None:
    """413 for more than max_texts texts or one over max_chars characters."""
    if len(texts) > limits.max_texts:
        raise ApiError(413, f"{len(texts)} {what}s; at most {limits.max_texts} per request")
    for number, text in enumerate(texts, start=1):
        if len(text) > limits.max_chars:
            raise ApiError(
                413, f"{what} {number} has {len(text)} characters; at most {limits.max_chars}"
            )


def checked_options(body: DecodeRequest, translator: Translator, limits: Limits) -> DecodeOptions:
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


async def answer_of(submit: Callable[[], Future[Any]], limits: Limits, what: str) -> Any:
    """Queue a job with `submit` and wait for its result: 503 when the queue is full, 504
    after timeout_s, 422 for a UserError raised while decoding (a bug raises on, to the
    app's 500 handler)."""
    try:
        future = submit()
    except QueueFull as err:
        raise ApiError(503, f"{err}; try again shortly") from None
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), limits.timeout_s)
    except asyncio.TimeoutError:
        raise ApiError(504, f"no {what} within {limits.timeout_s:g} s") from None
    except UserError as err:
        raise ApiError(422, str(err)) from None
