"""``attnmt serve``: translation and chat over HTTP with dynamic batching, and the
attention page.

    limits.py    the server's settings: request size, queue, batching, decode time
    schemas.py   the request and response bodies (pydantic; they make the OpenAPI docs)
    fairqueue.py the batcher's bounded queue: one lane per caller, taken round-robin
    batcher.py   one worker thread per model: a fair queue, batches by token budget;
                 the one thread that runs its model, for translations and chats
    requests.py  reading a body within its limits, the options, waiting for the answer
    app.py       the FastAPI app: /health, /models, /translate, the page (/) and /docs
    chat.py      POST /chat: a dialogue model's reply, attention and candidates
    auth.py      API keys: where they come from, the constant-time check
    ratelimit.py --rate-limit: a token bucket per caller
    guard.py     the middleware: key (401), rate (429), then metrics and the access log
    metrics.py   GET /metrics: the Prometheus counters, histograms and the queue gauge
    accesslog.py --access-log: one JSON line per request
    reload.py    SIGHUP: models whose checkpoint changed are reloaded and swapped in
    static/      the page: plain HTML, CSS and JS modules, no build step; swagger/: the
                 vendored Swagger UI that /docs serves (no CDN)

docs/serving.md: keys, limits, metrics, the access log, reloading, and what is protected.

Needs the ``serve`` extra (``pip install 'attnmt[serve]'``).
"""
