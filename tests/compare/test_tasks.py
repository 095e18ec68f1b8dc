"""The study task: its harder grammar, gold alignments by construction, files written
once and deterministic from the seed."""

from __future__ import annotations

import json
import random
from pathlib import Path

from attnmt.compare.tasks import STUDY_TASK_VERSION, synthetic_task, write_study_task
from attnmt.data.alignment import read_pharaoh
from attnmt.data.study_grammar import (
    ADJECTIVES,
    ADVERBS,
    CONNECTIVES,
    NOUNS,
    VERB_FORMS,
    VERBS,
    plural,
    study_pair,
)
from attnmt.data.synthetic import generate

NOUN_FORMS = {**{n: n for n in NOUNS}, **{plural(n): n for n in NOUNS}}
VERB_STEM = {form: VERBS[forms[2]] for forms in VERB_FORMS for form in forms}  # -> stem


def made_from(source_word: str) -> set[str]:
    """The content words the grammar makes from one source word."""
    if source_word in NOUN_FORMS:
        return {NOUNS[NOUN_FORMS[source_word]]}
    if source_word in ADJECTIVES:
        return {ADJECTIVES[source_word]}
    if source_word in ADVERBS:
        return {ADVERBS[source_word]}
    if source_word in VERB_STEM:
        stem = VERB_STEM[source_word]
        return {stem, stem + "ru"}
    return set()


def test_every_content_word_is_aligned_to_the_word_it_was_made_from() -> None:
    rng = random.Random(0)
    content = {*NOUNS.values(), *ADJECTIVES.values(), *ADVERBS.values()}
    content |= {*VERBS.values(), *(stem + "ru" for stem in VERBS.values())}
    for _ in range(500):
        pair = study_pair(rng)
        src, tgt = pair.source.split(), pair.target.split()
        for j, word in enumerate(tgt):
            sure = [i for i, jj in pair.alignment.sure if jj == j]
            if word in content:
                assert len(sure) == 1, (pair.source, word)
                assert word in made_from(src[sure[0]]), (pair.source, word, src[sure[0]])
            for i in sure:
                assert i < len(src)
        for i, j in pair.alignment.possible:
            assert i < len(src) and j < len(tgt)
        # every source content word gives exactly one content word
        for i, word in enumerate(src):
            if made_from(word):
                targets = [tgt[j] for ii, j in pair.alignment.sure if ii == i]
                assert len([t for t in targets if t in content]) == 1


def test_one_to_many_many_to_one_and_particles_follow_the_convention() -> None:
    rng = random.Random(1)
    seen = set()
    for _ in range(500):
        pair = study_pair(rng)
        src, tgt = pair.source.split(), pair.target.split()
        sure, possible = pair.alignment.sure, pair.alignment.possible
        for j, word in enumerate(tgt):
            links = sorted(src[i] for i, jj in sure if jj == j)
            if word in ("tachi", "ta"):  # plural and past: a second word from one source word
                seen.add(word)
                assert len(links) == 1 and (word == "ta" or links[0] in NOUN_FORMS)
            if word == "nai":  # many-to-one: "does not" -> "nai"
                seen.add(word)
                assert links == ["does", "not"]
            if word in ("ga", "wo"):  # made from nothing: possible links only
                seen.add(word)
                assert not links and any(jj == j for _, jj in possible)
            if word in CONNECTIVES.values():
                assert [src[i] for i, jj in sure if jj == j][0] in CONNECTIVES
        assert sure <= possible
    assert seen == {"tachi", "ta", "nai", "ga", "wo"}


def test_because_swaps_the_clauses() -> None:
    """ "A because B" -> "B kara A": the first source word is translated after "kara"."""
    rng = random.Random(2)
    swapped = 0
    for _ in range(300):
        pair = study_pair(rng)
        src = pair.source.split()
        if src.count("because") == 1 and "and" not in src:
            kara = pair.target.split().index("kara")
            first = {j for i, j in pair.alignment.sure if i == 0}  # the determiner's particle
            assert min(first) > kara
            swapped += 1
    assert swapped > 10


def test_the_study_task_is_deterministic_from_its_seed(tmp_path: Path) -> None:
    assert generate(40, seed=3, make_pair=study_pair) == generate(40, seed=3, make_pair=study_pair)
    assert generate(40, seed=3, make_pair=study_pair) != generate(40, seed=4, make_pair=study_pair)
    first = write_study_task(tmp_path / "a", train=60, dev=5, test=10, seed=3)
    second = write_study_task(tmp_path / "b", train=60, dev=5, test=10, seed=3)
    for name in first:
        for side in ("src", "tgt"):
            a, b = Path(str(getattr(first[name], side))), Path(str(getattr(second[name], side)))
            assert a.read_bytes() == b.read_bytes()
        assert (tmp_path / "a" / f"{name}.align").read_bytes() == (
            tmp_path / "b" / f"{name}.align"
        ).read_bytes()


def test_study_task_files_are_written_once_with_alignments(tmp_path: Path) -> None:
    paths = write_study_task(tmp_path, train=50, dev=5, test=8, seed=3)
    train_src = Path(str(paths["train"].src))
    stamp = train_src.stat().st_mtime_ns
    write_study_task(tmp_path, train=50, dev=5, test=8, seed=3)
    assert train_src.stat().st_mtime_ns == stamp
    meta = json.loads((tmp_path / "task.json").read_text(encoding="utf-8"))
    assert meta["version"] == STUDY_TASK_VERSION
    sources = {
        name: Path(str(split.src)).read_text(encoding="utf-8").splitlines()
        for name, split in paths.items()
    }
    assert not set(sources["train"]) & set(sources["test"] + sources["dev"])
    gold = read_pharaoh(tmp_path / "test.align")
    targets = Path(str(paths["test"].tgt)).read_text(encoding="utf-8").splitlines()
    assert len(gold) == len(targets) == 8
    for alignment, source, target in zip(gold, sources["test"], targets, strict=True):
        assert max(i for i, _ in alignment.possible) < len(source.split())
        assert {j for _, j in alignment.possible} == set(range(len(target.split())))


def test_synthetic_task_names_its_test_alignment(tmp_path: Path) -> None:
    task = synthetic_task(tmp_path, train=30, dev=3, test=4)
    assert task.test_alignment is not None and task.test_alignment.is_file()
    assert len(read_pharaoh(task.test_alignment)) == 4
