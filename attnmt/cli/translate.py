"""Translate text with a trained model: stdin to stdout, files, or an interactive prompt."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch

from attnmt.config import DecodeOptions
from attnmt.device import PRECISIONS
from attnmt.errors import UserError
from attnmt.files import atomic_write
from attnmt.translate.schema import UNITS, Translation, formatter
from attnmt.translate.streaming import input_lines, interactive, terminal_lines, translate_stream
from attnmt.translate.translator import Translator

PROMPT = "> "


EPILOG = """\
output formats:
  text, --n-best 1   one translation per input line
  text, --n-best N   N lines per input line: INDEX ||| TRANSLATION ||| SCORE, where INDEX
                     counts input lines from 0 and SCORE is the model's log-probability
  json               one JSON object per input line (the schema POST /translate of
                     `attnmt serve` answers with): text, score, rank_score, tokens,
                     source_tokens, attention (rows: output tokens and EOS; columns:
                     source tokens; 4 decimals) and hypotheses: the n-best list, best
                     first, each with text, score, rank_score, tokens and attention.
                     --units words merges subword pieces into words (tokens, source
                     tokens and attention alike)

Without --input, stdin is read; on a terminal (and without --output) that gives an
interactive prompt, one translation per line (Ctrl-D or Ctrl-C quits). Empty lines
translate to empty lines."""


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --ensemble and the decoding options (each default: the run's decode key)."""
    parser.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run directory")
    parser.add_argument(
        "--ensemble",
        nargs="+",
        default=[],
        metavar="RUN_DIR",
        help="more run directories to average with --model (same tokenizers required)",
    )
    add_checkpoint_arguments(parser)
    parser.add_argument(
        "--beam", type=int, metavar="K", help="beam size; 1 is greedy (default: decode.beam)"
    )
    parser.add_argument(
        "--n-best", type=int, metavar="N", help="hypotheses per input (at most --beam)"
    )
    parser.add_argument(
        "--alpha", type=float, metavar="A", help="GNMT length penalty (default: decode.alpha)"
    )
    parser.add_argument(
        "--beta", type=float, metavar="B", help="GNMT coverage penalty (default: decode.beta)"
    )
    parser.add_argument(
        "--sample",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sample instead of searching",
    )
    parser.add_argument("--temperature", type=float, metavar="T", help="sampling temperature")
    parser.add_argument(
        "--top-k", type=int, metavar="K", help="sample from the k most likely tokens"
    )
    parser.add_argument("--top-p", type=float, metavar="P", help="sample from the top-p nucleus")
    parser.add_argument("--max-len", type=int, metavar="N", help="longest output in tokens")
    parser.add_argument(
        "--batch-tokens", type=int, metavar="N", help="source tokens per decoding batch"
    )
    parser.add_argument(
        "--seed", type=int, metavar="S", help="seed for --sample (reproducible draws)"
    )
    parser.add_argument("--device", default="auto", metavar="D", help="auto, cpu, cuda or mps")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for torch")


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """--which and --precision: which weights of a run, computed how (translate, chat,
    evaluate, serve)."""
    parser.add_argument(
        "--which",
        default="best",
        help="checkpoint: best, last, averaged (attnmt average), int8 (attnmt export "
        "--int8) or a path",
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto (as the run trained: fp32 on CPUs without native bf16), fp32, or bf16 "
        "autocast (refused on a CPU without native bf16); int8 models compute in fp32",
    )


def decode_options(args: argparse.Namespace, translator: Translator) -> DecodeOptions:
    """The one DecodeOptions of this command: the run's ``decode`` settings with the
    options given on the command line (those not given keep the run's value)."""
    return translator.options(
        beam=args.beam,
        n_best=args.n_best,
        alpha=args.alpha,
        beta=args.beta,
        sample=args.sample,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        max_len=args.max_len,
        batch_tokens=args.batch_tokens,
        seed=args.seed,
    )


def load_translator(args: argparse.Namespace) -> tuple[Translator, DecodeOptions]:
    """The Translator the arguments name, and the decoding options, checked at once."""
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be at least 1 (got {args.threads})")
        torch.set_num_threads(args.threads)
    translator = Translator.load(
        args.model,
        ensemble=args.ensemble,
        device=args.device,
        which=args.which,
        precision=args.precision,
    )
    return translator, decode_options(args, translator)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument(
        "--input", metavar="FILE", help="source text, one sentence per line (.gz ok; - stdin)"
    )
    parser.add_argument(
        "--output", metavar="FILE", help="write here (atomically) instead of stdout"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="see below")
    parser.add_argument(
        "--units",
        choices=UNITS,
        default="pieces",
        help="json: tokens and attention over subword pieces or whole words",
    )
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def run(args: argparse.Namespace) -> int:
    translator, options = load_translator(args)
    render = formatter(args.format, options.n_best, args.units)

    def translate(chunk: list[str], number: int) -> list[Translation]:
        return translator.translate(chunk, chunk_options(options, number))

    if args.input is None and args.output is None and sys.stdin.isatty():
        return _interactive(translator, options, render)
    lines = input_lines(args.input)
    if args.output is None:
        translate_stream(translate, lines, _write_stdout, render)
        return 0

    def write_file(handle: BinaryIO) -> None:
        translate_stream(translate, lines, lambda text: handle.write(text.encode()), render)

    atomic_write(Path(args.output), write_file)
    return 0


def _write_stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def chunk_options(options: DecodeOptions, number: int) -> DecodeOptions:
    """The options for chunk `number` of a stream: a seeded run draws anew in each chunk
    (seed + number), so chunks do not repeat each other's draws."""
    if options.seed is None or number == 0:
        return options
    return options.model_copy(update={"seed": options.seed + number})


def _interactive(
    translator: Translator, options: DecodeOptions, render: Callable[[int, Translation], str]
) -> int:
    print("Type a sentence to translate; Ctrl-D quits.", file=sys.stderr)
    try:
        return interactive(
            lambda line: translator.translate(line, options),
            terminal_lines(PROMPT),
            _write_stdout,
            render,
        )
    except KeyboardInterrupt:  # Ctrl-C while translating: quit quietly, like Ctrl-D
        print(file=sys.stderr)
        return 0
