"""Fetch or prepare a corpus for training: Multi30k (downloaded) or chitchat (packaged)."""

from __future__ import annotations

import argparse
from pathlib import Path

from attnmt.data.datasets import download_multi30k

CHITCHAT_CONTEXT = 1  # turns before the message; the chitchat presets' data.context_turns


def add_arguments(parser: argparse.ArgumentParser) -> None:
    corpora = parser.add_subparsers(dest="corpus", metavar="CORPUS", required=True)
    multi30k = corpora.add_parser(
        "multi30k",
        help="Multi30k task 1: train/val/test_2016_flickr in de, en, fr, cs",
        description="Fetch the Multi30k task-1 raw .gz files (Elliott et al. 2016).",
    )
    multi30k.add_argument(
        "--from",
        dest="source",
        metavar="DIR_OR_URL",
        help="a local directory holding the files, or a base URL (default: the official "
        "multi30k/dataset repository on GitHub)",
    )
    multi30k.add_argument(
        "--dest", default="data/multi30k", help="where to put the files (default: %(default)s)"
    )
    chitchat = corpora.add_parser(
        "chitchat",
        help="Chit-Chat Challenge dialogues as context -> reply pairs (needs attnmt[chat])",
        description="Write context -> reply pairs from the Chit-Chat Challenge corpus "
        "(about 7,168 English conversations, packaged in chitchat-dataset: nothing is "
        "downloaded). Splits go by conversation, from --seed. Files: {train,dev,test}.src "
        "(context ||| message), .tgt (the reply), .ids (each pair's conversation), the "
        "backward pairs backward/{train,dev,test}.src (the reply) and .tgt (the message "
        "alone) for configs/chitchat_backward.yaml, and manifest.json.",
    )
    chitchat.add_argument(
        "--context",
        type=int,
        default=CHITCHAT_CONTEXT,
        metavar="N",
        help="turns before the message in each source, joined by ' ||| ' as `attnmt chat "
        "--context N` does; 0 gives single-turn pairs (default: %(default)s, as the presets)",
    )
    chitchat.add_argument(
        "--out", default="data/chitchat", help="where to write (default: %(default)s)"
    )
    chitchat.add_argument(
        "--seed", type=int, default=1, help="seed of the split (default: %(default)s)"
    )
    chitchat.add_argument(
        "--held-out",
        type=int,
        default=200,
        metavar="N",
        help="conversations each for dev and test (default: %(default)s)",
    )
    chitchat.add_argument(
        "--max-words",
        type=int,
        default=50,
        metavar="N",
        help="a turn with more words is overlong: no pair uses it (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    if args.corpus == "chitchat":
        return _chitchat(args)
    paths = download_multi30k(Path(args.dest), args.source)
    for path in paths:
        print(path)
    dest = Path(args.dest)
    print(
        f"{len(paths)} files in {dest}; e.g. German-English: "
        f"--set data.train.src={dest}/train.de.gz --set data.train.tgt={dest}/train.en.gz "
        f"--set data.dev.src={dest}/val.de.gz --set data.dev.tgt={dest}/val.en.gz"
    )
    return 0


def _chitchat(args: argparse.Namespace) -> int:
    from attnmt.data.chitchat import BACKWARD, write_dialogue_data

    out = Path(args.out)
    stats = write_dialogue_data(
        out,
        context=args.context,
        seed=args.seed,
        held_out=args.held_out,
        max_words=args.max_words,
    )
    pairs = ", ".join(f"{name} {count:,}" for name, count in stats.pairs.items())
    print(f"{stats.conversations:,} conversations, {stats.turns:,} turns -> pairs: {pairs}")
    print(
        f"skipped: {stats.empty_turns} empty turns; {stats.long_turns} turns over "
        f"{args.max_words} words ({stats.dropped_long:,} pairs dropped)"
    )
    print(
        f"wrote {out}/{{train,dev,test}}.{{src,tgt,ids}}, the backward pairs (reply -> "
        f"message) in {out}/{BACKWARD}/ and {out}/manifest.json"
    )
    if args.context != CHITCHAT_CONTEXT or str(out) != "data/chitchat":
        print(
            f"train with: --set data.context_turns={args.context} "
            f"--set data.train.src={out}/train.src --set data.train.tgt={out}/train.tgt "
            f"(and dev, test likewise)"
        )
    return 0
