"""Dialogue pairs from the chitchat corpus: the context window, splits by conversation,
counted drops, and one clear line when the extra is missing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from attnmt.cli.main import main
from attnmt.data.chitchat import (
    BACKWARD,
    SEPARATOR,
    DialogueStats,
    clean_turn,
    corpus_path,
    dialogue_pairs,
    dialogue_source,
    last_turn,
    split_conversations,
    write_dialogue_data,
)
from attnmt.errors import UserError


def conversation(name: str, turns: int) -> list[list[str]]:
    """Messages of one made-up conversation: one utterance each, named by position."""
    return [[f"{name} turn {i}"] for i in range(turns)]


CONVERSATIONS = {f"c{k:02d}": conversation(f"c{k:02d}", 3 + k % 5) for k in range(40)}


@pytest.mark.parametrize("context", [0, 1, 2, 3])
def test_each_source_holds_exactly_n_turns_before_the_message_in_order(context: int) -> None:
    turns = [f"t{i}" for i in range(7)]
    pairs = list(dialogue_pairs(turns, context, 50, DialogueStats()))
    assert [reply for _, reply in pairs] == turns[1:]
    for i, (source, _) in enumerate(pairs, start=1):
        parts = source.split(SEPARATOR)
        assert parts[-1] == turns[i - 1]  # the message
        assert parts[:-1] == turns[max(0, i - 1 - context) : i - 1]  # N turns, oldest first
        assert len(parts) == min(context, i - 1) + 1


def test_dialogue_source_is_the_message_alone_without_context() -> None:
    assert dialogue_source(["a", "b"], "c", 0) == "c"
    assert dialogue_source(["a", "b"], "c", 5) == f"a{SEPARATOR}b{SEPARATOR}c"


def test_splits_share_no_conversation_and_follow_the_seed() -> None:
    ids = list(CONVERSATIONS)
    splits = split_conversations(ids, held_out=5, seed=3)
    assert len(splits["test"]) == len(splits["dev"]) == 5
    seen = [conv for name in ("train", "dev", "test") for conv in splits[name]]
    assert sorted(seen) == sorted(ids)  # every conversation, each in one split only
    assert split_conversations(list(reversed(ids)), 5, 3) == splits  # input order is ignored
    assert split_conversations(ids, 5, 4)["test"] != splits["test"]


def test_written_pairs_of_a_conversation_stay_in_its_split(tmp_path: Path) -> None:
    stats = write_dialogue_data(
        tmp_path, context=1, seed=2, held_out=4, conversations=CONVERSATIONS
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    owner = {conv: name for name, convs in manifest["conversations"].items() for conv in convs}
    assert len(owner) == len(CONVERSATIONS)
    for name in ("train", "dev", "test"):
        replies = (tmp_path / f"{name}.tgt").read_text().splitlines()
        sources = (tmp_path / f"{name}.src").read_text().splitlines()
        assert len(replies) == len(sources) == stats.pairs[name]
        assert {owner[reply.split(" turn ")[0]] for reply in replies} == {name}
    expected = sum(len(messages) - 1 for messages in CONVERSATIONS.values())
    assert sum(stats.pairs.values()) == expected


def test_ids_and_backward_pairs_are_line_aligned_with_the_forward_pairs(tmp_path: Path) -> None:
    """Line k of .ids names pair k's conversation; backward pair k is (reply k, the
    message of pair k alone, without the older context)."""
    write_dialogue_data(tmp_path, context=2, seed=2, held_out=4, conversations=CONVERSATIONS)
    for name in ("train", "dev", "test"):
        sources = (tmp_path / f"{name}.src").read_text().splitlines()
        replies = (tmp_path / f"{name}.tgt").read_text().splitlines()
        ids = (tmp_path / f"{name}.ids").read_text().splitlines()
        back = tmp_path / BACKWARD
        back_src = (back / f"{name}.src").read_text().splitlines()
        back_tgt = (back / f"{name}.tgt").read_text().splitlines()
        assert (back / f"{name}.ids").read_text().splitlines() == ids
        assert len(ids) == len(sources) == len(back_src) == len(back_tgt)
        assert ids == [reply.split(" turn ")[0] for reply in replies]  # "c07 turn 3" in c07
        assert back_src == replies
        for source, message in zip(sources, back_tgt, strict=True):
            assert SEPARATOR not in message and source.endswith(message)
            assert last_turn(source) == message
            turn = int(message.split(" turn ")[1])
            assert source.count(SEPARATOR) == min(2, turn)  # the context is not in it


def test_empty_and_overlong_turns_are_counted() -> None:
    stats = DialogueStats()
    turns = ["hi", "", "how are you", "one two three four five six", "fine", "ok"]
    pairs = list(dialogue_pairs(turns, 1, 5, stats))
    assert stats.empty_turns == 1 and stats.long_turns == 1 and stats.turns == 5
    # kept: hi, how are you, LONG, fine, ok. The reply LONG, the message LONG and the
    # context LONG (for "ok" after "fine") each drop their pair.
    assert pairs == [("hi", "how are you")]
    assert stats.dropped_long == 3
    assert list(dialogue_pairs(turns, 0, 5, DialogueStats()))[-1] == ("fine", "ok")


def test_a_turn_is_one_line_and_never_holds_the_separator() -> None:
    assert clean_turn(["hello\tthere\n", " you |||| me"]) == "hello there you | me"


def test_the_packaged_corpus_is_found() -> None:
    pytest.importorskip("chitchat_dataset")
    assert corpus_path().is_file()


def test_without_the_extra_one_line_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "chitchat_dataset", None)  # import now fails
    with pytest.raises(UserError, match=r"pip install 'attnmt\[chat\]'"):
        corpus_path()
    assert main(["data", "chitchat", "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "pip install 'attnmt[chat]'" in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "options,fragment",
    [({"context": -1}, "--context"), ({"context": 1, "held_out": 20}, "--held-out")],
)
def test_bad_options_fail_in_one_line(
    options: dict[str, int], fragment: str, tmp_path: Path
) -> None:
    settings = {"seed": 1, **options}
    with pytest.raises(UserError, match=fragment):
        write_dialogue_data(tmp_path, conversations=CONVERSATIONS, **settings)  # type: ignore[arg-type]


PRESETS = sorted((Path(__file__).parents[2] / "attnmt" / "presets").glob("chitchat*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_presets_read_what_data_chitchat_writes_by_default(preset: Path) -> None:
    from attnmt.cli.data import CHITCHAT_CONTEXT
    from attnmt.cli.main import build_parser
    from attnmt.config import load_config

    defaults = build_parser("data").parse_args(["data", "chitchat"])
    config = load_config(preset)
    folder = defaults.out
    if config.data.task == "dialogue_backward":  # reply -> message: no context to read
        folder = f"{defaults.out}/{BACKWARD}"
        assert config.data.context_turns == 0
    else:
        assert config.data.task == "dialogue"
        assert config.data.context_turns == defaults.context == CHITCHAT_CONTEXT
        assert config.decode.sample  # the chat decoding the presets document
        assert not config.decode.allow_unk
    for name in ("train", "dev", "test"):
        split = getattr(config.data, name)
        assert (split.src, split.tgt) == (f"{folder}/{name}.src", f"{folder}/{name}.tgt")
