"""Talk to a dialogue model: each message, with the turns before it, is "translated" into a
reply (see attnmt.translate.chatbot)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from attnmt.cli.translate import add_model_arguments, load_translator
from attnmt.config import RerankOptions, rerank_options
from attnmt.data.chitchat import SEPARATOR
from attnmt.errors import UserError
from attnmt.translate.chatbot import Chatbot, check_dialogue
from attnmt.translate.rerank import Reranker
from attnmt.translate.streaming import terminal_lines
from attnmt.translate.translator import Translator

PROMPT = "you> "
BOT = "bot> "
RESET, ATTENTION, CANDIDATES, QUIT = "/reset", "/attention", "/candidates", "/quit"
SHADES = ((0.05, " "), (0.25, "░"), (0.5, "▒"), (0.75, "▓"), (1.01, "█"))  # (below, shade)
EPILOG = f"""\
commands at the prompt:
  {RESET}              forget the conversation (the next message has no context)
  {ATTENTION} [FILE]   the last reply's attention over what the model read: a text
                      heatmap here, or a PNG/SVG written to FILE (needs attnmt[viz])
  {CANDIDATES}         the candidates the last reply was chosen from, with their scores
  {QUIT}, Ctrl-D       leave (Ctrl-C too)

The model reads the previous N turns (your messages and its replies each count one),
oldest first, then your message, joined with --separator:

  turn_1{SEPARATOR}turn_2{SEPARATOR}...{SEPARATOR}message

N defaults to the run's data.context_turns, the --context the training data was written
with (attnmt data chitchat --context N). Decoding defaults to the run's decode settings:
the chitchat presets sample from the top-p nucleus (--top-p 0.9 --temperature 0.8, no
3-gram repeated), because search gives short generic replies (BENCHMARKS.md, "Chitchat
chatbot").
--beam 1 --no-sample is greedy; --seed S replays a conversation exactly.

--rerank BACKWARD_RUN (a run of configs/chitchat_backward.yaml) picks each reply among
N candidates (--n-best N, default: the run's rerank.candidates) by MMI-bidi:
(1 - λ) log p(reply | message) + λ log p(message | reply) + γ words(reply), with
λ = --mmi-weight and γ = --length-bonus (default: the run's rerank section). The
candidates are sampled (with --sample) or the N best of the beam (--beam K, K >= N).
See docs/chat.md."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument(
        "--context",
        type=int,
        metavar="N",
        help="previous turns to feed (default: the run's data.context_turns)",
    )
    parser.add_argument(
        "--separator", default=SEPARATOR, help=f"joins turns into one line (default {SEPARATOR!r})"
    )
    add_rerank_arguments(parser)
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def add_rerank_arguments(parser: argparse.ArgumentParser) -> None:
    """--rerank, --mmi-weight and --length-bonus (chat and evaluate)."""
    parser.add_argument(
        "--rerank",
        metavar="BACKWARD_RUN",
        help="rerank each reply's candidates by MMI-bidi with this backward run",
    )
    parser.add_argument(
        "--mmi-weight",
        type=float,
        metavar="λ",
        help="weight of log p(message | reply) (default: rerank.mmi_weight)",
    )
    parser.add_argument(
        "--length-bonus",
        type=float,
        metavar="γ",
        help="added per word of the reply (default: rerank.length_bonus)",
    )


def load_reranking(
    args: argparse.Namespace, translator: Translator, candidates: int | None
) -> tuple[Reranker | None, RerankOptions]:
    """The backward run --rerank names, and λ, γ and N: the dialogue run's ``rerank``
    section with --mmi-weight, --length-bonus and `candidates` (from --n-best) over it."""
    weights = {"mmi_weight": args.mmi_weight, "length_bonus": args.length_bonus}
    if args.rerank is None:
        if any(value is not None for value in weights.values()):
            raise UserError("--mmi-weight and --length-bonus need --rerank BACKWARD_RUN")
        return None, translator.config.rerank
    options = rerank_options(translator.config.rerank, {**weights, "candidates": candidates})
    return Reranker.load(args.rerank, device=args.device), options


def show_candidates(bot: Chatbot) -> str:
    """What /candidates prints: each candidate of the last reply with its scores."""
    if bot.answer is None:
        return "(no reply yet: say something first)\n"
    lines = []
    for candidate in bot.answer.candidates:
        backward = "" if candidate.backward is None else f"  backward {candidate.backward:8.2f}"
        lines.append(
            f"{candidate.score:8.2f}  forward {candidate.forward:8.2f}{backward}  {candidate.text}"
        )
    how = "MMI score" if bot.answer.reranked else "search's rank score"
    return f"(best first, by {how})\n" + "\n".join(lines) + "\n"


def text_heatmap(src_words: Sequence[str], tgt_words: Sequence[str], weights: np.ndarray) -> str:
    """Attention as text: one row per source word, one column per reply word (numbered,
    named in a legend above), each cell a shade: blank below 0.05, then ░ ▒ ▓ █ for
    below 0.25, 0.5, 0.75 and up to 1. weights is (len(tgt_words), len(src_words))."""
    legend = "  ".join(f"{j + 1}={word}" for j, word in enumerate(tgt_words))
    width = max((len(word) for word in src_words), default=0)
    header = " " * width + " " + "".join(f"{j + 1:<3}" for j in range(len(tgt_words)))
    lines = [f"columns: {legend}", header.rstrip()]
    for i, word in enumerate(src_words):
        cells = "".join(_shade(float(weights[j, i])) * 2 + " " for j in range(len(tgt_words)))
        lines.append(f"{word:>{width}} {cells}".rstrip())
    return "\n".join(lines) + "\n"


def _shade(weight: float) -> str:
    """Blank below 0.05, then light to full in steps of a quarter."""
    return next((shade for below, shade in SHADES if weight < below), SHADES[-1][1])


def show_attention(bot: Chatbot, argument: str) -> str:
    """What /attention prints: the text heatmap, or where the figure was written."""
    if bot.last is None:
        return "(no reply yet: say something first)\n"
    if bot.last.attention is None:
        return "(this model has no attention)\n"
    src_words, tgt_words, weights = bot.last.word_attention()  # (T + 1, S) rows: reply + EOS
    if not argument:
        return text_heatmap(src_words, tgt_words, weights)
    try:
        from attnmt.viz.plot import attention_figure, save_figure
    except (ImportError, UserError):  # the viz extra is not installed
        return "(drawing a figure needs matplotlib: pip install 'attnmt[viz]')\n"
    figure = attention_figure(src_words, tgt_words, weights, title="last reply")
    return f"attention written to {save_figure(figure, argument)}\n"


def chat_loop(lines: Iterable[str], bot: Chatbot, write: Callable[[str], object]) -> int:
    """Answer each line until the lines end (Ctrl-D) or /quit; returns 0.

    Blank lines are skipped; /reset and /attention are handled here; a mistake in a command
    (an unwritable figure path, say) is reported in one line and the chat goes on.
    """
    for line in lines:
        message = line.strip()
        if not message:
            continue
        command, _, argument = message.partition(" ")
        try:
            if command == QUIT:
                break
            if command == RESET:
                bot.reset()
                write("(context cleared)\n")
            elif command == ATTENTION:
                write(show_attention(bot, argument.strip()))
            elif command == CANDIDATES:
                write(show_candidates(bot))
            elif command.startswith("/") and command[1:].isalpha():
                known = f"{RESET}, {ATTENTION}, {CANDIDATES} or {QUIT}"
                write(f"(unknown command {command}; try {known})\n")
            else:
                write(BOT + bot.reply(message) + "\n")
        except UserError as err:
            write(f"error: {err}\n")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.context is not None and args.context < 0:
        raise UserError(f"--context must be 0 or more (got {args.context})")
    translator, options = load_translator(args)
    check_dialogue(translator, args.model)
    reranker, rerank = load_reranking(args, translator, args.n_best)
    bot = Chatbot(
        translator,
        options,
        context=args.context,
        separator=args.separator,
        reranker=reranker,
        rerank=rerank,
    )

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    try:
        if sys.stdin.isatty():
            print(
                f"Chatting with {args.model} (context: {bot.window.turns} turns"
                f"{_reranking(args.rerank, rerank)}); "
                f"{RESET} clears it, {ATTENTION} shows the last reply's attention, "
                f"{CANDIDATES} its candidates, Ctrl-D quits.",
                file=sys.stderr,
            )
        return chat_loop(terminal_lines(PROMPT), bot, write)
    except KeyboardInterrupt:  # Ctrl-C while the model answers: quit quietly
        print(file=sys.stderr)
        return 0
    except OSError as err:  # the terminal went away or cannot be read: one line, no traceback
        raise UserError(f"the terminal cannot be used ({err.strerror or err})") from None


def _reranking(backward: str | None, options: RerankOptions) -> str:
    if backward is None:
        return ""
    return (
        f"; {options.candidates} candidates reranked with {backward}, "
        f"λ {options.mmi_weight:g}, γ {options.length_bonus:g}"
    )
