"""Train a small attention model on a built-in synthetic language pair (no download).

``--set KEY=VALUE`` changes any config key of the quickstart's preset (as ``attnmt train
--set`` does), so one command tries another score, decoder, window or the Transformer."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from attnmt.compare.runner import config_differences
from attnmt.config import Config, ModelConfig, build_config, parse_override, without_other_family
from attnmt.data.synthetic import write_task
from attnmt.data.text import read_parallel
from attnmt.errors import UserError
from attnmt.evaluate.evaluation import evaluate_split
from attnmt.io.checkpoint import find_model_checkpoint
from attnmt.io.run import Run
from attnmt.train.trainer import Trainer
from attnmt.translate.schema import Translation


def quickstart_config(run_dir: Path, minutes: float, overrides: Sequence[str] = ()) -> Config:
    """The quickstart run: Bahdanau attention on the synthetic SVO -> SOV task, with each
    ``key=value`` of `overrides` applied over it. When they switch ``model.arch``, the
    preset's model keys of the other family are left out, so that the switch alone works."""
    sets = [(f"--set {text}", parse_override(text)) for text in overrides]
    if any("run_dir" in tree for _, tree in sets):
        raise UserError("--set run_dir: the quickstart's run directory is --run-dir DIR")
    data = run_dir / "data"
    split = lambda name: {"src": str(data / f"{name}.src"), "tgt": str(data / f"{name}.tgt")}  # noqa: E731
    preset: dict[str, Any] = {
        "run_dir": str(run_dir),
        "model": {
            "decoder": "bahdanau",
            "attention": {"score": "concat"},
            "embed_dim": 64,
            "hidden_dim": 128,
            "dropout": 0.1,
        },
        "data": {
            "train": split("train"),
            "dev": split("dev"),
            "test": split("test"),
            "tokenizer": "word",
            "vocab_size": 200,
            "max_len": 40,
        },
        "train": {
            "max_minutes": minutes,
            "batch_tokens": 3000,
            "lr": 3e-3,
            "validate_every": 250,
            "log_every": 50,
            "patience": 3,
            "label_smoothing": 0.0,
        },
        "decode": {"beam": 1},
    }
    preset["model"] = without_other_family(preset["model"], _arch(sets))
    return build_config([("quickstart preset", preset), *sets])


def _arch(sets: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """The model.arch the last override that names one asks for ("rnn" if none does)."""
    arch = "rnn"
    for _, tree in sets:
        model = tree.get("model")
        if isinstance(model, Mapping) and isinstance(model.get("arch"), str):
            arch = model["arch"]
    return arch


def describe(model: ModelConfig) -> str:
    """A few words for the model a config trains, e.g. "Bahdanau attention (concat)"."""
    if model.arch == "transformer":
        return "Transformer"
    if model.decoder == "none":
        return "encoder-decoder without attention"
    attention = model.attention
    window = "" if attention.window == "global" else f", {attention.window}"
    return f"{model.decoder.capitalize()} attention ({attention.score}{window})"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", default="runs/quickstart", help="where everything goes")
    parser.add_argument("--minutes", type=float, default=2.5, help="training time budget")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key of the quickstart preset (repeatable), "
        "e.g. --set model.attention.score=dot --run-dir runs/dot",
    )


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    config = quickstart_config(run_dir, args.minutes, args.set)
    try:
        find_model_checkpoint(run_dir)
        trained = True
    except UserError:
        trained = False
    if trained:
        _check_same_settings(run_dir, config)
        print(
            f"{run_dir} already holds a trained quickstart model; using it (delete it to retrain)"
        )
    else:
        paths = write_task(run_dir / "data")
        print(
            f"synthetic task written to {paths['train'][0].parent}/ "
            "(train 20,000, dev 500, test 500 pairs)"
        )
        print(f"training a {describe(config.model)} model; Ctrl-C stops and keeps a checkpoint")
        summary = Trainer.setup(config, progress_bar=False if args.no_progress else None).run()
        print(
            f"trained {summary.steps} steps in {summary.elapsed / 60:.1f} min "
            f"at {summary.tgt_tokens_per_s:,.0f} target tokens/s"
        )
    return report(run_dir)


def _check_same_settings(run_dir: Path, config: Config) -> None:
    """Refuse to report a model trained with other settings than those asked for (the
    time budget aside) as if it were the one asked for."""
    differing = [key for key in config_differences(run_dir, config) if key != "train.max_minutes"]
    if differing:
        shown = ", ".join(differing[:4]) + (", ..." if len(differing) > 4 else "")
        raise UserError(
            f"{run_dir} holds a model trained with other settings ({shown}); "
            "give another --run-dir or delete it"
        )


def report(run_dir: Path) -> int:
    """Score the test split, show translations and draw one attention heatmap."""
    run = Run.load(run_dir, device="cpu")
    evaluation = evaluate_split(run, run.config.data.test, loss=False)
    scores, translations = evaluation.scores, evaluation.translations
    hypotheses, references = evaluation.hypotheses, evaluation.references
    sources = [src for src, _ in read_parallel(run.config.data.test, "test")]
    print(
        f"\ntest: exact match {scores['exact']:.1%}, BLEU {scores['bleu']:.1f}, "
        f"chrF {scores['chrf']:.1f} ({len(sources)} sentences)\n"
    )
    shown = range(min(50, len(sources)))
    longest = max(shown, key=lambda i: len(sources[i].split()))  # the heatmap's sentence
    for i in [0, 1, longest]:
        mark = "ok" if hypotheses[i] == references[i] else "differs from reference"
        print(f"  source: {sources[i]}\n  output: {hypotheses[i]}   [{mark}]\n")
    heatmap = run_dir / "attention.png"
    title = describe(run.config.model)
    drawn = translations[longest].attention is not None and _draw(
        translations[longest], heatmap, title
    )
    print("files:")
    print(f"  data:         {run_dir / 'data'}/")
    print(f"  config:       {run_dir / 'config.yaml'}")
    print(f"  model:        {run_dir / 'checkpoints' / 'best.pt'}")
    print(f"  tokenizers:   {run_dir / 'tokenizer'}/")
    print(f"  metrics log:  {run_dir / 'metrics.jsonl'}")
    if drawn:
        print(f"  heatmap:      {heatmap}")
    return 0


def _draw(translation: Translation, path: Path, title: str) -> bool:
    """The word-level heatmap of one translation; False (and a note) without matplotlib."""
    try:
        from attnmt.viz.plot import attention_figure, save_figure
    except UserError as err:  # the viz extra is missing: the quickstart still succeeds
        print(f"(no heatmap: {err})")
        return False
    src_words, tgt_words, weights = translation.word_attention()
    save_figure(attention_figure(src_words, tgt_words, weights, title=title), path)
    return True
