"""``attnmt serve``: translation over HTTP with dynamic batching, and the attention page.

    limits.py    the server's settings: request size, queue, batching, decode time
    schemas.py   the request and response bodies (pydantic; they make the OpenAPI docs)
    batcher.py   one worker thread per model: a bounded queue, batches by token budget
    app.py       the FastAPI app: /health, /models, /translate, the page (/) and /docs
    static/      the page: plain HTML, CSS and JS, no build step

Needs the ``serve`` extra (``pip install 'attnmt[serve]'``).
"""
