"""Talk to a dialogue model: each message is "translated" into a reply, with optional context."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from attnmt.cli.translate import add_model_arguments, decode_options, load_translator
from attnmt.errors import UserError
from attnmt.translate.streaming import terminal_lines

SEPARATOR = " ||| "  # joins context turns and the message into one source line
PROMPT = "you> "
RESET, QUIT = "/reset", "/quit"
EPILOG = f"""\
With --context N the model reads the previous N turns (your messages and its replies
each count as one turn), oldest first, then your message, joined with --separator:

  turn_1{SEPARATOR}turn_2{SEPARATOR}...{SEPARATOR}message

Train the dialogue model on source lines formatted the same way. Type {RESET} to clear
the context and {QUIT}, Ctrl-D or Ctrl-C to quit."""


@dataclass
class Context:
    """The last `turns` utterances of the conversation, fed before each new message."""

    turns: int  # how many previous utterances (user and bot each count) to feed
    separator: str = SEPARATOR
    history: list[str] = field(default_factory=list)  # oldest first

    def source(self, message: str) -> str:
        """The model input for `message`: the kept turns and the message, joined."""
        kept = self.history[-self.turns :] if self.turns > 0 else []
        return self.separator.join([*kept, message])

    def add(self, message: str, reply: str) -> None:
        """Remember one exchange, dropping what no later source will need."""
        self.history += [message, reply]
        del self.history[: max(0, len(self.history) - self.turns)]

    def reset(self) -> None:
        self.history.clear()


def chat_loop(
    lines: Iterable[str],
    respond: Callable[[str], str],
    write: Callable[[str], object],
    context: Context,
) -> int:
    """Answer each line with respond(context + line) until the lines end or /quit.

    Blank lines are skipped; /reset clears the context. Returns 0.
    """
    for line in lines:
        message = line.strip()
        if not message:
            continue
        if message == QUIT:
            break
        if message == RESET:
            context.reset()
            write("(context cleared)\n")
            continue
        reply = respond(context.source(message))
        write(reply + "\n")
        context.add(message, reply)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument(
        "--context", type=int, default=0, metavar="N", help="previous turns to feed (default 0)"
    )
    parser.add_argument(
        "--separator", default=SEPARATOR, help=f"joins turns into one line (default {SEPARATOR!r})"
    )
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def run(args: argparse.Namespace) -> int:
    if args.context < 0:
        raise UserError(f"--context must be 0 or more (got {args.context})")
    translator = load_translator(args)
    options = decode_options(args)

    def respond(source: str) -> str:
        return translator.translate(source, seed=args.seed, **options).text

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    if sys.stdin.isatty():
        print(
            f"Chatting with {args.model}; {RESET} clears the context, Ctrl-D quits.",
            file=sys.stderr,
        )
    try:
        return chat_loop(
            terminal_lines(PROMPT), respond, write, Context(args.context, args.separator)
        )
    except KeyboardInterrupt:  # Ctrl-C while the model answers: quit quietly
        print(file=sys.stderr)
        return 0
