"""``attnmt serve``: translation and chat over HTTP with dynamic batching, and the
attention page.

    limits.py    the server's settings: request size, queue, batching, decode time
    schemas.py   the request and response bodies (pydantic; they make the OpenAPI docs)
    batcher.py   one worker thread per model: a bounded queue, batches by token budget;
                 the one thread that runs its model, for translations and chats
    requests.py  reading a body within its limits, the options, waiting for the answer
    app.py       the FastAPI app: /health, /models, /translate, the page (/) and /docs
    chat.py      POST /chat: a dialogue model's reply, attention and candidates
    static/      the page: plain HTML, CSS and JS modules, no build step

Needs the ``serve`` extra (``pip install 'attnmt[serve]'``).
"""
