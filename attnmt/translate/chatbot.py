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

from attnmt.data.chitchat import SEPARATOR, dialogue_source
from attnmt.errors import UserError
from attnmt.io.run import Run
from attnmt.translate.translator import Translation, Translator

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
        context: previous turns to feed; None means the run's ``data.context_turns``.
        separator: joins the turns (the training data's separator).
        seed: seeds sampling; reply k draws with seed + k, so a conversation replays
            exactly while each reply still draws anew.
        **decode: ``decode`` overrides for every reply (beam, sample, top_p, ...).
    """

    def __init__(
        self,
        translator: Translator,
        *,
        context: int | None = None,
        separator: str = SEPARATOR,
        seed: int | None = None,
        **decode: Any,
    ) -> None:
        turns = translator.config.data.context_turns if context is None else context
        self.translator = translator
        self.window = ContextWindow(turns, separator)
        self.seed = seed
        self.decode = decode
        translator.decode_config(**decode)  # a bad option fails now, not at the first reply
        self.last: Translation | None = None  # the last reply, with its attention
        self.replies = 0  # replies given so far, across resets

    @classmethod
    def load(
        cls,
        run: str | Path | Run,
        *,
        device: str = "auto",
        which: str = "best",
        **options: Any,
    ) -> Chatbot:
        """Load a dialogue run (a directory or a loaded :class:`Run`); `options` are the
        constructor's (context, separator, seed, decode overrides)."""
        if isinstance(run, Run):
            translator, name = Translator.from_run(run), str(run.run_dir)
        else:
            translator, name = Translator.load(run, device=device, which=which), str(run)
        check_dialogue(translator, name)
        return cls(translator, **options)

    @property
    def history(self) -> list[str]:
        """The turns the next reply will read, oldest first."""
        return list(self.window.history)

    def source(self, message: str) -> str:
        """What the model reads to answer `message` now."""
        return self.window.source(message)

    def reply(self, message: str, **options: Any) -> str:
        """Answer `message` given the conversation so far, and remember the exchange.

        `options` override ``decode`` keys for this reply only.
        """
        message = " ".join(message.split())
        if not message:
            raise UserError("an empty message has no reply")
        seed = None if self.seed is None else self.seed + self.replies
        settings = {**self.decode, **options}
        translation = self.translator.translate(self.source(message), seed=seed, **settings)
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
