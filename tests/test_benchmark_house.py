"""house_decode's comparison of two versions' outputs: every bit, or texts exactly and
scores within a tolerance."""

from __future__ import annotations

import json

from benchmarks.house_decode import same_outputs


def outputs(*lines: str) -> str:
    return json.dumps({"greedy, batched": list(lines)})


def test_every_bit_unless_a_tolerance_is_given() -> None:
    a, b = outputs("a dog\t-1.0000001"), outputs("a dog\t-1.0")
    assert same_outputs(a, a, 0.0)
    assert not same_outputs(a, b, 0.0)
    assert same_outputs(a, b, 1e-5)


def test_texts_must_match_whatever_the_tolerance() -> None:
    assert not same_outputs(outputs("a dog\t-1.0"), outputs("a cat\t-1.0"), 1.0)


def test_scores_beyond_the_tolerance_differ() -> None:
    assert not same_outputs(outputs("a dog\t-1.1"), outputs("a dog\t-1.0"), 1e-3)
