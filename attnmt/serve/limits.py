"""The server's limits: every one a setting with a safe default (``attnmt serve --help``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_chars: int = 1000
    """Longest text in characters; a longer one is refused with 413."""
    max_texts: int = 64
    """Most texts in one request; more are refused with 413."""
    queue_size: int = 256
    """Requests waiting per model; when full, new ones are refused with 503."""
    max_wait_ms: float = 5.0
    """How long a worker waits for more requests to join a batch."""
    batch_tokens: int = 4000
    """Source-token budget of one batch: a worker stops collecting requests past it."""
    max_batch: int = 64
    """Most requests in one batch (1: one request at a time, no batching)."""
    fair_batch: int = 16
    """While more than one caller is active, one caller's requests in a batch stop being
    taken once they hold this many texts; the rest wait for the next batch."""
    max_beam: int = 16
    """Largest beam (and n-best) a request may ask for; more is refused with 422."""
    max_len: int = 256
    """Longest output in tokens a request may ask for; more is refused with 422."""
    timeout_s: float = 30.0
    """How long a request waits for its translation (queue + decoding) before 504."""

    def check(self) -> None:
        """Raise ValueError naming the first setting that is out of range."""
        counts = ("max_chars", "max_texts", "queue_size", "batch_tokens", "max_batch", "fair_batch")
        for name in (*counts, "max_beam", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.max_wait_ms < 0 or self.timeout_s <= 0:
            raise ValueError("max_wait_ms must be >= 0 and timeout_s > 0")
