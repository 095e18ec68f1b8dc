"""`attnmt chat` as a person uses it, in a real pseudo-terminal: a tiny model trained here
on a slice of the chitchat corpus, three turns, /attention, /reset, Ctrl-D."""

from __future__ import annotations

import errno
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import attnmt.cli.chat as chat_module
from attnmt.cli.chat import chat_loop, text_heatmap
from attnmt.cli.main import main
from attnmt.config import build_config
from attnmt.data.chitchat import read_conversations, write_dialogue_data
from attnmt.train.trainer import Trainer
from attnmt.translate.chatbot import Chatbot

TIMEOUT_S = 60.0  # per expected answer; the machine may be busy


@pytest.fixture(scope="module")
def chat_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dialogue model trained for a few steps on 40 real conversations."""
    pytest.importorskip("chitchat_dataset")
    root = tmp_path_factory.mktemp("chat")
    conversations = read_conversations()
    tiny = {conv_id: conversations[conv_id] for conv_id in sorted(conversations)[:40]}
    data = root / "data"
    write_dialogue_data(data, context=1, seed=1, held_out=3, conversations=tiny)
    split = lambda n: {"src": str(data / f"{n}.src"), "tgt": str(data / f"{n}.tgt")}  # noqa: E731
    overrides = {
        "run_dir": str(root / "run"),
        "model": {"embed_dim": 16, "hidden_dim": 32, "dropout": 0.0, "decoder": "luong"},
        "data": {
            "task": "dialogue",
            "context_turns": 1,
            "train": split("train"),
            "dev": split("dev"),
            "tokenizer": "word",
            "vocab_size": 300,
        },
        "train": {
            "max_steps": 12,
            "validate_every": 12,
            "batch_tokens": 800,
            "precision": "fp32",
            "lr": 0.01,
            "metric": "loss",
            "dev_max_sentences": 5,
            "threads": 1,
        },
        "decode": {"sample": True, "top_p": 0.9, "beam": 1, "max_len": 12},
    }
    config = build_config([("test", overrides)])
    Trainer.setup(config, progress_bar=False, log=lambda _: None).run()
    return root / "run"


class Terminal:
    """A command running in a pseudo-terminal: type lines, wait for text."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = pty.openpty()
        env = {**os.environ, "TERM": "dumb", "COLUMNS": "200"}
        self.process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        self.seen = ""  # everything shown so far
        self.unread = ""  # shown since the last expect

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, text: str) -> str:
        """Wait until `text` shows; return what showed before it."""
        deadline = time.monotonic() + TIMEOUT_S
        while text not in self.unread:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {text!r}; screen:\n{self.seen}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    chunk = ""
                assert chunk, f"the program ended before {text!r}; screen:\n{self.seen}"
                self.seen += chunk
                self.unread += chunk
        before, _, self.unread = self.unread.partition(text)
        return before

    def finish(self) -> int:
        code = self.process.wait(timeout=TIMEOUT_S)
        while select.select([self.master], [], [], 0.1)[0]:
            try:
                chunk = os.read(self.master, 4096).decode(errors="replace")
            except OSError:
                break
            if not chunk:
                break
            self.seen += chunk
        os.close(self.master)
        return code


def test_chat_in_a_terminal(chat_run: Path, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "attnmt.cli", "chat", "--model", str(chat_run)]
    terminal = Terminal([*command, "--seed", "1", "--device", "cpu", "--threads", "1"])
    banner = terminal.expect("you> ")
    assert "Chatting with" in banner and "context: 1 turns" in banner
    for message in ("hi, how are you?", "what are you studying?", "do you like the snow?"):
        terminal.type(message + "\n")
        terminal.expect("bot> ")
        reply = terminal.expect("you> ").strip()
        assert reply  # a sampled reply of at least one word
    terminal.type("/attention\n")
    heatmap = terminal.expect("you> ")
    assert "columns: 1=" in heatmap  # the reply words
    rows = [line.split()[0] for line in heatmap.splitlines()[3:] if line.strip()]
    assert rows[-5:] == ["do", "you", "like", "the", "<unk>"]  # the message ("snow" is unknown)
    assert "|||" in rows[:-5]  # after the context turn: the bot's last reply
    figure = tmp_path / "attention.png"
    terminal.type(f"/attention {figure}\n")
    shown = terminal.expect("you> ")
    assert figure.is_file() or "pip install 'attnmt[viz]'" in shown
    terminal.type("/reset\n")
    assert "(context cleared)" in terminal.expect("you> ")
    terminal.type("/attention\n")
    assert "no reply yet" in terminal.expect("you> ")
    terminal.type("\x04")  # Ctrl-D
    assert terminal.finish() == 0
    assert "Traceback" not in terminal.seen


def test_quit_stops_reading_and_commands_never_reach_the_model(chat_run: Path) -> None:
    bot = Chatbot.load(chat_run, device="cpu", seed=0)
    shown: list[str] = []
    lines = ["hello", "", "/attention", "/nonsense", "/quit", "never read"]
    assert chat_loop(iter(lines), bot, shown.append) == 0
    assert shown[0].startswith("bot> ") and "columns: 1=" in shown[1]
    assert "unknown command /nonsense" in shown[2] and len(shown) == 3
    assert bot.replies == 1


def test_a_translation_run_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from helpers import make_run

    run_dir = make_run(tmp_path / "mt")
    assert main(["chat", "--model", str(run_dir)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "not a dialogue model" in lines[0]


@pytest.fixture(scope="module")
def random_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Untrained dialogue and backward runs: enough to check options and commands."""
    from helpers import make_run

    root = tmp_path_factory.mktemp("random")
    forward = make_run(root / "forward", seed=0, task="dialogue")
    return forward, make_run(root / "backward", seed=1, task="dialogue_backward")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--model", "B"], "is a backward dialogue model"),
        (["--model", "F", "--rerank", "F"], "is not a backward dialogue model"),
        (["--model", "F", "--mmi-weight", "0.2"], "need --rerank"),
        (["--model", "F", "--rerank", "B", "--mmi-weight", "1.5"], "rerank.mmi_weight"),
        (["--model", "F", "--rerank", "B", "--no-sample", "--beam", "4"], "beam of at least 10"),
    ],
)
def test_reranking_mistakes_are_one_line(
    random_runs: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    named = {"F": str(random_runs[0]), "B": str(random_runs[1])}
    assert main(["chat", *[named.get(arg, arg) for arg in args]]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]


def test_candidates_shows_each_candidate_with_its_scores(random_runs: tuple[Path, Path]) -> None:
    forward, backward = random_runs
    bot = Chatbot.load(forward, device="cpu", reranker=backward, candidates=4, sample=True, seed=0)
    shown: list[str] = []
    lines = ["/candidates", "a dog sees a cat", "/candidates"]
    assert chat_loop(iter(lines), bot, shown.append) == 0
    assert "no reply yet" in shown[0] and shown[1].startswith("bot> ")
    header, *rows = shown[2].splitlines()
    assert "by MMI score" in header and bot.answer is not None
    assert len(rows) == len(bot.answer.candidates) >= 1
    for row, candidate in zip(rows, bot.answer.candidates, strict=True):
        assert row.endswith(candidate.text) and f"{candidate.score:8.2f}" in row
        assert "forward" in row and "backward" in row
    assert shown[1] == f"bot> {bot.answer.text}\n"  # the reply is the first candidate


def test_text_heatmap_rows_are_source_words_and_cells_shade_the_weight() -> None:
    weights = np.array([[1.0, 0.0, 0.0], [0.3, 0.6, 0.1]])  # (reply words, source words)
    lines = text_heatmap(["a", "bb", "c"], ["x", "</s>"], weights).splitlines()
    assert lines[0] == "columns: 1=x  2=</s>"
    assert lines[2:] == [" a ██ ▒▒", "bb    ▓▓", " c    ░░"]


def test_a_broken_terminal_is_one_line(
    chat_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(prompt: str) -> Iterator[str]:
        yield "hello"
        raise OSError(errno.EIO, "Input/output error")  # the terminal went away

    monkeypatch.setattr(chat_module, "terminal_lines", broken)
    assert main(["chat", "--model", str(chat_run), "--device", "cpu"]) == 2
    captured = capsys.readouterr()
    assert captured.out.startswith("bot> ")  # the reply before the terminal broke
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "terminal cannot be used (Input/output error)" in lines[0]
