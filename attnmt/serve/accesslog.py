"""``--access-log FILE`` (or ``-``: stderr): one JSON line per request.

    {"time": "2026-12-07T20:31:02.114+00:00", "key": "alice", "client": "10.0.0.7",
     "method": "POST", "endpoint": "/translate", "model": "de-en", "status": 200,
     "texts": 3, "source_tokens": 41, "latency_ms": 84.2}

``key`` is the key's name (never the key; null without keys or without a valid one).
``model``, ``texts`` and ``source_tokens`` are what a decoding route read (null and 0 for
the other routes, and for a body refused as not the schema). The texts themselves
are written only with ``--log-text``, as ``"text": [...]``.

Each line is one ``write`` to a file opened for appending, so lines of concurrent
requests never interleave and a reader never sees half a line; a log is appended to, not
replaced, so it is not written through :mod:`attnmt.files`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from attnmt.errors import UserError


@dataclass
class Usage:
    """What a decoding route read, for the log and the metrics (``request.state.usage``)."""

    model: str | None = None
    texts: int = 0
    tokens: int = 0
    text: list[str] = field(default_factory=list)


class AccessLog:
    """Appends one JSON line per request to a file, or to stderr for ``-``."""

    def __init__(self, target: str, log_text: bool = False) -> None:
        self.target = target
        self.log_text = log_text
        if target == "-":
            self._fd, self._own = sys.stderr.fileno(), False
            return
        try:
            self._fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as err:
            raise UserError(f"--access-log {target}: {err.strerror or err}") from None
        self._own = True

    def write(
        self,
        key: str | None,
        client: str | None,
        method: str,
        endpoint: str,
        status: int,
        usage: Usage,
        seconds: float,
    ) -> None:
        """One line for one answered request."""
        record: dict[str, Any] = {
            "time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"),
            "key": key,
            "client": client,
            "method": method,
            "endpoint": endpoint,
            "model": usage.model,
            "status": status,
            "texts": usage.texts,
            "source_tokens": usage.tokens,
            "latency_ms": round(1000 * seconds, 1),
        }
        if self.log_text:
            record["text"] = usage.text
        line = json.dumps(record, ensure_ascii=False) + "\n"
        os.write(self._fd, line.encode("utf-8"))

    def close(self) -> None:
        if self._own:
            os.close(self._fd)
            self._own = False
