"""Word alignments in the Pharaoh format: reading, writing and the one-line errors.

A word alignment is a set of links (i, j): source word i and target word j translate
each other. A Pharaoh file has one line per sentence pair, 0-based indices of the
whitespace words, source first:

    0-0 1-2 2-1 4-3 3p4          "i-j" is a sure link, "ipj" a possible one

Sure links (S) are those annotators agree on; possible links (P, with S ⊆ P) are
acceptable but not required (Och & Ney 2003), e.g. a function word with no counterpart.
Plain ``i-j`` files (fast_align, GIZA++ symmetrised, most gold sets) have sure links
only; the ``p`` mark is the one the Zenkel et al. (2019) gold sets and awesome-align use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from attnmt.data.text import read_lines
from attnmt.errors import UserError

Link = tuple[int, int]  # (source word index, target word index), 0-based

_LINK = re.compile(r"(\d+)([-p])(\d+)")


@dataclass(frozen=True)
class GoldAlignment:
    """The gold alignment of one sentence pair: sure links and possible links (P ⊇ S)."""

    sure: frozenset[Link]
    possible: frozenset[Link]  # every acceptable link, the sure ones included

    @classmethod
    def of(cls, sure: Iterable[Link], possible: Iterable[Link] = ()) -> GoldAlignment:
        sure_links = frozenset(sure)
        return cls(sure_links, sure_links | frozenset(possible))

    def pharaoh(self) -> str:
        """The Pharaoh line: sure links as "i-j", the other possible ones as "ipj",
        sorted by target word, then source word."""
        links = [(j, i, "-") for i, j in self.sure]
        links += [(j, i, "p") for i, j in self.possible - self.sure]
        return " ".join(f"{i}{mark}{j}" for j, i, mark in sorted(links))


def parse_pharaoh(line: str, where: str = "alignment") -> GoldAlignment:
    """One Pharaoh line ("0-0 2-1 1p3"); a one-line UserError naming `where` otherwise."""
    sure: set[Link] = set()
    possible: set[Link] = set()
    for item in line.split():
        match = _LINK.fullmatch(item)
        if match is None:
            raise UserError(
                f"{where}: {item!r} is not a link; Pharaoh links are i-j (sure) or ipj "
                "(possible), with 0-based source index i and target index j"
            )
        link = (int(match.group(1)), int(match.group(3)))
        (sure if match.group(2) == "-" else possible).add(link)
    return GoldAlignment.of(sure, possible)


def read_pharaoh(path: str | Path) -> list[GoldAlignment]:
    """Every line of a Pharaoh file (.gz ok), one alignment per sentence pair."""
    path = Path(path)
    try:
        lines = list(read_lines(path))
    except OSError as error:
        raise UserError(f"cannot read the alignment file {path}: {error.strerror}") from None
    return [parse_pharaoh(line, f"{path}:{number}") for number, line in enumerate(lines, 1)]
