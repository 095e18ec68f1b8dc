"""Train a small attention model on a built-in synthetic language pair (no download)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from attnmt.config import Config, build_config
from attnmt.data.synthetic import write_task
from attnmt.data.text import read_parallel
from attnmt.errors import UserError
from attnmt.evaluate.evaluation import evaluate_split
from attnmt.io.checkpoint import find_model_checkpoint
from attnmt.io.run import Run
from attnmt.train.trainer import Trainer
from attnmt.translate.schema import Translation


def quickstart_config(run_dir: Path, minutes: float) -> Config:
    """The quickstart run: Bahdanau attention on the synthetic SVO -> SOV task."""
    data = run_dir / "data"
    split = lambda name: {"src": str(data / f"{name}.src"), "tgt": str(data / f"{name}.tgt")}  # noqa: E731
    overrides: dict[str, Any] = {
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
    return build_config([("quickstart preset", overrides)])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", default="runs/quickstart", help="where everything goes")
    parser.add_argument("--minutes", type=float, default=2.5, help="training time budget")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    config = quickstart_config(run_dir, args.minutes)
    try:
        find_model_checkpoint(run_dir)
        print(
            f"{run_dir} already holds a trained quickstart model; using it (delete it to retrain)"
        )
    except UserError:
        paths = write_task(run_dir / "data")
        print(
            f"synthetic task written to {paths['train'][0].parent}/ "
            "(train 20,000, dev 500, test 500 pairs)"
        )
        print("training a Bahdanau (concat) attention model; Ctrl-C stops and keeps a checkpoint")
        summary = Trainer.setup(config, progress_bar=False if args.no_progress else None).run()
        print(
            f"trained {summary.steps} steps in {summary.elapsed / 60:.1f} min "
            f"at {summary.tgt_tokens_per_s:,.0f} target tokens/s"
        )
    return report(run_dir)


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
    drawn = translations[longest].attention is not None and _draw(translations[longest], heatmap)
    print("files:")
    print(f"  data:         {run_dir / 'data'}/")
    print(f"  config:       {run_dir / 'config.yaml'}")
    print(f"  model:        {run_dir / 'checkpoints' / 'best.pt'}")
    print(f"  tokenizers:   {run_dir / 'tokenizer'}/")
    print(f"  metrics log:  {run_dir / 'metrics.jsonl'}")
    if drawn:
        print(f"  heatmap:      {heatmap}")
    return 0


def _draw(translation: Translation, path: Path) -> bool:
    """The word-level heatmap of one translation; False (and a note) without matplotlib."""
    try:
        from attnmt.viz.plot import attention_figure, save_figure
    except UserError as err:  # the viz extra is missing: the quickstart still succeeds
        print(f"(no heatmap: {err})")
        return False
    src_words, tgt_words, weights = translation.word_attention()
    save_figure(attention_figure(src_words, tgt_words, weights, title="Bahdanau attention"), path)
    return True
