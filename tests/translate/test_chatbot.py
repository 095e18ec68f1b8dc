"""The chatbot API: the context window, the history it keeps, refusing non-dialogue runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SENTENCES, make_run

from attnmt.data.chitchat import SEPARATOR
from attnmt.errors import UserError
from attnmt.translate.chatbot import Chatbot, ContextWindow
from attnmt.translate.translator import Translator


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"))


def dialogue_translator(run_dir: Path, context: int = 2) -> Translator:
    """The test run's translator, marked as a dialogue model with `context` turns."""
    translator = Translator.load(run_dir, device="cpu")
    translator.config.data.task = "dialogue"
    translator.config.data.context_turns = context
    return translator


@pytest.mark.parametrize("turns", [0, 1, 2, 5])
def test_the_window_holds_exactly_n_turns_with_the_separator_in_order(turns: int) -> None:
    window = ContextWindow(turns)
    said: list[str] = []
    for k in range(4):
        message, reply = f"m{k}", f"r{k}"
        expected = said[max(0, len(said) - turns) :] if turns else []
        assert window.source(message) == SEPARATOR.join([*expected, message])
        assert window.source(message).count(SEPARATOR) == len(expected)
        window.add(message, reply)
        said += [message, reply]
        assert len(window.history) == min(turns, len(said))
    window.reset()
    assert window.source("x") == "x"


def test_a_translation_run_is_refused_in_one_line(run_dir: Path) -> None:
    with pytest.raises(UserError, match="not a dialogue model") as caught:
        Chatbot.load(run_dir, device="cpu")
    assert "\n" not in str(caught.value)


def test_reply_keeps_the_history_and_feeds_it_to_the_model(run_dir: Path) -> None:
    translator = dialogue_translator(run_dir)
    bot = Chatbot(translator, translator.options(seed=0))
    assert bot.window.turns == 2  # the run's data.context_turns
    first = bot.reply(SENTENCES[0])
    assert bot.history == [SENTENCES[0], first]
    second = bot.reply(SENTENCES[1])
    assert bot.history == [SENTENCES[1], second]  # two turns kept, the oldest dropped
    assert bot.last is not None and bot.last.text == second
    # The model read the first exchange before the second message.
    read = bot.last.src_tokens
    assert len(read) == sum(len(text.split()) for text in (SENTENCES[0], first, SENTENCES[1])) + 2
    bot.reset()
    assert bot.history == [] and bot.last is None
    bot.reply(SENTENCES[1])
    assert bot.last is not None and len(bot.last.src_tokens) == len(SENTENCES[1].split())


def test_a_seeded_conversation_replays_and_each_reply_draws_anew(run_dir: Path) -> None:
    def conversation(seed: int) -> list[str]:
        translator = dialogue_translator(run_dir, 0)
        bot = Chatbot(translator, translator.options(seed=seed, sample=True, temperature=2.0))
        return [bot.reply(SENTENCES[0]) for _ in range(6)]

    replies = conversation(7)
    assert conversation(7) == replies
    assert len(set(replies)) > 1  # the same message, context 0: only the seed changes


def test_per_reply_options_and_bad_options(run_dir: Path) -> None:
    translator = dialogue_translator(run_dir)
    bot = Chatbot(translator)
    assert bot.reply(SENTENCES[2], translator.options(max_len=2, min_len=2)).count(" ") <= 1
    with pytest.raises(UserError, match="empty message"):
        bot.reply("   ")
    with pytest.raises(UserError, match="top_p"):
        translator.options(top_p=2.0)
