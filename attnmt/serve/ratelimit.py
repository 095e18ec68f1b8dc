"""``--rate-limit N``: at most N requests a minute per caller, as a token bucket.

Each caller (a key's name, or the client's address without keys) has a bucket of N
tokens, refilled continuously at N per 60 s. A request takes one token; with none left it
is refused with 429 and ``Retry-After``: the whole seconds until the next token,

    tokens(t) = min(N, tokens(t0) + (t - t0) * N / 60)
    retry_after = ceil((1 - tokens) * 60 / N)

so a caller may burst N requests, then keeps to N a minute on average.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    """Token buckets by caller; used on the event loop (one thread), so without locks."""

    PRUNE_AT = 4096  # callers remembered before the full (idle) buckets are dropped

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError(f"rate_limit must be at least 1 (got {per_minute})")
        self.per_minute = per_minute
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, when)

    def take(self, caller: str) -> int:
        """Take a token for `caller`: 0 when allowed, else the seconds to wait (>= 1)."""
        now = self.clock()
        rate = self.per_minute / 60  # tokens a second
        tokens, when = self._buckets.get(caller, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - when) * rate)
        if tokens >= 1:
            self._buckets[caller] = (tokens - 1, now)
            if len(self._buckets) > self.PRUNE_AT:
                self._prune(now, rate)
            return 0
        self._buckets[caller] = (tokens, now)
        return max(1, math.ceil((1 - tokens) / rate))

    def _prune(self, now: float, rate: float) -> None:
        """Forget callers whose buckets have refilled: they are as if never seen."""
        full = [
            caller
            for caller, (tokens, when) in self._buckets.items()
            if tokens + (now - when) * rate >= self.per_minute
        ]
        for caller in full:
            del self._buckets[caller]
