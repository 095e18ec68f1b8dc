"""Train a small attention model on a built-in synthetic language pair (no download)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from attnmt.checkpoint import find_model_checkpoint, load_model
from attnmt.config import Config, build_config
from attnmt.data import load_corpus, read_parallel
from attnmt.device import resolve_precision
from attnmt.errors import UserError
from attnmt.evaluate import corpus_metrics, detokenize, exact_match, translate_corpus
from attnmt.study import word_attention
from attnmt.synthetic import write_task
from attnmt.tokenize import load_tokenizers, merge_pieces
from attnmt.train import Trainer


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
        summary = Trainer(config, progress_bar=False if args.no_progress else None).run()
        print(
            f"trained {summary.steps} steps in {summary.elapsed / 60:.1f} min "
            f"at {summary.tgt_tokens_per_s:,.0f} target tokens/s"
        )
    return report(run_dir)


def report(run_dir: Path) -> int:
    """Score the test split, show translations and draw one attention heatmap."""
    from attnmt.plot import attention_figure, save_figure  # plotting stays out of the library

    model, config = load_model(run_dir)
    device = torch.device("cpu")
    dtype = resolve_precision(config.train.precision, device)
    src_tok, tgt_tok = load_tokenizers(run_dir / "tokenizer")
    test = config.data.test
    corpus = load_corpus(test, "test", src_tok, tgt_tok, config.data, run_dir / "cache", False)
    pairs = list(read_parallel(test, "test"))
    results = translate_corpus(model, corpus, config.decode, device, dtype)
    hypotheses = detokenize(results, tgt_tok)
    references = [tgt for _, tgt in pairs]
    scores = corpus_metrics(hypotheses, references)
    exact = exact_match(hypotheses, references)
    print(
        f"\ntest: exact match {exact:.1%}, BLEU {scores['bleu']:.1f}, "
        f"chrF {scores['chrf']:.1f} ({len(pairs)} sentences)\n"
    )
    shown = range(min(50, len(pairs)))
    longest = max(shown, key=lambda i: len(pairs[i][0].split()))  # the heatmap's sentence
    for i in [0, 1, longest]:
        mark = "ok" if hypotheses[i] == references[i] else "differs from reference"
        print(f"  source: {pairs[i][0]}\n  output: {hypotheses[i]}   [{mark}]\n")
    best = results[longest][0]
    heatmap = run_dir / "attention.png"
    if best.attention is not None:
        src_words, tgt_words, weights = word_attention(
            src_tok.to_pieces(corpus.src(longest).tolist()),
            tgt_tok.to_pieces(best.tokens),
            best.attention.numpy(),
            merge_pieces,
        )
        figure = attention_figure(src_words, tgt_words, weights, title="Bahdanau attention")
        save_figure(figure, heatmap)
    print("files:")
    print(f"  data:         {run_dir / 'data'}/")
    print(f"  config:       {run_dir / 'config.yaml'}")
    print(f"  model:        {run_dir / 'checkpoints' / 'best.pt'}")
    print(f"  tokenizers:   {run_dir / 'tokenizer'}/")
    print(f"  metrics log:  {run_dir / 'metrics.jsonl'}")
    if best.attention is not None:
        print(f"  heatmap:      {heatmap}")
    return 0
