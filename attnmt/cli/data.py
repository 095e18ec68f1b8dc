"""Download a public corpus (Multi30k) for training."""

from __future__ import annotations

import argparse
from pathlib import Path

from attnmt.data.datasets import download_multi30k


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


def run(args: argparse.Namespace) -> int:
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
