"""Talk to a dialogue model: the Python API behind ``attnmt chat``.

    from attnmt import Chatbot

    bot = Chatbot.load("runs/chitchat_luong")
    bot.reply("hi! how are you?")            # "i'm good, how are you?"
    bot.reply("great. what do you study?")   # the model sees the previous turns too
    bot.last.word_attention()                # the last reply's attention over its source
    bot.reset()                              # a new conversation

A dialogue model is a seq2seq model whose source is the conversation so far and whose
target is the reply (``data.task: dialogue``). Each reply is a translation of

    turn_{-N} ||| ... ||| turn_{-1} ||| message

where the N previous turns (the user's messages and the bot's replies each count as one)
come from a :class:`ContextWindow`, built by the same :func:`dialogue_source` that wrote
the training pairs (``attnmt data chitchat --context N``). N defaults to the run's
``data.context_turns``, so the model reads at chat time what it read in training.

Decoding uses the run's ``decode`` settings (the chitchat presets sample from the top-p
nucleus; see their comments for why), overridable per bot or per reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnmt.config import DecodeOptions
from attnmt.data.chitchat import SEPARATOR, dialogue_source
from attnmt.errors import UserError
from attnmt.io.run import Run
from attnmt.translate.schema import Translation
from attnmt.translate.translator import Translator

TRAIN_HINT = "attnmt data chitchat && attnmt train configs/chitchat_luong.yaml"


@dataclass
class ContextWindow:
    """The last `turns` turns of the conversation, fed before each new message."""

    turns: int  # how many previous turns (user and bot each count one) to feed
    separator: str = SEPARATOR
    history: list[str] = field(default_factory=list)  # at most `turns`, oldest first

    def __post_init__(self) -> None:
        if self.turns < 0:
            raise UserError(f"the context must be 0 turns or more (got {self.turns})")

    def source(self, message: str) -> str:
        """The model input for `message`: the kept turns, then the message, joined."""
        return dialogue_source(self.history, message, self.turns, self.separator)

    def add(self, message: str, reply: str) -> None:
        """Remember one exchange, dropping what no later source will need."""
        self.history += [message, reply]
        del self.history[: max(0, len(self.history) - self.turns)]

    def reset(self) -> None:
        self.history.clear()


def check_dialogue(translator: Translator, name: str | Path) -> None:
    """Refuse, in one line, a run that was not trained on dialogue."""
    task = translator.config.data.task
    if task != "dialogue":
        raise UserError(
            f"{name} is a {task} model, not a dialogue model (its data.task is {task!r}); "
            f"train one with: {TRAIN_HINT}"
        )


class Chatbot:
    """A dialogue model and the conversation so far.

    Args:
        translator: the dialogue run's :class:`Translator`.
        options: how to decode every reply (default: the run's ``decode`` settings); with
            a seed, reply k draws with seed + k, so a conversation replays exactly while
            each reply still draws anew.
        context: previous turns to feed; None means the run's ``data.context_turns``.
        separator: joins the turns (the training data's separator).
    """

    def __init__(
        self,
        translator: Translator,
        options: DecodeOptions | None = None,
        *,
        context: int | None = None,
        separator: str = SEPARATOR,
    ) -> None:
        turns = translator.config.data.context_turns if context is None else context
        self.translator = translator
        self.window = ContextWindow(turns, separator)
        self.options = options or translator.decode
        self.last: Translation | None = None  # the last reply, with its attention
        self.replies = 0  # replies given so far, across resets

    @classmethod
    def load(
        cls,
        run: str | Path | Run,
        *,
        device: str = "auto",
        which: str = "best",
        context: int | None = None,
        separator: str = SEPARATOR,
        **overrides: Any,
    ) -> Chatbot:
        """Load a dialogue run (a directory or a loaded :class:`Run`). `overrides` are
        ``decode`` keys (beam, sample, top_p, seed, ...) over the run's settings, checked
        now rather than at the first reply."""
        if isinstance(run, Run):
            translator, name = Translator.from_run(run), str(run.run_dir)
        else:
            translator, name = Translator.load(run, device=device, which=which), str(run)
        check_dialogue(translator, name)
        return cls(
            translator, translator.options(**overrides), context=context, separator=separator
        )

    @property
    def history(self) -> list[str]:
        """The turns the next reply will read, oldest first."""
        return list(self.window.history)

    def source(self, message: str) -> str:
        """What the model reads to answer `message` now."""
        return self.window.source(message)

    def reply(self, message: str, options: DecodeOptions | None = None) -> str:
        """Answer `message` given the conversation so far, and remember the exchange.

        `options` replace the bot's decoding options for this reply only.
        """
        message = " ".join(message.split())
        if not message:
            raise UserError("an empty message has no reply")
        options = options or self.options
        if options.seed is not None and self.replies:  # reply k draws with seed + k
            options = options.model_copy(update={"seed": options.seed + self.replies})
        translation = self.translator.translate(self.source(message), options)
        self.window.add(message, translation.text)
        self.last = translation
        self.replies += 1
        return translation.text

    def reset(self) -> None:
        """Forget the conversation: the next message is read without context."""
        self.window.reset()
        self.last = None


def converse(bot: Chatbot, messages: Sequence[str]) -> list[str]:
    """Replies to `messages` in turn, as one conversation from its start."""
    bot.reset()
    return [bot.reply(message) for message in messages]
