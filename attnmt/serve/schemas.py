"""Request and response bodies of ``POST /translate`` and friends.

The decoding options mirror the ``decode`` config keys (see ``attnmt config --keys``);
an option left out keeps the model's own default. A key that is not listed here is
refused with 422, naming it: a typo never silently does nothing.
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


class TranslateRequest(BaseModel):
    """What to translate, with which model and options."""

    model_config = ConfigDict(extra="forbid")

    text: str | list[str]
    """One text (the answer holds one translation) or a list (one per text, in order)."""
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
    attention: bool = True
    """Include the attention weights."""
    units: Literal["pieces", "words"] = "pieces"
    """Tokens and attention over the model's subword pieces or over whole words."""
    heads: bool = False
    """Also every layer's and head's attention, for models that give them."""

    def texts(self) -> list[str]:
        return [self.text] if isinstance(self.text, str) else list(self.text)

    def decode_options(self) -> dict[str, Any]:
        """The decode keys given (the rest keep the model's defaults)."""
        given = {key: getattr(self, key) for key in DECODE_KEYS}
        return {key: value for key, value in given.items() if value is not None}


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
    hypotheses: list[Hypothesis]


class TranslateResponse(BaseModel):
    model: str
    translations: list[TranslationOut]


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


class ModelsResponse(BaseModel):
    default: str
    models: list[ModelInfo]


class HealthResponse(BaseModel):
    status: Literal["ok"]
    models: dict[str, ModelInfo]
    queued: dict[str, int]


class ErrorResponse(BaseModel):
    detail: str
