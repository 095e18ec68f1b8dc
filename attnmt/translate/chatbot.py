"""Talk to a dialogue model: the Python API behind ``attnmt chat``.

    from attnmt import Chatbot

    bot = Chatbot.load("runs/chitchat")
    bot.reply("hi! how are you?")            # "i'm good, how are you?"
    bot.reply("great. what do you study?")   # the model sees the previous turns too
    bot.last.word_attention()                # the last reply's attention over its source
    bot.reset()                              # a new conversation

    bot = Chatbot.load("runs/chitchat", reranker="runs/chitchat_backward")
    bot.reply("what do you study?")          # the best of 10 candidates by MMI
    bot.answer.candidates                    # each with its forward, backward, score

A dialogue model is a seq2seq model whose source is the conversation so far and whose
target is the reply (``data.task: dialogue``). Each reply is a translation of

    turn_{-N} ||| ... ||| turn_{-1} ||| message

where the N previous turns (the user's messages and the bot's replies each count as one)
come from a :class:`ContextWindow`, built by the same :func:`dialogue_source` that wrote
the training pairs (``attnmt data chitchat --context N``). N defaults to the run's
``data.context_turns``, so the model reads at chat time what it read in training.

Decoding uses the run's ``decode`` settings (the chitchat presets sample from the top-p
nucleus; see their comments for why), overridable per bot or per reply. A reply never
contains the unknown piece (``decode.allow_unk`` is false for replies, whatever the
options say). With a backward model (:class:`attnmt.translate.rerank.Reranker`), each
reply is the best of ``rerank.candidates`` candidates by the MMI-bidi score.

:class:`Responder` is the stateless part: from a history and a message to a
:class:`ChatReply` (the reply and every candidate with its scores). The chatbot, ``attnmt
evaluate`` and the server all answer through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnmt.config import DecodeOptions, RerankOptions, decode_options, rerank_options
from attnmt.data.chitchat import SEPARATOR, dialogue_source, last_turn
from attnmt.errors import UserError
from attnmt.io.run import Run
from attnmt.translate.rerank import Candidate, Reranker, plain_candidates
from attnmt.translate.schema import Translation
from attnmt.translate.translator import Translator

TRAIN_HINT = "attnmt data chitchat && attnmt train configs/chitchat.yaml"


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
    """Refuse, in one line, a run that was not trained to reply (a translation model, or
    a backward dialogue model)."""
    task = translator.config.data.task
    if task == "dialogue_backward":
        raise UserError(
            f"{name} is a backward dialogue model (it predicts the message from a reply): "
            f"it reranks replies and cannot chat; use it as --rerank {name} with a "
            "dialogue model"
        )
    if task != "dialogue":
        raise UserError(
            f"{name} is a {task} model, not a dialogue model (its data.task is {task!r}); "
            f"train one with: {TRAIN_HINT}"
        )


class NarrowBeam(UserError):
    """Reranking asks for more candidates than the beam can give. The message names
    ``attnmt chat``'s flags; the server names its request's fields instead
    (:func:`attnmt.serve.chat.narrow_beam`), from `candidates` and `beam`."""

    def __init__(self, candidates: int, beam: int) -> None:
        self.candidates, self.beam = candidates, beam
        super().__init__(
            f"reranking {candidates} candidates needs a beam of at least {candidates} (the "
            f"beam is {beam}); raise --beam, ask for fewer candidates (--n-best) or sample "
            "(--sample)"
        )


@dataclass(frozen=True, eq=False)
class ChatReply:
    """One answer: the reply chosen and every candidate it was chosen from."""

    source: str  # what the dialogue model read: the context turns and the message
    candidates: list[Candidate]
    """The distinct candidates, best first: by the MMI score when reranked, else as
    search ranked them. The first is the reply."""
    reranked: bool  # whether a backward model scored the candidates

    @property
    def reply(self) -> Candidate:
        return self.candidates[0]

    @property
    def text(self) -> str:
        return self.reply.text

    @property
    def translation(self) -> Translation:
        """The reply as decoded: tokens, source tokens and attention over what was read."""
        return self.reply.translation


class Responder:
    """How a dialogue run answers: candidates from the decoding options, reranked by a
    backward model when there is one. Stateless: the history comes with each call, so
    one Responder serves any number of conversations (the server keeps one per model).

    Args:
        translator: the dialogue run's :class:`Translator`.
        reranker: a backward model to rerank the candidates (None: no reranking).
        rerank: λ, γ and N (default: the dialogue run's ``rerank`` section).
        context: previous turns to feed; None means the run's ``data.context_turns``.
        separator: joins the turns (the training data's separator).
    """

    def __init__(
        self,
        translator: Translator,
        reranker: Reranker | None = None,
        rerank: RerankOptions | None = None,
        *,
        context: int | None = None,
        separator: str = SEPARATOR,
    ) -> None:
        check_dialogue(translator, translator.config.run_dir)
        self.turns = translator.config.data.context_turns if context is None else context
        if self.turns < 0:
            raise UserError(f"the context must be 0 turns or more (got {self.turns})")
        self.translator = translator
        self.reranker = reranker
        self.rerank = rerank or translator.config.rerank
        self.separator = separator

    def source(self, history: Sequence[str], message: str) -> str:
        """What the model reads to answer `message` after `history` (oldest first)."""
        return dialogue_source(history, message, self.turns, self.separator)

    def reply_options(
        self, options: DecodeOptions | None = None, rerank: bool = True
    ) -> DecodeOptions:
        """The options replies are decoded with: `options` (default: the run's) without
        the unknown piece, and while reranking with ``rerank.candidates`` hypotheses.
        Options that cannot give the candidates fail here, in one line
        (:class:`NarrowBeam`)."""
        options = options or self.translator.decode
        n_best = None
        if rerank and self.reranker is not None:
            n_best = self.rerank.candidates
            if not options.sample and options.beam < n_best:
                raise NarrowBeam(n_best, options.beam)
        return decode_options(options, {"allow_unk": False, "n_best": n_best})

    def respond(
        self,
        history: Sequence[str],
        message: str,
        options: DecodeOptions | None = None,
        *,
        rerank: bool = True,
    ) -> ChatReply:
        """Answer `message` after the turns `history` (oldest first; the last
        ``self.turns`` are read). `options` default to the run's ``decode`` settings;
        `rerank` False decodes without the backward model even when there is one."""
        message = " ".join(message.split())
        if not message:
            raise UserError("an empty message has no reply")
        return self.replies([self.source(history, message)], options, rerank=rerank)[0]

    def replies(
        self, sources: Sequence[str], options: DecodeOptions | None = None, *, rerank: bool = True
    ) -> list[ChatReply]:
        """Answer many sources (each the context turns and a message, joined by the
        separator) at once: one batched decode, then one backward pass over every
        candidate. The message each candidate is reranked against is the source's last
        turn."""
        reranking = rerank and self.reranker is not None
        decoded = self.translator.translate(list(sources), self.reply_options(options, rerank))
        found = [translation.hypotheses or [translation] for translation in decoded]
        if self.reranker is None or not reranking:
            ranked = [plain_candidates(hypotheses) for hypotheses in found]
        else:
            messages = [last_turn(source, self.separator) for source in sources]
            ranked = self.reranker.rerank(messages, found, self.rerank)
        return [
            ChatReply(source, candidates, reranking)
            for source, candidates in zip(sources, ranked, strict=True)
        ]


class Chatbot:
    """A dialogue model and the conversation so far.

    Args:
        translator: the dialogue run's :class:`Translator`.
        options: how to decode every reply (default: the run's ``decode`` settings); with
            a seed, reply k draws with seed + k, so a conversation replays exactly while
            each reply still draws anew.
        context: previous turns to feed; None means the run's ``data.context_turns``.
        separator: joins the turns (the training data's separator).
        reranker: a backward model that reranks each reply's candidates (MMI-bidi).
        rerank: λ, γ and N (default: the dialogue run's ``rerank`` section).
    """

    def __init__(
        self,
        translator: Translator,
        options: DecodeOptions | None = None,
        *,
        context: int | None = None,
        separator: str = SEPARATOR,
        reranker: Reranker | None = None,
        rerank: RerankOptions | None = None,
    ) -> None:
        self.responder = Responder(
            translator, reranker, rerank, context=context, separator=separator
        )
        self.translator = translator
        self.window = ContextWindow(self.responder.turns, separator)
        self.options = options or translator.decode
        self.responder.reply_options(self.options)  # options that cannot work fail now
        self.last: Translation | None = None  # the last reply, with its attention
        self.answer: ChatReply | None = None  # the last reply with every candidate's scores
        self.replies = 0  # replies given so far, across resets

    @classmethod
    def load(
        cls,
        run: str | Path | Run,
        *,
        device: str = "auto",
        which: str = "best",
        precision: str = "auto",
        context: int | None = None,
        separator: str = SEPARATOR,
        reranker: str | Path | Run | Reranker | None = None,
        mmi_weight: float | None = None,
        length_bonus: float | None = None,
        candidates: int | None = None,
        **overrides: Any,
    ) -> Chatbot:
        """Load a dialogue run (a directory or a loaded :class:`Run`), and a backward run
        to rerank with (a directory, a loaded Run or a :class:`Reranker`). `mmi_weight`
        (λ), `length_bonus` (γ) and `candidates` (N) override the run's ``rerank``
        section; `overrides` are ``decode`` keys (beam, sample, top_p, seed, ...) over
        its ``decode`` section. `which` and `precision` pick the weights and how they
        compute, as in :meth:`Translator.load`. All are checked now rather than at the
        first reply."""
        if isinstance(run, Run):
            translator, name = Translator.from_run(run), str(run.run_dir)
        else:
            translator = Translator.load(run, device=device, which=which, precision=precision)
            name = str(run)
        check_dialogue(translator, name)
        given = {"mmi_weight": mmi_weight, "length_bonus": length_bonus, "candidates": candidates}
        if reranker is None and any(value is not None for value in given.values()):
            raise UserError("mmi_weight, length_bonus and candidates need a reranker")
        rerank = rerank_options(translator.config.rerank, given)
        backward = None if reranker is None else Reranker.load(reranker, device=device)
        return cls(
            translator,
            translator.options(**overrides),
            context=context,
            separator=separator,
            reranker=backward,
            rerank=rerank,
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
        options = options or self.options
        if options.seed is not None and self.replies:  # reply k draws with seed + k
            options = options.model_copy(update={"seed": options.seed + self.replies})
        answer = self.responder.respond(self.window.history, message, options)
        self.window.add(message, answer.text)
        self.last, self.answer = answer.translation, answer
        self.replies += 1
        return answer.text

    def reset(self) -> None:
        """Forget the conversation: the next message is read without context."""
        self.window.reset()
        self.last = self.answer = None


def converse(bot: Chatbot, messages: Sequence[str]) -> list[str]:
    """Replies to `messages` in turn, as one conversation from its start."""
    bot.reset()
    return [bot.reply(message) for message in messages]
