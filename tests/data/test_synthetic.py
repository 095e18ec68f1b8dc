"""The synthetic quickstart task: deterministic, disjoint splits, real reordering."""

from __future__ import annotations

import random
from pathlib import Path

from attnmt.data.alignment import read_pharaoh
from attnmt.data.synthetic import (
    ADJECTIVES,
    DETERMINERS,
    NOUNS,
    PREPOSITIONS,
    VERBS,
    aligned_pair,
    generate,
    sentence_pair,
    write_task,
)


def test_generation_is_deterministic_and_distinct() -> None:
    assert generate(50, seed=3) == generate(50, seed=3)
    assert generate(50, seed=3) != generate(50, seed=4)
    sources = [pair.source for pair in generate(500, seed=3)]
    assert len(set(sources)) == 500


def test_verb_moves_to_the_end_and_words_translate() -> None:
    rng = random.Random(0)
    for _ in range(200):
        source, target = sentence_pair(rng)
        src_words, tgt_words = source.split(), target.split()
        verbs = [w for w in src_words if w in VERBS]
        assert len(verbs) == 1
        assert tgt_words[-1] == VERBS[verbs[0]]  # SOV: the verb comes last
        nouns = [NOUNS[w] for w in src_words if w in NOUNS]
        assert sorted(nouns) == sorted(w for w in tgt_words if w in NOUNS.values())


def test_alignment_is_not_monotonic() -> None:
    """Most sentences need reordering: the target's noun order or verb position changes."""
    rng = random.Random(1)
    reordered = 0
    for _ in range(200):
        source, target = sentence_pair(rng)
        src_words = source.split()
        verb_position = next(i for i, w in enumerate(src_words) if w in VERBS)
        reordered += verb_position < len(src_words) - 1
    assert reordered == 200  # an object always follows the source verb


def test_write_task_splits_are_disjoint(tmp_path: Path) -> None:
    paths = write_task(tmp_path, train=300, dev=40, test=40, seed=5)
    lines = {name: p[0].read_text().splitlines() for name, p in paths.items()}
    assert len(lines["train"]) == 300 and len(lines["dev"]) == 40 and len(lines["test"]) == 40
    assert not set(lines["train"]) & set(lines["dev"])
    assert not set(lines["train"]) & set(lines["test"])
    assert not set(lines["dev"]) & set(lines["test"])
    for src, tgt in paths.values():
        assert len(src.read_text().splitlines()) == len(tgt.read_text().splitlines())


def test_gold_alignment_links_every_word_to_the_word_it_was_made_from() -> None:
    """By construction, on many pairs: each target word made from a source word has one
    sure link, to that word; "ga" and "wo" have possible links only (to their phrase)."""
    lexicon = {**NOUNS, **ADJECTIVES, **VERBS, **PREPOSITIONS, **DETERMINERS}
    rng = random.Random(2)
    for _ in range(500):
        pair = aligned_pair(rng)
        src, tgt = pair.source.split(), pair.target.split()
        for j, word in enumerate(tgt):
            sure = [i for i, jj in pair.alignment.sure if jj == j]
            possible = sorted(i for i, jj in pair.alignment.possible if jj == j)
            if word in ("ga", "wo"):
                assert not sure and possible == list(range(min(possible), max(possible) + 1))
            else:
                assert len(sure) == 1 and lexicon[src[sure[0]]] == word
        assert sorted(i for i, _ in pair.alignment.sure) == list(range(len(src)))


def test_aligned_pairs_are_the_sentence_pairs() -> None:
    """Adding alignments changed no sentence: same random stream, same text."""
    a, b = random.Random(4), random.Random(4)
    for _ in range(100):
        pair = aligned_pair(a)
        assert (pair.source, pair.target) == sentence_pair(b)


def test_write_task_writes_one_alignment_line_per_pair(tmp_path: Path) -> None:
    paths = write_task(tmp_path, train=30, dev=4, test=5, seed=5)
    for name, (src, tgt) in paths.items():
        gold = read_pharaoh(tmp_path / f"{name}.align")
        sources, targets = src.read_text().splitlines(), tgt.read_text().splitlines()
        assert len(gold) == len(sources) == len(targets)
        for alignment, source, target in zip(gold, sources, targets, strict=True):
            assert {i for i, _ in alignment.sure} == set(range(len(source.split())))
            assert {j for _, j in alignment.possible} == set(range(len(target.split())))
