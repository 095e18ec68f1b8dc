"""The study's harder synthetic language pair: more words, more reordering, and words that
do not map one to one.

It grows the quickstart grammar (:mod:`attnmt.data.synthetic`: SVO -> SOV, adjectives
after their noun, postpositions, case particles) in five ways, each a known difficulty
for attention:

- **a bigger vocabulary**: 48 nouns, 24 adjectives, 24 verbs, with invented
  translations (so a short training budget sees each word less often);
- **long-distance reordering across clauses**: "A because B" becomes "B kara A", so the
  second half of the source is translated first;
- **reordering inside a clause**: an object may carry a relative clause, which moves
  before its noun ("the cat that sees a bird" -> "tori na wo miru neko no"), and a
  clause-final adverb moves to just after the subject;
- **one-to-many**: a plural noun gives the noun and a plural marker ("dogs" -> "inu
  tachi"), a past verb gives the stem and a tense marker ("saw" -> "mi ta");
- **many-to-one**: "does not" gives one negation marker ("does not see" -> "mi nai").

Sources have 1 or 2 clauses and run from 5 to about 50 words (18.5 on average). Gold
alignments follow the convention of :mod:`attnmt.data.synthetic` ("that" and the case
particles are the words made from nothing). Generation is deterministic for a given seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from attnmt.data.synthetic import AlignedPair, TargetWord, span


def _invent(words: list[str], seed: int, taken: set[str]) -> dict[str, str]:
    """A fixed, made-up translation for each word: two or three consonant-vowel
    syllables, distinct from each other and from `taken` (the particles), and not ending
    in "ru" as present-tense verbs do."""
    rng = random.Random(seed)
    lexicon: dict[str, str] = {}
    for word in words:
        invented = ""
        while not invented or invented in taken or invented.endswith("ru"):  # "ru": verbs
            syllables = rng.choice([2, 2, 3])
            invented = "".join(
                rng.choice("kstnhmrgbdpwy") + rng.choice("aeiou") for _ in range(syllables)
            )
        taken.add(invented)
        lexicon[word] = invented
    return lexicon


NOUN_WORDS = """dog cat house tree bird car river child teacher book horse fish mountain garden
friend boat farmer doctor window bridge village forest lake road apple letter student singer
painter table chair door flower city island king queen soldier baker sailor clock lamp cup
ship tower wall field box""".split()  # noqa: SIM905 (a word list reads best as text)
ADJECTIVE_WORDS = """big small red blue old new happy quiet fast white young dark bright green
tall short warm cold strong soft brown rich poor clever""".split()  # noqa: SIM905


def plural(noun: str) -> str:
    """The English plural: children, cities, boxes, dogs."""
    if noun == "child":
        return "children"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "es" if noun.endswith(("s", "x", "ch", "sh")) else noun + "s"


VERB_FORMS = [  # (third person singular, past, base)
    ("sees", "saw", "see"), ("likes", "liked", "like"), ("follows", "followed", "follow"),
    ("finds", "found", "find"), ("draws", "drew", "draw"), ("helps", "helped", "help"),
    ("hears", "heard", "hear"), ("carries", "carried", "carry"), ("paints", "painted", "paint"),
    ("knows", "knew", "know"), ("calls", "called", "call"), ("meets", "met", "meet"),
    ("watches", "watched", "watch"), ("pushes", "pushed", "push"), ("pulls", "pulled", "pull"),
    ("loves", "loved", "love"), ("feeds", "fed", "feed"), ("visits", "visited", "visit"),
    ("chases", "chased", "chase"), ("greets", "greeted", "greet"), ("washes", "washed", "wash"),
    ("catches", "caught", "catch"), ("builds", "built", "build"), ("sells", "sold", "sell"),
]  # fmt: skip
ADVERB_WORDS = ["quickly", "slowly", "often", "today", "again", "quietly"]

SINGULAR = {"the": "no", "a": "na", "this": "kono", "every": "zen"}  # determiner -> particle
PLURAL = {"the": "no", "some": "iku", "these": "kore", "all": "mina"}
PREPOSITIONS = {"near": "soba", "behind": "ushiro", "in": "naka", "under": "shita",
                "with": "to", "above": "ue", "beside": "yoko"}  # fmt: skip
CONNECTIVES = {"and": "soshite", "because": "kara"}  # "because" swaps its clauses
MARKERS = {"ga", "wo", "tachi", "ta", "nai"}  # case, plural, past and negation markers

_taken = MARKERS | {*SINGULAR.values(), *PLURAL.values(), *PREPOSITIONS.values()}
_taken |= set(CONNECTIVES.values())
NOUNS = _invent(NOUN_WORDS, 101, _taken)
ADJECTIVES = _invent(ADJECTIVE_WORDS, 102, _taken)
VERBS = _invent([base for _, _, base in VERB_FORMS], 103, _taken)  # stems, by base form
ADVERBS = _invent(ADVERB_WORDS, 104, _taken)


@dataclass(frozen=True)
class Noun:
    """A noun phrase: determiner, adjectives, noun (maybe plural), maybe a relative
    clause "that <verb> <noun phrase>" after it."""

    determiner: str
    adjectives: tuple[str, ...]
    noun: str
    plural: bool
    relative: tuple[Verb, Noun] | None = None

    def source(self) -> list[str]:
        words = [
            self.determiner,
            *self.adjectives,
            plural(self.noun) if self.plural else self.noun,
        ]
        if self.relative is not None:
            verb, obj = self.relative
            words += ["that", *verb.source(), *obj.source()]
        return words

    def target(self, start: int) -> list[TargetWord]:
        """[relative clause: object wo verb] noun [tachi] adjectives particle."""
        noun_at = start + 1 + len(self.adjectives)
        words: list[TargetWord] = []
        if self.relative is not None:
            verb, obj = self.relative
            verb_at = noun_at + 2  # after the noun and "that"
            obj_at = verb_at + len(verb.source())
            words += [
                *obj.target(obj_at),
                TargetWord("wo", possible=span(obj_at, len(obj.source()))),
            ]
            words += verb.target(verb_at)
        words.append(TargetWord(NOUNS[self.noun], (noun_at,)))
        if self.plural:
            words.append(TargetWord("tachi", (noun_at,)))  # one-to-many
        words += [
            TargetWord(ADJECTIVES[a], (start + 1 + k,)) for k, a in enumerate(self.adjectives)
        ]
        particles = PLURAL if self.plural else SINGULAR
        words.append(TargetWord(particles[self.determiner], (start,)))
        return words


@dataclass(frozen=True)
class Verb:
    """A verb in the present ("sees"), past ("saw") or negated ("does not see")."""

    index: int  # into VERB_FORMS
    form: str  # "present", "past" or "negative"

    def source(self) -> list[str]:
        present, past, base = VERB_FORMS[self.index]
        return {"present": [present], "past": [past], "negative": ["does", "not", base]}[self.form]

    def target(self, start: int) -> list[TargetWord]:
        stem = VERBS[VERB_FORMS[self.index][2]]
        if self.form == "present":
            return [TargetWord(stem + "ru", (start,))]
        if self.form == "past":
            return [TargetWord(stem, (start,)), TargetWord("ta", (start,))]  # one-to-many
        return [
            TargetWord(stem, (start + 2,)),
            TargetWord("nai", (start, start + 1)),
        ]  # many-to-one


def _verb(rng: random.Random) -> Verb:
    return Verb(
        rng.randrange(len(VERB_FORMS)), rng.choice(["present", "present", "past", "negative"])
    )


def _noun(rng: random.Random, max_adjectives: int, relative: bool = False) -> Noun:
    plural = rng.random() < 0.3
    determiner = rng.choice(sorted(PLURAL if plural else SINGULAR))
    adjectives = tuple(rng.sample(ADJECTIVE_WORDS, rng.randint(0, max_adjectives)))
    clause = (_verb(rng), _noun(rng, 1)) if relative and rng.random() < 0.3 else None
    return Noun(determiner, adjectives, rng.choice(NOUN_WORDS), plural, clause)


def clause_words(rng: random.Random, start: int) -> tuple[list[str], list[TargetWord]]:
    """One clause, its first source word at `start`:

    source: subject verb object [preposition noun]* [adverb]
    target: subject ga [adverb] object wo [noun postposition]* verb
    """
    subject, verb, obj = _noun(rng, 2), _verb(rng), _noun(rng, 2, relative=True)
    adjuncts = [
        (rng.choice(sorted(PREPOSITIONS)), _noun(rng, 1))
        for _ in range(rng.choice([0, 0, 1, 1, 2]))
    ]
    adverb = rng.choice(ADVERB_WORDS) if rng.random() < 0.3 else None
    source = [*subject.source()]
    verb_at = start + len(source)
    source += verb.source()
    obj_at = start + len(source)
    source += obj.source()
    target = [*subject.target(start), TargetWord("ga", possible=span(start, len(subject.source())))]
    tail: list[TargetWord] = []
    for preposition, noun in adjuncts:
        at = start + len(source)
        source += [preposition, *noun.source()]
        tail += [*noun.target(at + 1), TargetWord(PREPOSITIONS[preposition], (at,))]
    if adverb is not None:
        target.append(TargetWord(ADVERBS[adverb], (start + len(source),)))
        source.append(adverb)
    target += [*obj.target(obj_at), TargetWord("wo", possible=span(obj_at, len(obj.source())))]
    target += [*tail, *verb.target(verb_at)]
    return source, target


MAX_CLAUSES = 2


def study_pair(rng: random.Random, max_clauses: int = MAX_CLAUSES) -> AlignedPair:
    """One pair of the study task: 1 to `max_clauses` clauses joined left to right by
    "and" (order kept: "A and B" -> "A soshite B") or "because" (order swapped:
    "A because B" -> "B kara A", where B is everything after "because")."""
    count = rng.randint(1, max_clauses)
    clauses: list[tuple[list[str], list[TargetWord]]] = []
    connectives: list[str] = []
    position = 0
    for number in range(count):
        if number:
            connectives.append(rng.choice(sorted(CONNECTIVES)))
            position += 1
        source, target = clause_words(rng, position)
        clauses.append((source, target))
        position += len(source)
    return AlignedPair.of(*_join(clauses, connectives, 0))


def _join(
    clauses: list[tuple[list[str], list[TargetWord]]], connectives: list[str], start: int
) -> tuple[list[str], list[TargetWord]]:
    """Join clauses[0] with the rest (recursively), the connective's source word sitting
    right after clause 0; `start` is the source position of clause 0."""
    source, target = clauses[0]
    if not connectives:
        return list(source), list(target)
    at = start + len(source)
    rest_source, rest_target = _join(clauses[1:], connectives[1:], at + 1)
    word = TargetWord(CONNECTIVES[connectives[0]], (at,))
    joined = [*source, connectives[0], *rest_source]
    if connectives[0] == "because":
        return joined, [*rest_target, word, *target]
    return joined, [*target, word, *rest_target]
