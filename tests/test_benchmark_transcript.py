"""The chat transcript's fixed messages: 20 of them, comments left out, safe in a table."""

from __future__ import annotations

from pathlib import Path

from benchmarks.chat_transcript import cell, read_messages


def test_the_committed_messages_are_twenty_and_carry_no_comment() -> None:
    messages = read_messages()
    assert len(messages) == 20
    assert not any(message.startswith("#") or not message for message in messages)


def test_comments_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "messages.txt"
    path.write_text("# a comment\nhello\n\n  how are you?  \n", encoding="utf-8")
    assert read_messages(path) == ["hello", "how are you?"]


def test_a_cell_escapes_pipes_and_shows_an_empty_reply() -> None:
    assert cell("a | b") == "a \\| b"
    assert cell("") == "(empty)"
