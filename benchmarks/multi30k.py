"""Train the reference RNN-attention model on Multi30k de->en for a fixed wall-clock
budget, then report test_2016_flickr BLEU (greedy and beam 5), training speed, decoding
speed, peak memory and parameter count. Results are appended to BENCHMARKS.md.

    python -m benchmarks.multi30k                     # 30 minutes, 2 threads
    python -m benchmarks.multi30k --minutes 5 --set train.precision=fp32
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import torch

from attnmt.config import decode_options, load_config
from attnmt.evaluate.evaluation import evaluate_split
from attnmt.io.run import Run
from attnmt.models.seq2seq import count_parameters
from attnmt.train.trainer import Trainer
from benchmarks import common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default=str(common.ROOT / "configs/multi30k_de_en_bahdanau.yaml")
    )
    parser.add_argument("--data", default=str(common.ROOT.parent / "shared/data/multi30k"))
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = args.run_dir or str(common.ROOT / "runs/bench" / f"multi30k-{stamp}")
    data = Path(args.data)
    overrides = [
        f"run_dir={run_dir}",
        f"train.max_minutes={args.minutes}",
        f"train.threads={args.threads}",
    ]
    overrides += common.multi30k_overrides(data)
    config = load_config(args.config, overrides + args.set)
    torch.set_num_threads(args.threads)

    summary = Trainer.setup(config).run()
    run = Run.load(run_dir, device="cpu")
    model, config, src_tok = run.model, run.config, run.src_tok
    dtype = run.dtype
    rows = [
        (
            "model",
            f"{config.model.decoder} / {config.model.attention.score}, {config.model.rnn} "
            f"{config.model.hidden_dim // 2}x2 encoder, decoder {config.model.hidden_dim}, "
            f"embeddings {config.model.embed_dim}, vocab {src_tok.vocab_size}",
        ),
        ("parameters", f"{count_parameters(model):,}"),
        ("precision", str(dtype or torch.float32).replace("torch.", "")),
        (
            "training",
            f"{summary.steps} steps, {summary.elapsed / 60:.1f} min ({summary.stop_reason})",
        ),
        ("training target tokens/s", f"{summary.tgt_tokens_per_s:,.0f}"),
        ("best dev BLEU (greedy) at step", f"{summary.best_step}"),
    ]
    for beam in (1, 5):
        evaluation = evaluate_split(
            run, config.data.test, decode_options(run.config.decode, {"beam": beam}), loss=False
        )
        scores, seconds = evaluation.scores, evaluation.decode_seconds
        label = "greedy" if beam == 1 else f"beam {beam}"
        rows += [
            (f"test_2016_flickr BLEU, {label}", f"{scores['bleu']:.2f}"),
            (f"test_2016_flickr chrF, {label}", f"{scores['chrf']:.2f}"),
            (
                f"decoding sentences/s, {label} (batched)",
                f"{len(evaluation.references) / seconds:,.0f}",
            ),
        ]
    rows.append(("peak RSS", f"{common.peak_rss_mb():,.0f} MB"))
    common.append(f"Multi30k de->en, {args.minutes:g} min training budget", rows)


if __name__ == "__main__":
    main()
