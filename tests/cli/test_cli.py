"""The CLI: help works, and user mistakes give one line and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import attnmt
from attnmt.cli.main import build_parser, main

STUDY_PRESETS = sorted((Path(attnmt.__file__).parent / "presets" / "study").glob("*.yaml"))


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for command in ("quickstart", "train", "evaluate", "config"):
        assert command in out


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "attnmt.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["train", "missing.yaml"], "config file not found: missing.yaml"),
        (["config", "--set", "model.attention.score=additive"], "model.attention.score"),
        (["config", "--set", "model.bogus=1"], "unknown key 'model.bogus'"),
        (
            ["evaluate", "--model", "no/such/run", "--src", "a", "--ref", "b"],
            "run directory not found",
        ),
    ],
)
def test_user_errors_are_one_line(args: list[str], fragment: str, tmp_path: Path) -> None:
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_train_with_directory_as_config(tmp_path: Path) -> None:
    result = run_cli("train", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "directory" in result.stderr


@pytest.mark.parametrize("preset", STUDY_PRESETS, ids=lambda path: path.stem)
def test_a_study_preset_under_train_says_how_to_run_it(
    preset: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A study preset holds model keys only (attnmt compare gives data, sizes and budget):
    attnmt train refuses it in one line that gives a command which runs it, and leaves
    no run directory behind."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(preset)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    command = lines[0].split("`")[1]  # the command the message gives
    assert command == f"attnmt compare {preset} --out report/"
    words = command.split()[1:]
    args = build_parser(words[0]).parse_args(words)
    assert args.inputs == [str(preset)]
    assert list(tmp_path.iterdir()) == []
