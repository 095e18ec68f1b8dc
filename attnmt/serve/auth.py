"""API keys: who may use the server.

Keys come from ``--api-key-file FILE`` (one entry a line) and ``ATTNMT_API_KEYS`` (the
same entries, comma-separated); with both, every key of either works. An entry is
``NAME:KEY`` or a bare ``KEY``; blank lines and lines starting with ``#`` are skipped:

    # attnmt serve --api-key-file keys.txt
    alice:5d0f8c0e2a7b4c1e9f3a6b8d
    monitoring:0b7e4a91c3d25f68e1a9
    3c9e1f7a2b5d8e0c            # a bare key: named sha256:<its first 8 hex digits>

A request names its key in ``Authorization: Bearer KEY``. The key is compared with every
known key in constant time (:func:`hmac.compare_digest`, no early exit), so the time of
an answer does not tell how much of a guess was right. Only the key's *name* is ever
logged or counted (access log, metrics, the batcher's lanes): a bare key's name is a
prefix of its SHA-256, which does not reveal it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from attnmt.errors import UserError

ENV = "ATTNMT_API_KEYS"
MIN_LENGTH = 8  # a shorter key is a typo or a guessable one: refused at start


@dataclass(frozen=True)
class ApiKeys:
    """The keys a server accepts, by name; empty: the server needs none."""

    by_name: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_name)

    @classmethod
    def load(cls, file: Path | None = None, env: str | None = None) -> ApiKeys:
        """The union of the entries of `file` (one a line) and `env` (comma-separated;
        None: the ATTNMT_API_KEYS variable). A bad entry is a one-line UserError naming
        where it is, never showing the key."""
        entries: list[tuple[str, str]] = []
        if file is not None:
            try:
                lines = Path(file).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as err:
                raise UserError(f"--api-key-file {file}: cannot read it ({err})") from None
            entries += [(f"{file}, line {n}", line) for n, line in enumerate(lines, start=1)]
        variable = os.environ.get(ENV, "") if env is None else env
        entries += [(f"{ENV}, entry {n}", part) for n, part in enumerate(variable.split(","), 1)]
        return cls(parse_entries(entries))

    def name_of(self, authorization: str | None) -> str | None:
        """The name of the key in an ``Authorization: Bearer KEY`` header, or None for a
        missing header, another scheme, or a key that is not one of ours."""
        scheme, _, given = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return None
        candidate = given.strip().encode("utf-8")
        found = None
        for name, key in self.by_name.items():  # every key, match or not: constant time
            if hmac.compare_digest(candidate, key.encode("utf-8")):
                found = name
        return found


def parse_entries(entries: Iterable[tuple[str, str]]) -> dict[str, str]:
    """(where, entry) pairs -> {name: key}; the same key twice is one key."""
    by_name: dict[str, str] = {}
    for where, raw in entries:
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        name, sep, key = entry.partition(":")
        if not sep:
            name, key = f"sha256:{hashlib.sha256(entry.encode()).hexdigest()[:8]}", entry
        name, key = name.strip(), key.strip()
        if not name or len(key) < MIN_LENGTH or any(c.isspace() for c in key):
            raise UserError(
                f"{where}: expected NAME:KEY or KEY, the key at least {MIN_LENGTH} "
                "characters without spaces"
            )
        if by_name.get(name, key) != key:
            raise UserError(f"{where}: the name {name!r} is given two different keys")
        by_name[name] = key
    return by_name
