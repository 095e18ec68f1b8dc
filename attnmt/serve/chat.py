"""``POST /chat``: a dialogue model answers a message after the turns before it.

    {"history": ["hi!", "hello, how are you?"], "message": "good. what do you study?",
     "model": "chat", "rerank": true, "sample": true, "seed": 1}
    -> {"model": "chat", "reply": "i study physics",
        "tokens": ["i", "study", "physics"],                 # the reply's words
        "source_tokens": ["hello,", ..., "|||", "good.", ...], # the words the model read
        "unknown": [],                  # source_tokens read as the unknown piece (each
                                        # shown as written), as /translate's
        "attention": [[...], ...],      # (reply words + EOS) x words read, as /translate's
        "candidates": [{"text", "forward", "backward", "score",            # best first
                        "tokens", "attention"}, ...],   # each one's words and attention,
                                        # with "candidate_attention": true
        "reranked": true}

The server is stateless: the client sends the conversation with each message, and the
model reads its last ``context_turns`` (GET /models) before the message, as
:class:`attnmt.translate.chatbot.Responder` joins them. ``rerank`` defaults to true
when the model has a backward run (``attnmt serve --rerank NAME=BACKWARD_RUN``); the
other options are /translate's decoding options, over the model's ``decode`` settings.

Concurrency: the chat is answered on the model's :class:`Batcher` thread, queued with
its translations (``Batcher.submit_chat``), never on the event loop or a thread of its
own. One thread per model runs that model, so /chat and /translate never use it at the
same time, and /chat has /translate's queue limit (503), timeout (504) and batching:
chats with equal options that arrive together are answered in one decode.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from attnmt.errors import UserError
from attnmt.serve.batcher import Batcher
from attnmt.serve.limits import Limits
from attnmt.serve.requests import (
    ERRORS,
    ApiError,
    answer_of,
    body_limit,
    check_size,
    checked_options,
    documented,
    json_body,
    parse,
)
from attnmt.serve.schemas import ChatRequest, ChatResponse
from attnmt.translate.chatbot import ChatReply, NarrowBeam, Responder, check_dialogue
from attnmt.translate.rerank import Candidate
from attnmt.translate.schema import hypothesis_record

router = APIRouter()

CHAT_ERRORS = {
    **ERRORS,
    413: "a message or history turn over max_chars, or more than max_texts history turns",
    422: f"{ERRORS[422]}; an empty message; a model that is not a dialogue model; "
    "rerank asked of a model without a backward run; a beam narrower than the model's "
    "rerank.candidates while reranking without sampling",
}


@router.post(
    "/chat",
    response_model=ChatResponse,
    responses=documented(CHAT_ERRORS),
    openapi_extra=json_body(ChatRequest),
)
async def chat(request: Request) -> JSONResponse:
    """Reply to a message after the conversation so far, with the reply's attention over
    what the model read and every candidate's scores. Options left out keep the model's
    defaults."""
    state = request.app.state
    limits: Limits = state.limits
    # the history and the message, each at its limit, are max_texts + 1 texts
    body = await parse(request, ChatRequest, body_limit(limits.max_texts + 1, limits))
    name = body.model or state.names[0]
    usage = request.state.usage
    usage.model = name
    batcher: Batcher | None = state.batchers.get(name)
    if batcher is None:
        raise ApiError(404, f"unknown model {name!r}; loaded: {', '.join(state.names)}")
    responder: Responder | None = state.responders.get(name)
    if responder is None:
        try:
            check_dialogue(batcher.translator, f"the model {name!r}")
        except UserError as err:
            raise ApiError(422, str(err)) from None
        raise ApiError(422, f"the model {name!r} cannot chat")  # a dialogue model left out
    message = " ".join(body.message.split())
    history = [" ".join(turn.split()) for turn in body.history]
    usage.texts, usage.text = 1, [*body.history, body.message]
    check_size(history, limits, "history turn")
    if len(body.message) > limits.max_chars:
        raise ApiError(
            413, f"the message has {len(body.message)} characters; at most {limits.max_chars}"
        )
    if not message:
        raise ApiError(422, "message: an empty message has no reply")
    rerank = _rerank(body.rerank, responder, name)
    options = checked_options(body, batcher.translator, limits)
    try:
        responder.reply_options(options, rerank)  # options that cannot give the candidates
    except NarrowBeam as err:
        raise ApiError(422, narrow_beam(err, name)) from None
    source = responder.source(history, message)
    usage.tokens = len(batcher.translator.src_tok.encode(source))
    submit = partial(batcher.submit_chat, source, options, rerank, request.state.caller)
    answer: ChatReply = await answer_of(submit, limits, "reply")
    return JSONResponse({"model": name, **chat_record(answer, body.candidate_attention)})


def _rerank(asked: bool | None, responder: Responder, name: str) -> bool:
    """Whether to rerank: as asked, by default when there is a backward run; 422 when
    asked of a model without one."""
    if asked is None:
        return responder.reranker is not None
    if asked and responder.reranker is None:
        raise ApiError(
            422,
            f"rerank: the model {name!r} has no backward run to rerank with "
            f"(attnmt serve --rerank {name}=BACKWARD_RUN)",
        )
    return asked


def narrow_beam(err: NarrowBeam, name: str) -> str:
    """The narrow-beam error in the request's terms: its fields, and the model's
    ``rerank.candidates`` (the CLI's message names flags no request has)."""
    return (
        f"beam: reranking takes {err.candidates} candidates (rerank.candidates of the model "
        f'{name!r}), which needs "beam": {err.candidates} or more (the beam is {err.beam}); '
        'send a wider "beam", or "sample": true, or "rerank": false'
    )


def chat_record(answer: ChatReply, candidate_attention: bool = False) -> dict[str, Any]:
    """The reply as JSON (:class:`ChatResponse` without the model): its words, the words
    read and the attention between them as /translate's ``"units": "words"``, and the
    candidates."""
    record = answer.translation.to_dict("words", attention=True)
    return {
        "reply": answer.text,
        "tokens": record["tokens"],
        "source_tokens": record["source_tokens"],
        "unknown": record["unknown"],
        "attention": record["attention"],
        "candidates": [
            candidate_record(candidate) if candidate_attention else candidate.to_dict()
            for candidate in answer.candidates
        ],
        "reranked": answer.reranked,
    }


def candidate_record(candidate: Candidate) -> dict[str, Any]:
    """A candidate as JSON (:class:`ChatCandidate`): its scores, its words and its
    attention over the words read, as search found them (no extra pass: every candidate
    is a hypothesis of the one decode, with its own attention)."""
    words = hypothesis_record(candidate.translation, "words", attention=True)
    return {**candidate.to_dict(), "tokens": words["tokens"], "attention": words["attention"]}
