"""A synthetic language pair in which attention has to align and reorder.

The source language is English-like (subject-verb-object, adjectives before nouns,
prepositions); the target language is an invented Japanese-like one:

    source:  the big red dog sees a small cat near the old house
    target:  inu oki aka no ga neko chisa na wo ie furu no soba miru

- word order becomes subject-object-verb: the verb moves to the end of the sentence;
- prepositional phrases move before the verb and their preposition becomes a postposition;
- adjectives follow their noun, and determiners become particles after the adjectives;
- subject and object are marked by particles (``ga``, ``wo``);
- every content word has a fixed translation from an invented lexicon.

So the alignment is neither diagonal nor a simple reversal, and a model without
attention must carry the whole sentence in one vector. Generation is deterministic for a
given seed and needs nothing from the network.

Gold alignments come for free, since the generator knows which target word it made from
which source word (:class:`AlignedPair`). The convention, for this grammar and the
study's (:mod:`attnmt.data.study_grammar`):

- a target word made from source words is a **sure** link to each of them
  (``inu`` <- ``dog``; a determiner's particle <- the determiner);
- a particle that comes from no source word (the case markers ``ga`` and ``wo``) is a
  **possible** link to every word of the phrase it marks, never a sure one: an aligner
  may link it there without penalty, and is not required to link it at all;
- a source word that yields no target word has no link.

``write_task`` writes them beside each split as ``{split}.align``, in the Pharaoh format
(see :mod:`attnmt.data.alignment`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from attnmt.data.alignment import GoldAlignment, Link
from attnmt.files import write_text_atomic

NOUNS = {
    "dog": "inu", "cat": "neko", "house": "ie", "tree": "ki", "bird": "tori",
    "car": "kuruma", "river": "kawa", "child": "ko", "teacher": "sensei", "book": "hon",
    "horse": "uma", "fish": "sakana", "mountain": "yama", "garden": "niwa", "friend": "tomo",
    "boat": "fune",
}  # fmt: skip
ADJECTIVES = {
    "big": "oki", "small": "chisa", "red": "aka", "blue": "ao", "old": "furu",
    "new": "atara", "happy": "ureshi", "quiet": "shizuka", "fast": "haya", "white": "shiro",
}  # fmt: skip
VERBS = {
    "sees": "miru", "likes": "suku", "follows": "otte", "finds": "mitsu", "draws": "kaku",
    "helps": "tasuke", "hears": "kiku", "carries": "hakobu", "paints": "nuru", "knows": "shiru",
}  # fmt: skip
PREPOSITIONS = {"near": "soba", "behind": "ushiro", "in": "naka", "under": "shita", "with": "to"}
DETERMINERS = {"the": "no", "a": "na", "this": "kono", "every": "zen"}


@dataclass(frozen=True)
class TargetWord:
    """One target word and where it comes from (source word positions)."""

    text: str
    sure: tuple[int, ...] = ()  # the source words it was made from
    possible: tuple[int, ...] = ()  # for a particle made from nothing: the phrase it marks


@dataclass(frozen=True)
class AlignedPair:
    """A sentence pair (whitespace-joined words) with its gold word alignment."""

    source: str
    target: str
    alignment: GoldAlignment

    @classmethod
    def of(cls, source: list[str], target: list[TargetWord]) -> AlignedPair:
        sure: list[Link] = [(i, j) for j, word in enumerate(target) for i in word.sure]
        possible: list[Link] = [(i, j) for j, word in enumerate(target) for i in word.possible]
        text = " ".join(word.text for word in target)
        return cls(" ".join(source), text, GoldAlignment.of(sure, possible))


def span(start: int, length: int) -> tuple[int, ...]:
    """The source positions start, start + 1, ..., start + length - 1."""
    return tuple(range(start, start + length))


@dataclass(frozen=True)
class NounPhrase:
    determiner: str
    adjectives: tuple[str, ...]
    noun: str

    def source(self) -> list[str]:
        return [self.determiner, *self.adjectives, self.noun]

    def target(self, start: int) -> list[TargetWord]:
        """Noun first, then its adjectives, then the determiner as a particle; `start` is
        the source position of the determiner."""
        adjectives = [
            TargetWord(ADJECTIVES[a], (start + 1 + k,)) for k, a in enumerate(self.adjectives)
        ]
        noun = TargetWord(NOUNS[self.noun], (start + len(self.adjectives) + 1,))
        return [noun, *adjectives, TargetWord(DETERMINERS[self.determiner], (start,))]


def _noun_phrase(rng: random.Random, max_adjectives: int) -> NounPhrase:
    count = rng.randint(0, max_adjectives)
    adjectives = tuple(rng.sample(sorted(ADJECTIVES), count))
    return NounPhrase(rng.choice(sorted(DETERMINERS)), adjectives, rng.choice(sorted(NOUNS)))


def sentence_words(
    rng: random.Random, start: int = 0, max_adjectives: int = 2
) -> tuple[list[str], list[TargetWord]]:
    """One sentence's source words and aligned target words, its first source word
    sitting at position `start` (so that clauses can be joined)."""
    subject = _noun_phrase(rng, max_adjectives)
    verb = rng.choice(sorted(VERBS))
    obj = _noun_phrase(rng, max_adjectives)
    phrases = []
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        phrases.append((rng.choice(sorted(PREPOSITIONS)), _noun_phrase(rng, 1)))
    source = [*subject.source(), verb, *obj.source()]
    verb_at, obj_at = start + len(subject.source()), start + len(subject.source()) + 1
    target = [
        *subject.target(start),
        TargetWord("ga", possible=span(start, len(subject.source()))),  # marks the subject
        *obj.target(obj_at),
        TargetWord("wo", possible=span(obj_at, len(obj.source()))),  # marks the object
    ]
    for preposition, phrase in phrases:
        at = start + len(source)
        source += [preposition, *phrase.source()]
        target += [*phrase.target(at + 1), TargetWord(PREPOSITIONS[preposition], (at,))]
    target.append(TargetWord(VERBS[verb], (verb_at,)))
    return source, target


def aligned_pair(rng: random.Random, max_adjectives: int = 2) -> AlignedPair:
    """One pair with its gold alignment; see the module docstring for the grammar."""
    return AlignedPair.of(*sentence_words(rng, 0, max_adjectives))


def sentence_pair(rng: random.Random, max_adjectives: int = 2) -> tuple[str, str]:
    """One (source, target) pair; see the module docstring for the grammar."""
    pair = aligned_pair(rng, max_adjectives)
    return pair.source, pair.target


PairMaker = Callable[[random.Random], AlignedPair]


def generate(
    count: int, seed: int, exclude: set[str] | None = None, make_pair: PairMaker = aligned_pair
) -> list[AlignedPair]:
    """`count` pairs of distinct sources from `make_pair`, none of them in `exclude`."""
    rng = random.Random(seed)
    seen = set(exclude or ())
    pairs: list[AlignedPair] = []
    while len(pairs) < count:
        pair = make_pair(rng)
        if pair.source not in seen:
            seen.add(pair.source)
            pairs.append(pair)
    return pairs


def make_splits(
    train: int, dev: int, test: int, seed: int, make_pair: PairMaker = aligned_pair
) -> dict[str, list[AlignedPair]]:
    """Train, dev and test pairs; no source repeats across splits."""
    held_out = generate(dev + test, seed + 1, make_pair=make_pair)
    train_pairs = generate(train, seed, {pair.source for pair in held_out}, make_pair)
    return {"train": train_pairs, "dev": held_out[:dev], "test": held_out[dev:]}


def write_split(directory: Path, name: str, pairs: list[AlignedPair]) -> tuple[Path, Path]:
    """Write `{name}.src`, `{name}.tgt` and the gold alignment `{name}.align` (Pharaoh
    lines) into `directory`; returns the .src and .tgt paths."""
    src, tgt = directory / f"{name}.src", directory / f"{name}.tgt"
    write_text_atomic(src, "".join(pair.source + "\n" for pair in pairs))
    write_text_atomic(tgt, "".join(pair.target + "\n" for pair in pairs))
    write_text_atomic(
        directory / f"{name}.align", "".join(pair.alignment.pharaoh() + "\n" for pair in pairs)
    )
    return src, tgt


def write_task(
    directory: Path, train: int = 20_000, dev: int = 500, test: int = 500, seed: int = 13
) -> dict[str, tuple[Path, Path]]:
    """Write train/dev/test splits as `{split}.src` / `{split}.tgt`, with their gold
    alignments as `{split}.align`; no source repeats across splits. Returns the .src and
    .tgt paths per split."""
    splits = make_splits(train, dev, test, seed)
    return {name: write_split(directory, name, pairs) for name, pairs in splits.items()}
