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
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from attnmt.io.files import write_text_atomic

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
class NounPhrase:
    determiner: str
    adjectives: tuple[str, ...]
    noun: str

    def source(self) -> list[str]:
        return [self.determiner, *self.adjectives, self.noun]

    def target(self) -> list[str]:
        """Noun first, then its adjectives, then the determiner as a particle."""
        adjectives = [ADJECTIVES[a] for a in self.adjectives]
        return [NOUNS[self.noun], *adjectives, DETERMINERS[self.determiner]]


def _noun_phrase(rng: random.Random, max_adjectives: int) -> NounPhrase:
    count = rng.randint(0, max_adjectives)
    adjectives = tuple(rng.sample(sorted(ADJECTIVES), count))
    return NounPhrase(rng.choice(sorted(DETERMINERS)), adjectives, rng.choice(sorted(NOUNS)))


def sentence_pair(rng: random.Random, max_adjectives: int = 2) -> tuple[str, str]:
    """One (source, target) pair; see the module docstring for the grammar."""
    subject = _noun_phrase(rng, max_adjectives)
    verb = rng.choice(sorted(VERBS))
    obj = _noun_phrase(rng, max_adjectives)
    phrases = []
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        phrases.append((rng.choice(sorted(PREPOSITIONS)), _noun_phrase(rng, 1)))
    source = [*subject.source(), verb, *obj.source()]
    target = [*subject.target(), "ga", *obj.target(), "wo"]
    for preposition, phrase in phrases:
        source += [preposition, *phrase.source()]
        target += [*phrase.target(), PREPOSITIONS[preposition]]
    target.append(VERBS[verb])
    return " ".join(source), " ".join(target)


PairMaker = Callable[[random.Random], tuple[str, str]]


def generate(
    count: int, seed: int, exclude: set[str] | None = None, make_pair: PairMaker = sentence_pair
) -> list[tuple[str, str]]:
    """`count` distinct pairs from `make_pair` whose sources are not in `exclude`."""
    rng = random.Random(seed)
    seen = set(exclude or ())
    pairs: list[tuple[str, str]] = []
    while len(pairs) < count:
        source, target = make_pair(rng)
        if source not in seen:
            seen.add(source)
            pairs.append((source, target))
    return pairs


def make_splits(
    train: int, dev: int, test: int, seed: int, make_pair: PairMaker = sentence_pair
) -> dict[str, list[tuple[str, str]]]:
    """Train, dev and test pairs; no source repeats across splits."""
    held_out = generate(dev + test, seed + 1, make_pair=make_pair)
    train_pairs = generate(train, seed, {s for s, _ in held_out}, make_pair)
    return {"train": train_pairs, "dev": held_out[:dev], "test": held_out[dev:]}


def write_task(
    directory: Path, train: int = 20_000, dev: int = 500, test: int = 500, seed: int = 13
) -> dict[str, tuple[Path, Path]]:
    """Write train/dev/test splits as `{split}.src` / `{split}.tgt`; no source repeats
    across splits. Returns the paths per split."""
    paths: dict[str, tuple[Path, Path]] = {}
    for name, pairs in make_splits(train, dev, test, seed).items():
        src, tgt = directory / f"{name}.src", directory / f"{name}.tgt"
        write_text_atomic(src, "".join(s + "\n" for s, _ in pairs))
        write_text_atomic(tgt, "".join(t + "\n" for _, t in pairs))
        paths[name] = (src, tgt)
    return paths
