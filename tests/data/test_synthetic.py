"""The synthetic quickstart task: deterministic, disjoint splits, real reordering."""

from __future__ import annotations

import random
from pathlib import Path

from attnmt.data.synthetic import NOUNS, VERBS, generate, sentence_pair, write_task


def test_generation_is_deterministic_and_distinct() -> None:
    assert generate(50, seed=3) == generate(50, seed=3)
    assert generate(50, seed=3) != generate(50, seed=4)
    sources = [s for s, _ in generate(500, seed=3)]
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
