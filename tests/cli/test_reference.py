"""docs/config.md and docs/cli.md are generated from the code (attnmt.cli.reference): the
committed pages are what the code generates now, and they hold every config key and
every option of every command."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from attnmt.cli.main import COMMANDS, build_parser
from attnmt.cli.reference import cli_page, config_page, main, stale_pages
from attnmt.config import config_keys

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_committed_pages_are_what_the_code_generates() -> None:
    stale = [str(path) for path in stale_pages(DOCS)]
    assert stale == [], "regenerate them: python -m attnmt.cli.reference"


def test_every_config_key_is_documented_with_its_default() -> None:
    page = config_page()
    for row in config_keys():
        line = next((line for line in page.splitlines() if line.startswith(f"| `{row.key}` |")), "")
        assert line, row.key
        assert row.doc and " ".join(row.doc.split())[:40].replace("|", "\\|") in line, row.key


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from parsers(child)


def test_every_command_and_option_is_documented() -> None:
    page = cli_page()
    for name in COMMANDS:
        command = build_parser(name)
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                for parser in parsers(action.choices[name]):
                    assert f"`{parser.prog}`" in page
                    for option in (o for a in parser._actions for o in a.option_strings):
                        if option not in ("-h", "--help"):
                            assert option in page, f"{parser.prog} {option}"


def test_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--docs", str(tmp_path), "--check"]) == 1  # no pages yet
    assert main(["--docs", str(tmp_path)]) == 0
    assert main(["--docs", str(tmp_path), "--check"]) == 0
    page = tmp_path / "config.md"
    page.write_text(page.read_text().replace("`runs/default`", "`runs/elsewhere`"))
    capsys.readouterr()
    assert main(["--docs", str(tmp_path), "--check"]) == 1
    assert "config.md differs" in capsys.readouterr().out
