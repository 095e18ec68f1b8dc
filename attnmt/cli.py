"""The `attnmt` command: one subcommand per module in attnmt.commands.

User mistakes (:class:`attnmt.errors.UserError`) become one line on stderr and exit
status 2; Ctrl-C exits with 130. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from attnmt import __version__
from attnmt.errors import UserError

# Subcommand name -> module in attnmt.commands defining `add_arguments(parser)` and
# `run(args) -> int`, and a one-line module docstring used as the help text.
COMMANDS = {
    "quickstart": "quickstart",
    "train": "train",
    "evaluate": "evaluate",
    "data": "data",
    "config": "config",
    "plot": "plot",
    "compare": "compare",
    "translate": "translate",
    "chat": "chat",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attnmt",
        description="Sequence-to-sequence models with attention: train, translate, study.",
    )
    parser.add_argument("--version", action="version", version=f"attnmt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"attnmt.commands.{module_name}")
        summary = (module.__doc__ or "").strip().splitlines()[0]
        command = sub.add_parser(name, help=summary, description=module.__doc__)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.handler(args) or 0)
    except UserError as err:
        print(f"attnmt {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"attnmt {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `attnmt translate ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
