"""The reference pages docs/config.md and docs/cli.md, generated from the code so that
they cannot drift from it: every config key, with its type, default and description, from
the config models (:mod:`attnmt.config.sections`), and every command and option from the
argparse parsers of :mod:`attnmt.cli`.

    python -m attnmt.cli.reference            rewrite docs/config.md and docs/cli.md
    python -m attnmt.cli.reference --check    exit 1, naming them, if either differs

tests/cli/test_reference.py fails when a committed page differs from what this writes.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel

from attnmt.cli.main import COMMANDS, build_parser
from attnmt.config import Config, KeyDoc, config_keys
from attnmt.files import write_text_atomic

WIDTH = 100  # columns of the usage lines, whatever the terminal
ROLE = re.compile(r":\w+:(`[^`]+`)")  # a Sphinx role, e.g. :func:`decode_options`


def _generated(source: str) -> str:
    return (
        f"<!-- Generated from {source} by `python -m attnmt.cli.reference`: do not edit. "
        "tests/cli/test_reference.py fails when this page and the code differ. -->\n"
    )


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, pipes escaped, Sphinx roles plain."""
    return ROLE.sub(r"\1", " ".join(text.split())).replace("|", "\\|")


# ---------------------------------------------------------------------------
# docs/config.md


def _type(annotation: Any) -> str:
    """E.g. ``int``, ``float or null``, ``one of `dot`, `general` ``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        kinds = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        text = " or ".join(_type(kind) for kind in kinds)
        return f"{text} or null" if len(kinds) < len(typing.get_args(annotation)) else text
    return getattr(annotation, "__name__", str(annotation))


def _bounds(row: KeyDoc) -> str:
    """The field's constraints: ``≥ 1``, ``in [0, 1)``, ``> 0``."""
    low = high = ""
    for item in row.field.metadata:
        if isinstance(item, annotated_types.Ge):
            low = f"[{item.ge}"
        elif isinstance(item, annotated_types.Gt):
            low = f"({item.gt}"
        elif isinstance(item, annotated_types.Le):
            high = f"{item.le}]"
        elif isinstance(item, annotated_types.Lt):
            high = f"{item.lt})"
    if low and high:
        return f"in {low}, {high}"
    if low:
        return ("≥ " if low[0] == "[" else "> ") + low[1:]
    if high:
        return ("≤ " if high[-1] == "]" else "< ") + high[:-1]
    return ""


def _value(value: Any) -> str:
    """A default as YAML writes it."""
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def _section_intro(cls: type[BaseModel]) -> str:
    """The section's class docstring (Sphinx roles made plain), or nothing."""
    return ROLE.sub(r"\1", inspect.cleandoc(cls.__doc__)) if cls.__doc__ else ""


def config_page() -> str:
    """docs/config.md: every config key, grouped by section."""
    rows = config_keys()
    hints = typing.get_type_hints(Config)
    sections = [name for name in Config.model_fields if isinstance(hints[name], type)]
    sections = [name for name in sections if issubclass(hints[name], BaseModel)]
    lines = [
        _generated("the config models in attnmt/config/sections.py"),
        "# Configuration reference",
        "",
        "Every key of a run's config, with its type, default and meaning. The defaults live "
        "in one place, the config classes; a YAML file holds only the keys it changes, and "
        "`--set key=value` changes one more (`attnmt train CONFIG --set model.rnn=lstm`). "
        "An unknown key or a wrong type stops with one line that names the key. "
        "`attnmt config CONFIG` prints the resolved config, and `attnmt config --keys` "
        "this list. Every run saves its resolved config as `config.yaml` in its run "
        "directory.",
        "",
        "Sections: "
        + ", ".join(f"[`{name}`](#{name})" for name in ["top level", *sections]).replace(
            "(#top level)", "(#top-level)"
        ),
        "",
    ]
    groups: list[tuple[str, list[KeyDoc]]] = [
        ("top level", [row for row in rows if "." not in row.key])
    ]
    groups += [(name, [row for row in rows if row.key.startswith(name + ".")]) for name in sections]
    for name, members in groups:
        lines += [f"## {name.capitalize() if name == 'top level' else name}", ""]
        if name != "top level":
            intro = _section_intro(hints[name])
            if intro:
                lines += [intro, ""]
        lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        for row in members:
            kind = _type(row.annotation)
            bounds = _bounds(row)
            kind = f"{kind}, {bounds}" if bounds else kind
            lines.append(
                f"| `{row.key}` | {_cell(kind)} | {_cell(_value(row.default))} | {_cell(row.doc)} |"
            )
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# docs/cli.md


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _usage(parser: argparse.ArgumentParser) -> str:
    """Usage and description as ``--help`` prints them, `WIDTH` columns wide."""
    # argparse's stubs type formatter_class without `width`; every HelpFormatter takes it.
    formatter = parser.formatter_class(prog=parser.prog, width=WIDTH)  # type: ignore[call-arg]
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    formatter.add_text(parser.description)
    return formatter.format_help().strip()


def _argument(action: argparse.Action) -> str:
    """How the argument is written: ``--beam K``, ``config``, ``runs [runs ...]``."""
    if action.option_strings and action.nargs == 0:
        return ", ".join(action.option_strings)
    if action.metavar is not None:
        metavar = str(action.metavar)
    elif action.choices is not None:
        metavar = "{" + ",".join(map(str, action.choices)) + "}"
    else:
        metavar = action.dest.upper() if action.option_strings else action.dest
    value = {"+": f"{metavar} [{metavar} ...]", "*": f"[{metavar} ...]", "?": f"[{metavar}]"}
    written = value.get(str(action.nargs), metavar)
    return f"{', '.join(action.option_strings)} {written}" if action.option_strings else written


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help text with %(default)s and the like filled in, as argparse does."""
    params = {key: value for key, value in vars(action).items() if value is not argparse.SUPPRESS}
    params["prog"] = parser.prog
    if params.get("choices") is not None:
        params["choices"] = ", ".join(map(str, params["choices"]))
    text = (action.help or "") % params
    if action.choices is not None and action.metavar is not None:
        text += " (one of: " + ", ".join(map(str, action.choices)) + ")"
    return text


def _default(action: argparse.Action) -> str:
    if action.required and action.option_strings:
        return "required"
    if action.option_strings and action.nargs == 0:
        return ""  # a flag
    if action.default in (None, argparse.SUPPRESS) or action.default == []:
        return ""
    return f"`{action.default}`"


def _command_section(parser: argparse.ArgumentParser, summary: str, depth: int) -> Iterator[str]:
    yield f"{'#' * depth} `{parser.prog}`"
    yield ""
    yield summary
    yield ""
    yield "```text"
    yield _usage(parser)
    yield "```"
    yield ""
    arguments = [
        action
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        and action.help is not argparse.SUPPRESS
    ]
    if arguments:
        yield "| argument | default | meaning |"
        yield "| --- | --- | --- |"
        for action in arguments:
            written, default = _cell(_argument(action)), _cell(_default(action))
            yield f"| `{written}` | {default} | {_cell(_help(parser, action))} |"
        yield ""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, child in action.choices.items():
                yield from _command_section(child, helps.get(name, ""), depth + 1)


def cli_page() -> str:
    """docs/cli.md: every command, its usage, description and arguments."""
    lines = [
        _generated("the argparse parsers of attnmt/cli/"),
        "# Command-line reference",
        "",
        "Every `attnmt` command and its arguments; `attnmt COMMAND --help` prints the same. "
        "A mistake (a missing file, a bad option, an unknown config key) stops with one line "
        "on stderr and exit status 2; Ctrl-C stops with 130.",
        "",
        "| command | what it does |",
        "| --- | --- |",
    ]
    commands = [name for name in COMMANDS if name in _subcommands(build_parser())]
    lines += [f"| [`attnmt {name}`](#attnmt-{name}) | {COMMANDS[name]} |" for name in commands]
    lines.append("")
    for name in commands:
        parser = _subcommands(build_parser(name))[name]
        lines += list(_command_section(parser, COMMANDS[name], 2))
    return "\n".join(lines)


PAGES: dict[str, Callable[[], str]] = {"config.md": config_page, "cli.md": cli_page}


def stale_pages(docs: Path) -> list[Path]:
    """The pages under `docs` whose text differs from what the code generates."""
    stale = []
    for name, page in PAGES.items():
        path = docs / name
        if not path.is_file() or path.read_text(encoding="utf-8") != page():
            stale.append(path)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attnmt.cli.reference", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--docs", default="docs", type=Path, help="the docs folder")
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_pages(args.docs)
        for path in stale:
            print(f"{path} differs from the code: run python -m attnmt.cli.reference")
        return 1 if stale else 0
    for name, page in PAGES.items():
        write_text_atomic(args.docs / name, page())
        print(f"wrote {args.docs / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
