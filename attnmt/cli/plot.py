"""Draw a model's attention or beam search tree for a sentence, or the learning curves of runs.

attnmt plot attention --model runs/quickstart --src "the dog sees a cat" --words
attnmt plot attention --model runs/transformer --src "..." --heads           every head
attnmt plot attention --model runs/transformer --src "..." --layer 2 --head 3
attnmt plot attention --model runs/transformer --src "..." --map encoder --heads
attnmt plot beam --model runs/quickstart --src "the dog sees a cat" --beam 3
attnmt plot curves runs/a runs/b --out curves.png
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from attnmt.config import ModelConfig
from attnmt.data.tokenize import merge_pieces
from attnmt.errors import UserError
from attnmt.io.run import Run
from attnmt.special import EOS_ID, SPECIAL_TOKENS
from attnmt.translate.schema import Translation
from attnmt.translate.translator import Translator
from attnmt.translate.words import merge_attention, merge_labels
from attnmt.viz.beam import beam_figure
from attnmt.viz.curves import curves_figure, read_metrics
from attnmt.viz.plot import FORMATS, attention_figure, heads_figure, nbest_figure, save_figure

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
    attention.add_argument(
        "--map",
        choices=MAPS,
        default="cross",
        help="which attention: cross (decoder over source, the default), or the encoder's or "
        "the decoder's self-attention (Transformer)",
    )
    attention.add_argument(
        "--layer",
        type=int,
        metavar="L",
        help="draw layer L (counted from 1; default: the last layer)",
    )
    attention.add_argument(
        "--head",
        type=int,
        metavar="H",
        help="draw head H alone (counted from 1; default: the mean over the heads)",
    )
    attention.add_argument(
        "--heads",
        action="store_true",
        help="a grid of every head: one row per layer (only --layer's with --layer), one "
        "column per head",
    )
    beam = kinds.add_parser(
        "beam",
        help="the beam search tree of one sentence",
        description="Beam-search --src with the run's model and draw every candidate of "
        "every step (kept in the beam, finished or pruned) with its log-probability so far, "
        "and the path that won (google/seq2seq's DumpBeams, Seq2Seq-Vis).",
    )
    beam.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run")
    beam.add_argument("--src", required=True, help="the source sentence")
    beam.add_argument(
        "--beam",
        type=int,
        default=None,
        metavar="K",
        help=f"beam size (default: the run's decode.beam, or {TREE_BEAM} where that is 1)",
    )
    beam.add_argument("--out", default="beam.png", help="PNG or SVG file to write")
    curves = kinds.add_parser(
        "curves",
        help="learning curves of one or more runs, overlaid",
        description="Train loss, dev loss and dev BLEU against step and time, from each "
        "run's metrics.jsonl.",
    )
    curves.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories")
    curves.add_argument("--out", default="curves.png", help="PNG or SVG file to write")


MAPS = ("cross", "encoder", "decoder")  # --map: cross-attention or a self-attention
TREE_BEAM = 3  # plot beam's beam where the run decodes greedily: a tree, not a line


@dataclass
class HeadChoice:
    """Which heads `attnmt plot attention` draws; the default is the one averaged map."""

    map: str = "cross"
    layer: int | None = None  # counted from 1; None: the last
    head: int | None = None  # counted from 1; None: the mean over the heads
    grid: bool = False  # every head (of `layer`, or of every layer)

    @property
    def default(self) -> bool:
        return self == HeadChoice()


def attention_plot(
    run_dir: Path,
    src: str,
    words: bool = False,
    n_best: int = 1,
    beam: int | None = None,
    heads: HeadChoice | None = None,
) -> Figure:
    """The heatmap (or one panel per hypothesis) of `src` translated by the run's model;
    with `heads`, one head, one layer or a grid of heads of any attention map."""
    heads = heads or HeadChoice()
    if not heads.default and n_best > 1:
        raise UserError("--n-best draws the default map; leave out --map, --layer, --head, --heads")
    if heads.head is not None and heads.grid:
        raise UserError("--head draws one head and --heads all of them: give one")
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
    translator = Translator.from_run(run)
    if not heads.default:
        options = translator.options(beam=beam, n_best=1, sample=False)
        translation = translator.translate(src, options, heads=True)
        return heads_plot(translation, heads, words, f"{run_dir.resolve().name}")
    translation = translator.translate(
        src, translator.options(beam=beam, n_best=n_best, sample=False)
    )
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
    """E.g. "luong / general / local-p" or "transformer 6+6 layers, 8 heads" for a title."""
    if model.arch == "transformer":
        decoder_layers = model.decoder_layers or model.layers
        return (
            f"transformer {model.layers}+{decoder_layers} layers, "
            f"{model.attention.heads} heads, mean of the last layer's heads"
        )
    return f"{model.decoder} / {model.attention.score} / {model.attention.window}"


def _head_maps(
    translation: Translation, kind: str, words: bool
) -> tuple[np.ndarray, list[str], list[str], tuple[str, str]]:
    """(weights (layers, heads, rows, columns), column labels, row labels without an EOS
    row's, (x axis name, y axis name)) of one attention map of `translation`."""
    weights = {
        "cross": translation.attention_heads,
        "encoder": translation.encoder_attention,
        "decoder": translation.decoder_attention,
    }[kind]
    if weights is None:
        what = "per-head attention" if kind == "cross" else f"{kind} self-attention"
        raise UserError(f"this model has no {what} to plot")
    src, tgt = translation.src_tokens, translation.tokens
    src_groups, tgt_groups = merge_pieces(src), merge_pieces(tgt)
    # Columns and rows: what each map attends over, and what attends.
    if kind == "cross":
        columns, rows, axes = src_groups, [*tgt_groups, [len(tgt)]], ("source", "target")
        x_pieces, y_pieces = list(src), list(tgt)
    elif kind == "encoder":
        columns, rows, axes = src_groups, src_groups, ("source (keys)", "source (queries)")
        x_pieces, y_pieces = list(src), list(src)
    else:  # decoder inputs <s>, y_1 .. y_T as keys; outputs y_1 .. y_T, EOS as queries
        shifted = [[i + 1 for i in group] for group in tgt_groups]
        columns, rows = [[0], *shifted], [*tgt_groups, [len(tgt)]]
        axes = ("decoder input (keys)", "target (queries)")
        x_pieces, y_pieces = [SPECIAL_TOKENS[2], *tgt], list(tgt)
    if not words:
        return weights, x_pieces, y_pieces, axes
    flat = weights.reshape(-1, *weights.shape[-2:])
    merged = np.stack([merge_attention(matrix, columns, rows) for matrix in flat])
    merged = merged.reshape(*weights.shape[:2], *merged.shape[-2:])
    y_words = merge_labels(y_pieces, rows[: len(rows) - (kind != "encoder")])
    x_words = merge_labels(x_pieces, columns)
    return merged, x_words, y_words, axes


def heads_plot(translation: Translation, choice: HeadChoice, words: bool, name: str) -> Figure:
    """One head, one layer's mean or a grid of heads of the map `choice` names."""
    weights, x_labels, y_labels, (x_axis, y_axis) = _head_maps(translation, choice.map, words)
    layers, heads = weights.shape[:2]
    layer = choice.layer if choice.layer is not None else layers
    if not 1 <= layer <= layers:
        raise UserError(f"--layer {layer}: this map has layers 1 to {layers}")
    if choice.head is not None and not 1 <= choice.head <= heads:
        raise UserError(f"--head {choice.head}: this model has heads 1 to {heads}")
    what = {"cross": "cross-attention", "encoder": "encoder self-attention"}.get(
        choice.map, "decoder self-attention"
    )
    if choice.grid:
        chosen = range(layers) if choice.layer is None else [layer - 1]
        return heads_figure(
            x_labels,
            y_labels,
            weights[list(chosen)],
            layer_names=[f"layer {i + 1}" for i in chosen],
            title=f"{name}: {what}, every head",
            x_label=x_axis,
            y_label=y_axis,
        )
    if choice.head is None:
        matrix = weights[layer - 1].mean(axis=0)
        title = f"{name}: {what}, layer {layer} of {layers}, mean of {heads} heads"
    else:
        matrix = weights[layer - 1, choice.head - 1]
        title = f"{name}: {what}, layer {layer} of {layers}, head {choice.head} of {heads}"
    return attention_figure(x_labels, y_labels, matrix, title=title, x_label=x_axis, y_label=y_axis)


def beam_plot(run_dir: Path, src: str, beam: int | None = None) -> tuple[Figure, str]:
    """The beam search tree of `src` and a line that sums it up."""
    if beam is not None and beam < 1:
        raise UserError(f"--beam must be at least 1, got {beam}")
    run = Run.load(run_dir, device="cpu")
    translator = Translator.from_run(run)
    if beam is None:
        beam = run.config.decode.beam if run.config.decode.beam > 1 else TREE_BEAM
    options = translator.options(beam=beam, n_best=1, sample=False)
    translation, trace = translator.beam_tree(src, options)
    nodes = trace.candidates.get(0, [])
    eos = SPECIAL_TOKENS[EOS_ID]
    labels = [
        eos if node.token == EOS_ID else translator.tgt_tok.to_pieces([node.token])[0]
        for node in nodes
    ]
    counts = {
        fate: sum(node.fate == fate for node in nodes) for fate in ("live", "ended", "pruned")
    }
    title = (
        f'{run_dir.resolve().name}: beam {beam}, "{translation.text}" '
        f"(log p {translation.score:.2f}, s {translation.rank_score:.2f})"
    )
    figure = beam_figure(
        nodes, labels, trace.path(0, trace.won[0]) if 0 in trace.won else (), title=title
    )
    summary = (
        f"beam {beam}: {len(nodes)} candidates in {max(n.step for n in nodes)} steps "
        f"({counts['live']} kept, {counts['ended']} finished, {counts['pruned']} pruned); "
        f"best: {translation.text}"
    )
    return figure, summary


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
        choice = HeadChoice(args.map, args.layer, args.head, args.heads)
        figure = attention_plot(
            Path(args.model), args.src, args.words, args.n_best, args.beam, choice
        )
    elif args.kind == "beam":
        figure, summary = beam_plot(Path(args.model), args.src, args.beam)
        print(summary)
    else:
        figure = curves_plot([Path(run_dir) for run_dir in args.runs])
    path = save_figure(figure, args.out)
    print(f"wrote {path}")
    return 0
