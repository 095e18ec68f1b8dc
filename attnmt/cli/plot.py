"""Draw a trained model's attention for a sentence, or the learning curves of runs.

attnmt plot attention --model runs/quickstart --src "the dog sees a cat" --words
attnmt plot curves runs/a runs/b --out curves.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from attnmt.config import ModelConfig
from attnmt.errors import UserError
from attnmt.io.run import Run
from attnmt.translate.translator import Translation, Translator
from attnmt.viz.plot import (
    FORMATS,
    attention_figure,
    curves_figure,
    nbest_figure,
    read_metrics,
    save_figure,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    attention = kinds.add_parser(
        "attention",
        help="heatmap of the attention while translating one sentence",
        description="Translate --src with the run's model and draw its attention weights: "
        "source tokens along x, output tokens down y (the last row is the EOS step).",
    )
    attention.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run")
    attention.add_argument("--src", required=True, help="the source sentence")
    attention.add_argument("--out", default="attention.png", help="PNG or SVG file to write")
    attention.add_argument("--words", action="store_true", help="merge subword pieces into words")
    attention.add_argument(
        "--n-best", type=int, default=1, metavar="N", help="one panel per hypothesis of the N best"
    )
    attention.add_argument(
        "--beam", type=int, default=None, metavar="K", help="beam size (default: decode.beam)"
    )
    curves = kinds.add_parser(
        "curves",
        help="learning curves of one or more runs, overlaid",
        description="Train loss, dev loss and dev BLEU against step and time, from each "
        "run's metrics.jsonl.",
    )
    curves.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories")
    curves.add_argument("--out", default="curves.png", help="PNG or SVG file to write")


def attention_plot(
    run_dir: Path, src: str, words: bool = False, n_best: int = 1, beam: int | None = None
) -> Figure:
    """The heatmap (or one panel per hypothesis) of `src` translated by the run's model."""
    if n_best < 1:
        raise UserError(f"--n-best must be at least 1, got {n_best}")
    if beam is not None and beam < 1:
        raise UserError(f"--beam must be at least 1, got {beam}")
    run = Run.load(run_dir, device="cpu")
    if not run.model.has_attention:
        raise UserError(
            f"{run_dir} has no attention to plot (model.decoder is "
            f"{run.config.model.decoder!r}); train a model with attention"
        )
    if not run.src_tok.encode(src):
        raise UserError("the source sentence is empty")
    beam = beam if beam is not None else max(run.config.decode.beam, n_best)
    if n_best > beam:
        raise UserError(f"--n-best {n_best} needs a beam of at least {n_best} (got {beam})")
    translation = Translator.from_run(run).translate(src, beam=beam, n_best=n_best, sample=False)
    panels = [_labelled(h, words) for h in translation.hypotheses]
    if n_best == 1:
        src_tokens, tgt_tokens, weights = panels[0]
        title = f"{run_dir.resolve().name}: {_mechanism(run.config.model)}"
        return attention_figure(src_tokens, tgt_tokens, weights, title=title)
    hyps = [
        (tgt, weights, h.score)
        for (_, tgt, weights), h in zip(panels, translation.hypotheses, strict=True)
    ]
    return nbest_figure(panels[0][0], hyps)


def _labelled(translation: Translation, words: bool) -> tuple[list[str], list[str], np.ndarray]:
    """(source labels, output labels without EOS, weights with the EOS row)."""
    if translation.attention is None:
        raise UserError("the model returned no attention weights")
    if words:
        src_words, tgt_words, weights = translation.word_attention()
        return src_words, tgt_words[:-1], weights
    return translation.src_tokens, translation.tokens, translation.attention


def _mechanism(model: ModelConfig) -> str:
    """E.g. "luong / general / local-p" for a figure title."""
    return f"{model.decoder} / {model.attention.score} / {model.attention.window}"


def curves_plot(run_dirs: list[Path]) -> Figure:
    """Learning curves of the runs, each under its directory name (made unique)."""
    runs = {}
    for run_dir in run_dirs:
        name = run_dir.resolve().name
        while name in runs:
            name += "'"
        runs[name] = read_metrics(run_dir / "metrics.jsonl")
    return curves_figure(runs)


def run(args: argparse.Namespace) -> int:
    if Path(args.out).suffix.lower() not in FORMATS:  # fail before any decoding
        raise UserError(f"--out {args.out}: use a file name ending in .png or .svg")
    if args.kind == "attention":
        figure = attention_plot(Path(args.model), args.src, args.words, args.n_best, args.beam)
    else:
        figure = curves_plot([Path(run_dir) for run_dir in args.runs])
    path = save_figure(figure, args.out)
    print(f"wrote {path}")
    return 0
