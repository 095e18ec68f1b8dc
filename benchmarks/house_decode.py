"""Decoding before and after a refactoring: the same outputs, byte for byte, and the same
speed, measured in one run on one machine by alternating the two versions.

    git worktree add /tmp/old <commit before>; git worktree add /tmp/new <commit after>
    python -m benchmarks.house_decode --old /tmp/old --new /tmp/new --model RUN  # records
    python -m benchmarks.house_decode --old /tmp/old --model RUN --rounds 1 --no-record

Each round runs two child processes, one of the old checkout and one of the new (default:
this checkout, uncommitted changes and all): the old first in odd rounds, the new first in
even ones, since the second process of a pair can run at another speed. Each decodes
Multi30k test_2016_flickr (de, 1,000 sentences; ``--src`` overrides) greedy and beam 5,
batched and one sentence at a time (the first ``--one`` sentences), with one torch
thread, through what both versions share: ``Translator.load`` and
``translate(texts, beam=...)``. Every output (text and score, repr: every bit) must be
the same in every round of both versions; any difference fails the run
(``--score-tolerance``: texts exactly, scores within it, for a change that rounds
differently on purpose). This machine's speed drifts by tens of percent from minute to
minute, so the figure is the median over rounds of each round's new/old ratio, beside the
medians of sentences/s. Nothing else may run meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import common

SOURCE = common.ROOT.parent / "shared/data/multi30k/test_2016_flickr.de.gz"
MODES = [("greedy, batched", 1, False), ("beam 5, batched", 5, False)]
MODES += [("greedy, one at a time", 1, True), ("beam 5, one at a time", 5, True)]


def child(model: str, src: str, one: int, out: str) -> None:
    """In a child process: decode in every mode, print sentences/s, write the outputs."""
    import torch

    import attnmt
    from attnmt import Translator
    from attnmt.data.text import read_lines

    torch.set_num_threads(1)
    sources = list(read_lines(Path(src)))
    translator = Translator.load(model, device="cpu")
    translator.translate(sources[:20], beam=5)  # warm up
    speeds, outputs = {}, {}
    for label, beam, singly in MODES:
        texts = sources[:one] if singly else sources
        start = time.perf_counter()
        if singly:
            results = [translator.translate([text], beam=beam)[0] for text in texts]
        else:
            results = translator.translate(texts, beam=beam)
        speeds[label] = len(texts) / (time.perf_counter() - start)
        outputs[label] = [f"{result.text}\t{result.score!r}" for result in results]
    Path(out).write_text(json.dumps(outputs), encoding="utf-8")
    print(json.dumps({"attnmt": attnmt.__file__, **speeds}))


def same_outputs(outputs: str, reference: str, tolerance: float) -> bool:
    """Two children's outputs agree: identical, or with `tolerance`, the same texts and
    scores within it."""
    if outputs == reference or not tolerance:
        return outputs == reference
    mine, theirs = json.loads(outputs), json.loads(reference)
    for label in theirs:
        for line, other in zip(mine[label], theirs[label], strict=True):
            (text, score), (other_text, other_score) = line.split("\t"), other.split("\t")
            if text != other_text or abs(float(score) - float(other_score)) > tolerance:
                return False
    return True


def run_child(checkout: Path, args: argparse.Namespace, out: Path) -> dict[str, float]:
    # Run as a script, not with -m from this checkout (that would put this checkout's
    # attnmt first on sys.path): attnmt comes from the first PYTHONPATH entry, the
    # checkout measured, and benchmarks/ from this checkout.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(checkout), str(common.ROOT)])
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(out)]
    command += ["--model", args.model, "--src", args.src, "--one", str(args.one)]
    done = subprocess.run(
        command, env=env, cwd=args.work, capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.exit(f"house_decode: the child of {checkout} failed:\n{done.stderr}")
    speeds = dict(json.loads(done.stdout.strip().splitlines()[-1]))
    package = Path(speeds.pop("attnmt")).resolve()
    if not package.is_relative_to(checkout):
        sys.exit(f"house_decode: the child imported {package}, not {checkout}'s")
    return speeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", type=Path, help="checkout of the version before the change")
    parser.add_argument(
        "--new", type=Path, help="checkout of the version after it (default: this one)"
    )
    parser.add_argument("--model", required=True, help="a run directory both versions load")
    parser.add_argument("--src", default=str(SOURCE), help="source text (gz or plain)")
    parser.add_argument("--one", type=int, default=300, help="sentences decoded one at a time")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path("/tmp/house_decode"))
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--note", default="")
    parser.add_argument(
        "--score-tolerance",
        type=float,
        default=0.0,
        help="for a change meant to round differently (a fused kernel): texts must still "
        "match exactly, scores within this absolute difference (default 0: every bit)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.model, args.src, args.one, args.child)
        return
    new = args.new or common.ROOT
    for checkout in (args.old, new):
        if checkout is None or not (checkout / "attnmt").is_dir():
            sys.exit("house_decode: --old and --new must be checkouts with an attnmt/ package")
    args.work.mkdir(parents=True, exist_ok=True)
    speeds: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    reference: tuple[Path, str] | None = None
    for round_ in range(args.rounds):
        order = [("old", args.old.resolve()), ("new", new.resolve())]
        for name, checkout in order if round_ % 2 == 0 else order[::-1]:  # ABBA
            out = args.work / f"{name}{round_}.json"
            speeds[name].append(run_child(checkout, args, out))
            outputs = out.read_text(encoding="utf-8")
            reference = reference or (out, outputs)
            if not same_outputs(outputs, reference[1], args.score_tolerance):
                sys.exit(f"house_decode: {out} differs from {reference[0]}")
        print(f"round {round_ + 1}: old {speeds['old'][-1]}\n         new {speeds['new'][-1]}")
    rows = []
    for label, _, _ in MODES:
        old = [round_[label] for round_ in speeds["old"]]
        new = [round_[label] for round_ in speeds["new"]]
        rows.append(
            (
                f"{label}: sentences/s, old / new (medians)",
                f"{statistics.median(old):,.1f} / {statistics.median(new):,.1f}",
            )
        )
        rows.append(common.ratio_row(f"{label}: new / old", new, old))
    for row in rows:
        print(" | ".join(row))
    if not args.no_record:
        old_commit, new_commit = (_head(args.old), _head(new))
        agreement = (
            f"texts exactly, scores within {args.score_tolerance:g}"
            if args.score_tolerance
            else "text and score, every bit"
        )
        notes = (
            f"{args.note} Old: {old_commit}, new: {new_commit}. Outputs identical in all "
            f"{args.rounds} rounds of both versions ({agreement}). One torch "
            f"thread; batched: all sentences of {Path(args.src).name}; one at a time: the "
            f"first {args.one}."
        ).strip()
        title = f"Decoding before and after a refactoring ({old_commit} -> {new_commit})"
        common.append(title, rows, notes)


def _head(checkout: Path) -> str:
    """The checkout's commit, short."""
    done = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or f"unknown ({done.stderr.strip()[:80]})"


if __name__ == "__main__":
    main()
