"""docs/tutorial.md and docs/tutorial.ko.md stay true: every command parses with the real
CLI, every config key and code reference exists, every picture and printout exists and
is shown, the two languages have the same chapters, commands, code and pictures, quoted
results are quoted verbatim, and the commands of chapters 1-9 (and 12's, on the same
runs) run with tiny budgets."""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from attnmt.cli import quickstart
from attnmt.cli.main import build_parser, main
from attnmt.config import field_docs
from attnmt.data.synthetic import write_task

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PICTURES = DOCS / "tutorial"
LANGUAGES = {"en": DOCS / "tutorial.md", "ko": DOCS / "tutorial.ko.md"}
QUOTED = ("10_multi30k.txt", "11_chat.txt")  # lines quoted from committed results
QUOTE_SOURCES = [
    ROOT / "BENCHMARKS.md",
    DOCS / "chat_transcript.md",
    DOCS / "study" / "README.md",
    DOCS / "study-multi30k" / "README.md",
]
SECTIONS = ("model", "data", "train", "decode", "rerank")
MAX_BYTES = 2_000_000  # docs/tutorial/ in all
FAST_CHAPTERS = set(range(1, 10)) | {12}  # commands on the synthetic task
MAX_STEPS = 400  # a fast chapter's training budget: well under two minutes on 2 idle cores


@dataclass
class Tutorial:
    """What a tutorial file holds, chapter by chapter."""

    chapters: list[str] = field(default_factory=list)  # "1", "2", ... in order
    commands: list[tuple[int, str]] = field(default_factory=list)  # bash lines
    python: list[tuple[int, str]] = field(default_factory=list)  # python blocks
    outputs: list[tuple[int, str]] = field(default_factory=list)  # ```output blocks
    links: list[tuple[int, str]] = field(default_factory=list)  # files under tutorial/
    prose: str = ""  # everything outside code blocks


def read_tutorial(path: Path) -> Tutorial:
    tutorial = Tutorial()
    chapter, fence, block = 0, None, []  # type: ignore[var-annotated]
    prose = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if fence is None and (heading := re.match(r"^## (\d+)\. ", line)):
            chapter = int(heading.group(1))
            tutorial.chapters.append(heading.group(1))
        if line.startswith("```"):
            if fence is None:
                fence, block = line[3:].strip(), []
                continue
            text = "\n".join(block)
            if fence == "bash":
                joined = text.replace("\\\n", " ")
                tutorial.commands += [(chapter, c.strip()) for c in joined.splitlines() if c]
            elif fence == "python":
                tutorial.python.append((chapter, text))
            elif fence == "output":
                tutorial.outputs.append((chapter, text))
            fence = None
            continue
        if fence is not None:
            block.append(line)
            continue
        prose.append(line)
        tutorial.links += [(chapter, name) for name in re.findall(r"\]\(tutorial/([^)]+)\)", line)]
    assert fence is None, f"{path.name}: a code block is not closed"
    tutorial.prose = "\n".join(prose)
    return tutorial


TUTORIALS = {name: read_tutorial(path) for name, path in LANGUAGES.items()}


def attnmt_argvs(command: str) -> list[list[str]]:
    """The argv of each `attnmt ...` stage of a shell line (`echo ... | attnmt ...`)."""
    stages = [shlex.split(stage) for stage in command.split(" | ")]
    return [words[1:] for words in stages if words and words[0] == "attnmt"]


def test_both_languages_have_the_same_chapters_commands_code_and_pictures() -> None:
    english, korean = TUTORIALS["en"], TUTORIALS["ko"]
    assert english.chapters == [str(n) for n in range(1, 13)]
    assert korean.chapters == english.chapters
    assert korean.commands == english.commands
    assert korean.python == english.python
    assert korean.outputs == english.outputs
    assert [name for name in korean.links if name[1].endswith(".png")] == [
        name for name in english.links if name[1].endswith(".png")
    ]
    assert sorted(set(korean.links)) == sorted(set(english.links))


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_command_parses_with_the_real_cli(language: str) -> None:
    tutorial = TUTORIALS[language]
    inline = re.findall(r"`(attnmt [^`]* --[^`]*)`", tutorial.prose)  # with options
    commands = tutorial.commands + [(0, command) for command in inline]
    assert len(commands) >= 20 and inline
    for chapter, command in commands:
        argvs = attnmt_argvs(command)
        assert argvs, f"chapter {chapter}: not an attnmt command: {command}"
        for argv in argvs:
            parser = build_parser(argv[0])
            stderr = io.StringIO()
            try:
                with contextlib.redirect_stderr(stderr):
                    parser.parse_args(argv)
            except SystemExit:
                pytest.fail(f"chapter {chapter}: {command}\n{stderr.getvalue()}")


def known_keys() -> set[str]:
    keys = {key for key, _, _ in field_docs()}
    return keys | {key.rsplit(".", 1)[0] for key in keys}  # sections too


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_config_key_exists(language: str) -> None:
    tutorial = TUTORIALS[language]
    named = re.findall(rf"`((?:{'|'.join(SECTIONS)})\.[a-z_.]*[a-z_])", tutorial.prose)
    for _, command in tutorial.commands:
        named += re.findall(r"--set ([a-z_.]+)=", command)
    assert len(named) > 20
    assert set(named) <= known_keys(), set(named) - known_keys()


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_every_code_reference_exists(language: str) -> None:
    """`attnmt/x/y.py: Name.attr` names a file, and the name is defined in it."""
    references = re.findall(r"`(attnmt/[\w/]+\.py)(?::\s+([\w.]+))?`", TUTORIALS[language].prose)
    assert len(references) > 30
    for path, name in references:
        assert (ROOT / path).is_file(), path
        if not name:
            continue
        thing: object = importlib.import_module(path[:-3].replace("/", "."))
        for part in name.split("."):
            assert hasattr(thing, part), f"{path}: {name}"
            thing = getattr(thing, part)


def test_every_picture_and_printout_exists_and_is_shown() -> None:
    linked = {name for _, name in TUTORIALS["en"].links}
    on_disk = {path.name for path in PICTURES.iterdir()}
    assert linked == on_disk
    assert sum(path.stat().st_size for path in PICTURES.iterdir()) < MAX_BYTES
    for name in on_disk:
        content = (PICTURES / name).read_bytes()
        assert content, name
        if name.endswith(".png"):
            assert content.startswith(b"\x89PNG\r\n\x1a\n"), name
    pictures = [name for name in linked if name.endswith(".png")]
    assert len(pictures) >= 7


def test_excerpts_come_from_the_printouts() -> None:
    """Each ```output block is lines of a printout its chapter links."""
    tutorial = TUTORIALS["en"]
    for chapter, text in tutorial.outputs:
        printed = set()
        for _, name in (link for link in tutorial.links if link[0] == chapter):
            if name.endswith(".txt"):
                printed |= set((PICTURES / name).read_text(encoding="utf-8").splitlines())
        for line in text.splitlines():
            assert line in printed, f"chapter {chapter}: {line!r} is in no printout it links"


def test_quoted_results_are_verbatim() -> None:
    sources = "\n".join(path.read_text(encoding="utf-8") for path in QUOTE_SOURCES)
    for name in QUOTED:
        rows = [row for row in (PICTURES / name).read_text(encoding="utf-8").splitlines()]
        quoted = [row for row in rows if row.startswith("|")]
        assert quoted, name
        for row in quoted:
            assert row in sources, f"{name}: {row!r} is not in the committed results"


def test_the_python_example_prints_its_printout() -> None:
    (chapter, code), *others = TUTORIALS["en"].python
    assert not others
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "tutorial chapter 7", "exec"), {})  # noqa: S102 (the doc's code)
    printout = next(name for ch, name in TUTORIALS["en"].links if ch == chapter)
    assert out.getvalue() == (PICTURES / printout).read_text(encoding="utf-8")


def test_fast_chapters_train_on_small_step_budgets() -> None:
    """Every training command of the fast chapters is the quickstart with a step budget
    (the same model on any machine) and the default time cap."""
    trainings = 0
    for chapter, command in TUTORIALS["en"].commands:
        for argv in attnmt_argvs(command):
            if argv[0] in ("train", "compare"):
                assert chapter not in FAST_CHAPTERS, command
            if argv[0] != "quickstart":
                continue
            trainings += 1
            assert chapter in FAST_CHAPTERS and "--minutes" not in argv, command
            budget = re.search(r"--set train\.max_steps=(\d+)", command)
            assert budget and int(budget.group(1)) <= MAX_STEPS, command
    assert trainings >= 5


def tiny(argv: list[str]) -> list[str]:
    """A tutorial command with a CI budget: a few training steps of a small model."""
    if argv[0] != "quickstart":
        return argv
    sets = ["train.max_steps=2", "train.validate_every=2", "model.embed_dim=16"]
    sets += ["train.data_workers=1", "train.precision=fp32"]  # no worker pool, no timing
    sets.append("decode.max_len=6")  # an untrained model's outputs: short heatmaps to draw
    if "model.arch=transformer" not in argv:
        sets.append("model.hidden_dim=16")
    return [*argv, "--no-progress", *(word for item in sets for word in ("--set", item))]


def test_the_fast_chapters_run_with_tiny_budgets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    # The quickstart's task, smaller: 400 training pairs, 20 to validate and 20 to test.
    small_task = functools.partial(write_task, train=400, dev=20, test=20)
    monkeypatch.setattr(quickstart, "write_task", small_task)
    ran = 0
    for chapter, command in TUTORIALS["en"].commands:
        if chapter not in FAST_CHAPTERS:
            continue
        stdin = shlex.split(command)[1] if command.startswith("echo ") else ""
        piped = io.TextIOWrapper(io.BytesIO((stdin + "\n").encode()), encoding="utf-8")
        monkeypatch.setattr(sys, "stdin", piped)
        for argv in attnmt_argvs(command):
            assert main(tiny(argv)) == 0, f"chapter {chapter}: {command}\n{capsys.readouterr()}"
            ran += 1
    assert ran >= 15
    assert (tmp_path / "runs" / "tutorial" / "bahdanau" / "checkpoints").is_dir()
    assert (tmp_path / "bahdanau.png").is_file()
