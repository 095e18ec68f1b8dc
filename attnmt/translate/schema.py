"""Output formats of a translation: the JSON schema and the text lines."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from attnmt.translate.translator import Translation


def rounded(attention: np.ndarray | None) -> list[list[float]] | None:
    return None if attention is None else np.round(attention.astype(np.float64), 4).tolist()


def as_json(result: Translation, n_best: int) -> str:
    """One JSON line for one input: the best translation, and the n-best list if n_best > 1."""
    record: dict[str, Any] = {
        "text": result.text,
        "score": result.score,
        "tokens": result.tokens,
        "src_tokens": result.src_tokens,
        "attention": rounded(result.attention),
    }
    if n_best > 1:
        record["n_best"] = [
            {
                "text": h.text,
                "score": h.score,
                "tokens": h.tokens,
                "attention": rounded(h.attention),
            }
            for h in result.hypotheses
        ]
    return json.dumps(record, ensure_ascii=False) + "\n"


def as_text(index: int, result: Translation, n_best: int) -> str:
    """The translation as a line; with n_best > 1, `INDEX ||| TEXT ||| SCORE` lines."""
    if n_best == 1:
        return result.text + "\n"
    return "".join(f"{index} ||| {h.text} ||| {h.score:.4f}\n" for h in result.hypotheses)


def formatter(output_format: str, n_best: int) -> Callable[[int, Translation], str]:
    """(input index, translation) -> output lines, in the chosen format."""
    if output_format == "json":
        return lambda _, result: as_json(result, n_best)
    return lambda index, result: as_text(index, result, n_best)
