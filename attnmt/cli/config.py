"""Show the resolved config, or the documented list of every key and its default."""

from __future__ import annotations

import argparse
import sys

import yaml

from attnmt.config import field_docs, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="YAML file of overrides")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one key"
    )
    parser.add_argument(
        "--keys", action="store_true", help="list every key with its default and meaning"
    )


def run(args: argparse.Namespace) -> int:
    if args.keys:
        for key, default, doc in field_docs():
            print(f"{key} = {default!r}\n    {doc}")
        return 0
    config = load_config(args.config, args.set)
    yaml.safe_dump(config.to_dict(), sys.stdout, sort_keys=False)
    return 0
