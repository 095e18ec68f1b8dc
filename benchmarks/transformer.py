"""The Transformer preset against the RNN reference preset on Multi30k de->en: both trained
for the same wall-clock budget in one run on one machine, one after the other, each in its
own process (so each peak RSS is its own). For each: test_2016_flickr BLEU and chrF
(greedy and beam 5; for the Transformer also its last checkpoints averaged), training
target tokens/s, decoding sentences/s, peak RSS and parameters. One BENCHMARKS.md
section with both side by side.

    python -m benchmarks.transformer                          # 30 minutes each, 2 threads
    nice -n 10 python -m benchmarks.transformer --minutes 1 --threads 1 --note "smoke run"
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from benchmarks import common

PRESETS = {  # column name -> preset
    "transformer": "configs/multi30k_de_en_transformer.yaml",
    "rnn reference": "configs/multi30k_de_en_bahdanau.yaml",
}
AVERAGE_LAST = 5  # checkpoints averaged for the Transformer's extra row


def train_and_measure(args: argparse.Namespace) -> dict[str, Any]:
    """In the child process: train one preset, evaluate it, measure it."""
    from attnmt.cli.average import average_run
    from attnmt.config import decode_options, load_config
    from attnmt.evaluate.evaluation import evaluate_split
    from attnmt.io.checkpoint import step_checkpoints
    from attnmt.io.run import Run
    from attnmt.models.seq2seq import count_parameters
    from attnmt.train.trainer import Trainer

    data = Path(args.data)
    overrides = [
        f"run_dir={args.run_dir}",
        f"train.max_minutes={args.minutes}",
        f"train.threads={args.threads}",
    ]
    overrides += common.multi30k_overrides(data)
    config = load_config(args.child, overrides + args.set)
    torch.set_num_threads(args.threads)
    summary = Trainer.setup(config, progress_bar=False).run()
    run = Run.load(args.run_dir, device="cpu")
    result: dict[str, Any] = {
        "model": describe(run.config.model.model_dump(), run.src_tok.vocab_size),
        "parameters": count_parameters(run.model),
        "precision": str(run.dtype or torch.float32).replace("torch.", ""),
        "steps": summary.steps,
        "minutes": summary.elapsed / 60,
        "stop": summary.stop_reason,
        "tgt_tokens_per_s": summary.tgt_tokens_per_s,
        "best_step": summary.best_step,
    }
    for beam in (1, 5):
        evaluation = evaluate_split(
            run, run.config.data.test, decode_options(run.config.decode, {"beam": beam}), loss=False
        )
        result[f"bleu_{beam}"] = evaluation.scores["bleu"]
        result[f"chrf_{beam}"] = evaluation.scores["chrf"]
        result[f"sents_per_s_{beam}"] = len(evaluation.references) / evaluation.decode_seconds
    if config.model.arch == "transformer":
        last = min(AVERAGE_LAST, len(step_checkpoints(Path(args.run_dir))))
        if last >= 2:
            average_run(Path(args.run_dir), last)
            averaged = Run.load(args.run_dir, which="averaged", device="cpu")
            evaluation = evaluate_split(
                averaged,
                run.config.data.test,
                decode_options(run.config.decode, {"beam": 5}),
                loss=False,
            )
            result["averaged"] = last
            result["bleu_avg_5"] = evaluation.scores["bleu"]
            result["chrf_avg_5"] = evaluation.scores["chrf"]
    result["peak_rss_mb"] = common.peak_rss_mb()
    return result


def describe(model: dict[str, Any], vocab: int) -> str:
    if model["arch"] == "transformer":
        layers = f"{model['layers']}+{model['decoder_layers'] or model['layers']}"
        return (
            f"transformer {layers} layers, d_model {model['embed_dim']}, "
            f"{model['attention']['heads']} heads, d_ff {model['ff_dim'] or 4 * model['embed_dim']}"
            f", {model['norm']}-norm, vocab {vocab}"
        )
    return (
        f"{model['decoder']} / {model['attention']['score']}, {model['rnn']} "
        f"{model['hidden_dim'] // 2}x2 encoder, decoder {model['hidden_dim']}, "
        f"embeddings {model['embed_dim']}, vocab {vocab}"
    )


ROWS: list[tuple[str, str, str]] = [  # label, result key, format
    ("model", "model", "{}"),
    ("parameters", "parameters", "{:,}"),
    ("precision", "precision", "{}"),
    ("training steps", "steps", "{:,}"),
    ("training minutes (stop)", "minutes", "{:.1f}"),
    ("training target tokens/s", "tgt_tokens_per_s", "{:,.0f}"),
    ("best dev BLEU (greedy) at step", "best_step", "{}"),
    ("test_2016_flickr BLEU, greedy", "bleu_1", "{:.2f}"),
    ("test_2016_flickr chrF, greedy", "chrf_1", "{:.2f}"),
    ("decoding sentences/s, greedy (batched)", "sents_per_s_1", "{:,.0f}"),
    ("test_2016_flickr BLEU, beam 5", "bleu_5", "{:.2f}"),
    ("test_2016_flickr chrF, beam 5", "chrf_5", "{:.2f}"),
    ("decoding sentences/s, beam 5 (batched)", "sents_per_s_5", "{:,.0f}"),
    ("test_2016_flickr BLEU, beam 5, last checkpoints averaged", "bleu_avg_5", "{:.2f}"),
    ("peak RSS (MB)", "peak_rss_mb", "{:,.0f}"),
]


def cell(result: dict[str, Any], key: str, fmt: str) -> str:
    if key not in result:
        return "–"
    text = fmt.format(result[key])
    if key == "minutes":
        text += f" ({result['stop']})"
    if key == "bleu_avg_5":
        text += f" (last {result['averaged']})"
    return text


def section(minutes: float, results: dict[str, dict[str, Any]], note: str) -> str:
    """The BENCHMARKS.md section: command, machine, date, commit, the table, the ratios."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    names = list(results)
    lines = [
        f"\n## Transformer against the RNN reference, Multi30k de->en, {minutes:g} min each\n",
        f"- command: `{common.command_line()}`",
        f"- machine: {common.machine()}",
        f"- date: {now}",
        f"- commit: {common.commit()}",
        "",
        "| measure | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label, key, fmt in ROWS:
        lines.append(
            f"| {label} | " + " | ".join(cell(r, key, fmt) for r in results.values()) + " |"
        )
    if len(names) == 2:
        first, second = (results[name] for name in names)
        lines += [
            "",
            f"{names[0]} − {names[1]}: BLEU beam 5 {first['bleu_5'] - second['bleu_5']:+.2f} "
            f"(target ≥ +2), greedy {first['bleu_1'] - second['bleu_1']:+.2f}; training "
            f"throughput {first['tgt_tokens_per_s'] / second['tgt_tokens_per_s']:.2f}× "
            f"(target ≥ 2×).",
        ]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(common.ROOT.parent / "shared/data/multi30k"))
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget of each")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--run-dir", default=None, help="folder for both runs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--note", default="", help="a line added under the table")
    parser.add_argument("--out", default=str(common.BENCHMARKS), help="the file to append to")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a preset, in the child process
    parser.add_argument("--json", help=argparse.SUPPRESS)  # where the child writes its result
    args = parser.parse_args()
    if args.child:
        Path(args.json).write_text(json.dumps(train_and_measure(args)), encoding="utf-8")
        return

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = Path(args.run_dir or common.ROOT / "runs/bench" / f"transformer-{stamp}")
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, preset in PRESETS.items():
        slug = name.replace(" ", "_")
        out = folder / f"{slug}.json"
        command = [
            sys.executable,
            "-m",
            "benchmarks.transformer",
            "--child",
            str(common.ROOT / preset),
            "--json",
            str(out),
            "--run-dir",
            str(folder / slug),
            "--data",
            args.data,
            "--minutes",
            str(args.minutes),
            "--threads",
            str(args.threads),
            *[f"--set={item}" for item in args.set],
        ]
        print(f"training {name} ({preset}) for {args.minutes:g} min", flush=True)
        subprocess.run(command, cwd=common.ROOT, check=True)
        results[name] = json.loads(out.read_text(encoding="utf-8"))
    torch.set_num_threads(args.threads)  # what the section's machine line reports
    text = section(args.minutes, results, args.note)
    with Path(args.out).open("a", encoding="utf-8") as handle:
        handle.write(text)
    print(text)


if __name__ == "__main__":
    main()
