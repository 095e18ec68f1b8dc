"""Request and response bodies of ``POST /translate``, ``POST /chat`` and friends.

The decoding options (:class:`DecodeRequest`, shared by both) mirror the ``decode``
config keys (see ``attnmt config --keys``); an option left out keeps the model's own
default. A key that is not listed here is refused with 422, naming it: a typo never
silently does nothing. Types are strict, as the OpenAPI schema says: ``"beam": "5"``,
``"beam": 5.0`` or ``"attention": "true"`` are refused with 422, not converted.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The decode keys a request may set; each is None (the model's default) unless given.
DECODE_KEYS = (
    "beam",
    "n_best",
    "alpha",
    "beta",
    "sample",
    "temperature",
    "top_k",
    "top_p",
    "max_len",
    "min_len",
    "no_repeat_ngram",
    "seed",
)


class DecodeRequest(BaseModel):
    """The model to use and how to decode: the part every decoding request shares."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = None
    """A loaded model's name (GET /models); None: the first one."""
    beam: int | None = Field(None, ge=1)
    """Beam size; 1 is greedy search."""
    n_best: int | None = Field(None, ge=1)
    """Hypotheses returned per text (at most beam)."""
    alpha: float | None = Field(None, ge=0)
    """GNMT length penalty."""
    beta: float | None = Field(None, ge=0)
    """GNMT coverage penalty."""
    sample: bool | None = None
    """Sample instead of searching."""
    temperature: float | None = Field(None, gt=0)
    """Sampling temperature."""
    top_k: int | None = Field(None, ge=0)
    """Sample from the k most likely tokens; 0 means all."""
    top_p: float | None = Field(None, gt=0, le=1)
    """Nucleus sampling."""
    max_len: int | None = Field(None, ge=1)
    """Longest output in tokens."""
    min_len: int | None = Field(None, ge=0)
    """Shortest output in tokens."""
    no_repeat_ngram: int | None = Field(None, ge=0)
    """Block repeated n-grams of this size."""
    seed: int | None = None
    """Seeds sampling; a seeded request is decoded on its own, so it is reproducible."""

    def decode_options(self) -> dict[str, Any]:
        """The decode keys given (the rest keep the model's defaults)."""
        given = {key: getattr(self, key) for key in DECODE_KEYS}
        return {key: value for key, value in given.items() if value is not None}


class TranslateRequest(DecodeRequest):
    """What to translate, with which model and options."""

    text: str | list[str]
    """One text (the answer holds one translation) or a list (one per text, in order)."""
    attention: bool = True
    """Include the attention weights."""
    units: Literal["pieces", "words"] = "pieces"
    """Tokens and attention over the model's subword pieces or over whole words."""
    heads: bool = False
    """Also every layer's and head's attention, for models that give them."""

    def texts(self) -> list[str]:
        return [self.text] if isinstance(self.text, str) else list(self.text)


class Hypothesis(BaseModel):
    text: str
    score: float
    rank_score: float
    tokens: list[str]
    attention: list[list[float]] | None
    attention_heads: list[list[list[list[float]]]] | None = None


class TranslationOut(Hypothesis):
    """One translated text: the schema of ``attnmt translate --format json``."""

    source_tokens: list[str]
    unknown: list[int] = Field(default_factory=list)
    """Positions in ``source_tokens`` the model read as the unknown piece; in word units
    such a word shows what was written, not "<unk>"."""
    hypotheses: list[Hypothesis]


class TranslateResponse(BaseModel):
    model: str
    translations: list[TranslationOut]


class ChatRequest(DecodeRequest):
    """A message to a dialogue model, after the turns before it. The decoding options
    replace the model's ``decode`` settings as for /translate; with reranking, the
    candidates are ``rerank.candidates`` (GET /models) samples or beam hypotheses."""

    history: list[str] = Field(default_factory=list)
    """The conversation so far, oldest first: the user's messages and the model's replies,
    each one turn. The model reads its last ``context_turns`` (GET /models). At most
    ``max_texts`` turns of at most ``max_chars`` characters each (else 413)."""
    message: str
    """The user's new message: not empty, at most ``max_chars`` characters (else 413)."""
    rerank: bool | None = None
    """Rerank the candidates by MMI with the model's backward run; None: when it has one."""
    candidate_attention: bool = False
    """Also each candidate's words and attention (the Chat tab asks for them); off by
    default, since on a 10-candidate reply they are most of the body."""


class ChatCandidate(BaseModel):
    """One candidate reply and its scores (docs/chat.md, "MMI-bidi reranking")."""

    text: str
    forward: float
    """log p(reply | what the model read), summed over the reply's tokens and EOS."""
    backward: float | None
    """log p(message | reply) under the backward run, summed; null when not reranked."""
    score: float
    """What the candidates are ordered by: the MMI score when reranked, else search's
    rank score."""
    tokens: list[str] | None = None
    """The candidate's words (the reply's ``tokens`` for the first); only with
    ``"candidate_attention": true``."""
    attention: list[list[float]] | None = None
    """(len(tokens) + 1) × len(source_tokens): this candidate's attention over the words
    read, as the response's ``attention`` (equal to it for the first candidate); only with
    ``"candidate_attention": true``, and null for a model without attention."""


class ChatResponse(BaseModel):
    """The reply, where it looked, and the candidates it was chosen from."""

    model: str
    reply: str
    """The best candidate's text."""
    tokens: list[str]
    """The reply's words."""
    source_tokens: list[str]
    """The words the model read: the context turns and the message, joined by |||. A
    word read as the unknown piece shows what was written (see ``unknown``)."""
    unknown: list[int] = Field(default_factory=list)
    """Positions in ``source_tokens`` of the words the model read as the unknown piece
    ("<unk>": not in its vocabulary)."""
    attention: list[list[float]] | None
    """(len(tokens) + 1) × len(source_tokens), one row per reply word and one for EOS,
    as /translate's with ``"units": "words"``; null for a model without attention."""
    candidates: list[ChatCandidate]
    """The distinct candidates, best first; the first is the reply."""
    reranked: bool
    """Whether the backward run scored the candidates."""


class ModelInfo(BaseModel):
    name: str
    run_dir: str
    has_attention: bool
    has_heads: bool
    parameters: int
    model: dict[str, Any]
    decode: dict[str, Any]
    task: str = "translation"
    """data.task: translation, dialogue (it can chat) or dialogue_backward."""
    reranker: str | None = None
    """A dialogue model's backward run (``--rerank NAME=BACKWARD_RUN``), if any."""
    rerank: dict[str, Any] | None = None
    """A dialogue model's rerank settings (λ, γ, N), when it has a backward run."""
    context_turns: int | None = None
    """A dialogue model's previous turns read before the message; null for other models."""
    loaded_at: str | None = None
    """When the server loaded the model (ISO 8601, UTC); a reload (SIGHUP) renews it."""


class ModelsResponse(BaseModel):
    default: str
    models: list[ModelInfo]


class HealthResponse(BaseModel):
    """Without a key, where the server has keys, only ``status``."""

    status: Literal["ok"]
    models: dict[str, ModelInfo] | None = None
    queued: dict[str, int] | None = None


class ErrorResponse(BaseModel):
    detail: str
