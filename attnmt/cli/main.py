"""The `attnmt` command: one subcommand per module in :mod:`attnmt.cli`.

Only the module of the subcommand being run is imported, so ``attnmt translate`` never
loads matplotlib and ``attnmt --help`` loads no model code at all.

User mistakes (:class:`attnmt.errors.UserError`) become one line on stderr and exit
status 2; Ctrl-C exits with 130. Everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from attnmt import __version__
from attnmt.errors import UserError

# Subcommand -> one-line help. Each names a module attnmt.cli.<name> (dashes become
# underscores) defining `add_arguments(parser)` and `run(args) -> int`.
COMMANDS = {
    "quickstart": "Train a small attention model on a built-in synthetic language pair.",
    "train": "Train a model from a YAML config, or resume an interrupted run.",
    "evaluate": "Score a trained model on a test set: BLEU, chrF and perplexity.",
    "translate": "Translate text with a trained model: stdin, files or a prompt.",
    "chat": "Talk to a dialogue model, with optional context.",
    "average": "Average the last checkpoints of a run into one model.",
    "export": "Export a run for deployment: an int8 checkpoint or ONNX graphs.",
    "serve": "Serve models over HTTP, with an interactive attention page.",
    "data": "Fetch or prepare a corpus (Multi30k, chitchat).",
    "config": "Show the resolved config, or every key with its default.",
    "shapes": "Print the tensor shapes of an RNN encoder-decoder on a real batch.",
    "plot": "Draw a model's attention or beam search tree for a sentence, or learning curves.",
    "compare": "Train or load several runs, evaluate them and write an HTML report.",
}


def _module_name(command: str) -> str:
    return "attnmt.cli." + command.replace("-", "_")


def _available() -> dict[str, str]:
    """The commands whose module exists in this installation."""
    found = {}
    for name, summary in COMMANDS.items():
        if importlib.util.find_spec(_module_name(name)) is not None:
            found[name] = summary
    return found


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="attnmt",
        description="Sequence-to-sequence models with attention: train, translate, study.",
    )
    parser.add_argument("--version", action="version", version=f"attnmt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in _available().items():
        if name != command:
            sub.add_parser(name, help=summary, description=summary, add_help=False)
            continue
        module = importlib.import_module(_module_name(name))
        description = module.__doc__ or summary
        child = sub.add_parser(name, help=summary, description=description)
        module.add_arguments(child)
        child.set_defaults(handler=module.run)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named in argv: the first word that is not an option."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    try:
        parser = build_parser(command)
    except UserError as err:  # e.g. a command whose optional extra is not installed
        print(f"attnmt {command}: error: {err}", file=sys.stderr)
        return 2
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
