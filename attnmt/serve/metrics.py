"""``GET /metrics``: the server's numbers in the Prometheus text format (prometheus-client).

    attnmt_requests_total{endpoint,model,status}   requests answered, by route and status
    attnmt_request_seconds{endpoint}               histogram: time from request to answer
    attnmt_batch_size{model}                       histogram: requests decoded in one batch
    attnmt_batch_source_tokens{model}              histogram: source tokens in one batch
    attnmt_queue_depth{model}                      gauge: requests waiting, when scraped
    attnmt_sentences_total{model}                  texts (and chat replies) decoded

``endpoint`` is the route (/translate, /chat, /models, /health, /metrics, the page's
files as /static) or ``other`` for a path that is none of them, so a scan of random paths
cannot grow the label set. ``model`` is empty where a request names none that is served.
Each app has its own registry, so two apps in one process (tests) never share counts.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from attnmt.serve.batcher import Batcher, BatchObserver
from attnmt.serve.requests import AUTH_ERROR, documented

ENDPOINTS = ("/translate", "/chat", "/models", "/health", "/metrics")
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOKENS = (8, 32, 128, 512, 1000, 2000, 4000, 8000, 16000)


def endpoint_of(path: str) -> str:
    """The ``endpoint`` label of a request path: a route, /static, or ``other``."""
    if path in ENDPOINTS:
        return path
    return "/static" if path.startswith("/static/") or path == "/" else "other"


class Metrics:
    """The server's metrics, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "attnmt_requests", "Requests answered", ["endpoint", "model", "status"], registry=r
        )
        self.request_seconds = Histogram(
            "attnmt_request_seconds", "Seconds to answer", ["endpoint"], buckets=SECONDS, registry=r
        )
        self.batch_size = Histogram(
            "attnmt_batch_size", "Requests in a decoded batch", ["model"], buckets=SIZES, registry=r
        )
        self.batch_source_tokens = Histogram(
            "attnmt_batch_source_tokens",
            "Source tokens in a decoded batch",
            ["model"],
            buckets=TOKENS,
            registry=r,
        )
        self.queue_depth = Gauge("attnmt_queue_depth", "Requests waiting", ["model"], registry=r)
        self.sentences = Counter("attnmt_sentences", "Texts decoded", ["model"], registry=r)

    def observer(self, model: str) -> BatchObserver:
        """What a model's :class:`Batcher` calls after each batch."""

        def observe(requests: int, tokens: int, sentences: int) -> None:
            self.batch_size.labels(model).observe(requests)
            self.batch_source_tokens.labels(model).observe(tokens)
            self.sentences.labels(model).inc(sentences)

        return observe

    def request(self, endpoint: str, model: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, model, str(status)).inc()
        self.request_seconds.labels(endpoint).observe(seconds)

    def render(self, batchers: Mapping[str, Batcher]) -> bytes:
        """The text format, with each queue's depth as it is now."""
        for name, batcher in batchers.items():
            self.queue_depth.labels(name).set(batcher.queued)
        return generate_latest(self.registry)


router = APIRouter()


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        **documented(AUTH_ERROR),
    },
)
async def metrics(request: Request) -> Response:
    """The server's metrics in the Prometheus text format (needs a key like the API)."""
    state = request.app.state
    return Response(state.metrics.render(state.batchers), media_type=CONTENT_TYPE_LATEST)
