"""Dialogue pairs from the Chit-Chat Challenge corpus (BYU PCC lab, MIT license).

The corpus ships inside the ``chitchat-dataset`` wheel (the ``attnmt[chat]`` extra) as
one JSON file: about 7,168 conversations between two people, each a list of messages,
each message a list of utterances by one sender. Nothing is downloaded.

A *turn* is one message: its utterances joined by a space. A conversation of turns
t_0 .. t_{m-1} gives one pair per reply t_i (i >= 1):

    source = t_{i-1-N} ||| ... ||| t_{i-2} ||| t_{i-1}        (the N turns before the
    target = t_i                                                message, then the message)

fewer context turns near the start, and none for N = 0 (single-turn pairs). The same
:func:`dialogue_source` builds what ``attnmt chat --context N`` feeds the model, so
training and chatting see the same format.

Splits go by conversation: every pair of a conversation lands in the same split, so no
dialogue is seen in training and tested on. The split is a seeded shuffle of the sorted
conversation ids, the same on every machine. Each pair's conversation id is written too
(``test.ids``, line-aligned with ``test.src``): relevance is measured against replies
from *other* conversations (:mod:`attnmt.evaluate.relevance`).

Each pair also gives a *backward* pair, written to ``backward/``, line-aligned with the
forward pairs:

    source = t_i                                                (the reply)
    target = t_{i-1}                                            (the message alone)

A backward model trained on them gives p(S | T), which reranks the forward model's
candidate replies (MMI-bidi, :mod:`attnmt.translate.rerank`).
"""

from __future__ import annotations

import importlib
import json
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from attnmt.errors import UserError
from attnmt.files import write_text_atomic

SEPARATOR = " ||| "
"""Joins the context turns and the message into one source line."""
SPLITS = ("train", "dev", "test")
BACKWARD = "backward"
"""The folder, inside the output folder, of the backward pairs (reply -> message)."""
INSTALL_HINT = "pip install 'attnmt[chat]'"


def dialogue_source(
    previous: Sequence[str], message: str, turns: int, separator: str = SEPARATOR
) -> str:
    """The model input for `message`: the last `turns` of `previous` (oldest first), then
    `message`, joined by `separator`. turns = 0 gives the message alone."""
    if turns < 0:
        raise ValueError(f"turns must be 0 or more (got {turns})")
    kept = list(previous[-turns:]) if turns > 0 else []
    return separator.join([*kept, message])


# ---------------------------------------------------------------------------
# Reading the packaged corpus


def corpus_path() -> Path:
    """The JSON file inside the installed ``chitchat-dataset`` package."""
    try:
        package = importlib.import_module("chitchat_dataset")
    except ImportError:
        raise UserError(
            f"the chitchat corpus needs the chat extra; install it with: {INSTALL_HINT}"
        ) from None
    return Path(str(package.__file__)).with_name("dataset.json")


def read_conversations(path: Path | None = None) -> dict[str, list[list[str]]]:
    """Conversation id -> messages, each message the raw texts of its utterances."""
    path = corpus_path() if path is None else path
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read the chitchat corpus ({err})") from None
    return {
        conv_id: [[utterance["text"] for utterance in message] for message in conv["messages"]]
        for conv_id, conv in data.items()
    }


def clean_turn(utterances: Sequence[str]) -> str:
    """One line of text: the utterances joined, whitespace (tabs, newlines) collapsed, and
    any run of three or more "|" (the separator's mark) cut to one, so a turn never looks
    like two."""
    text = " ".join(" ".join(utterance.split()) for utterance in utterances)
    return re.sub(r"\|{3,}", "|", text).strip()


# ---------------------------------------------------------------------------
# Pairs and splits


@dataclass
class DialogueStats:
    """What building the pairs kept and dropped, summed over conversations."""

    conversations: int = 0
    turns: int = 0  # turns kept (non-empty)
    empty_turns: int = 0  # turns with no text: removed from their conversation
    long_turns: int = 0  # turns over max_words: never a reply, never in a source
    dropped_long: int = 0  # pairs dropped because a turn in them was over max_words
    pairs: dict[str, int] = field(default_factory=dict)  # pairs written per split


def last_turn(source: str, separator: str = SEPARATOR) -> str:
    """The message of a dialogue source: its last turn, without the older context."""
    return source.rpartition(separator)[2]


def dialogue_pairs(
    turns: Sequence[str], context: int, max_words: int, stats: DialogueStats
) -> Iterator[tuple[str, str]]:
    """(source, reply) pairs of one conversation of cleaned turns (see the module doc).

    Empty turns are removed first; a pair whose reply or source holds a turn of more than
    `max_words` words is dropped. Both are counted in `stats`. The message of each pair
    is ``last_turn(source)``.
    """
    kept = [turn for turn in turns if turn]
    stats.empty_turns += len(turns) - len(kept)
    stats.turns += len(kept)
    too_long = [len(turn.split()) > max_words for turn in kept]
    stats.long_turns += sum(too_long)
    for i in range(1, len(kept)):
        window = range(max(0, i - 1 - context), i + 1)  # the context, the message, the reply
        if any(too_long[j] for j in window):
            stats.dropped_long += 1
            continue
        yield dialogue_source(kept[: i - 1], kept[i - 1], context), kept[i]


def split_conversations(ids: Sequence[str], held_out: int, seed: int) -> dict[str, list[str]]:
    """Conversation ids per split: `held_out` each for test and dev, the rest for train.

    The ids are sorted, then shuffled by `seed`, so the split depends on nothing else.
    """
    if held_out < 1 or 2 * held_out >= len(ids):
        raise UserError(
            f"--held-out must be between 1 and {(len(ids) - 1) // 2} for {len(ids)} "
            f"conversations (got {held_out})"
        )
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    return {
        "test": order[:held_out],
        "dev": order[held_out : 2 * held_out],
        "train": order[2 * held_out :],
    }


def write_dialogue_data(
    out: Path,
    *,
    context: int,
    seed: int,
    held_out: int = 200,
    max_words: int = 50,
    conversations: Mapping[str, Sequence[Sequence[str]]] | None = None,
) -> DialogueStats:
    """Write to `out`, for each split: ``.src`` / ``.tgt`` (line-aligned context and
    reply), ``.ids`` (each pair's conversation id), the backward pairs
    ``backward/{split}.src`` / ``.tgt`` / ``.ids`` (reply -> message, line-aligned with
    the forward pairs) and ``manifest.json`` (settings, counts and each split's
    conversation ids).

    `conversations` (id -> messages -> utterance texts) defaults to the packaged corpus.
    """
    if context < 0:
        raise UserError(f"--context must be 0 or more (got {context})")
    if max_words < 1:
        raise UserError(f"--max-words must be at least 1 (got {max_words})")
    if conversations is None:
        conversations = read_conversations()
    splits = split_conversations(list(conversations), held_out, seed)
    stats = DialogueStats(conversations=len(conversations))
    for name in SPLITS:
        sources, replies, owners = [], [], []
        for conv_id in splits[name]:
            turns = [clean_turn(message) for message in conversations[conv_id]]
            for source, reply in dialogue_pairs(turns, context, max_words, stats):
                sources.append(source)
                replies.append(reply)
                owners.append(conv_id)
        messages = [last_turn(source) for source in sources]
        for folder, src, tgt in ((out, sources, replies), (out / BACKWARD, replies, messages)):
            write_text_atomic(folder / f"{name}.src", _lines(src))
            write_text_atomic(folder / f"{name}.tgt", _lines(tgt))
            write_text_atomic(folder / f"{name}.ids", _lines(owners))
        stats.pairs[name] = len(sources)
    manifest = {
        "corpus": "chitchat-dataset",
        "context": context,
        "separator": SEPARATOR,
        "seed": seed,
        "held_out": held_out,
        "max_words": max_words,
        "backward": f"{BACKWARD}/: reply -> message, line-aligned with the forward pairs",
        "stats": asdict(stats),
        "conversations": splits,
    }
    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
    return stats


def _lines(texts: Sequence[str]) -> str:
    return "".join(text + "\n" for text in texts)
