"""Decode Multi30k test_2016_flickr (de->en, 1,000 sentences) with a trained run, greedy
and beam 5, each batched and one sentence at a time, through the Translator API; report
sentences/s, target tokens/s, BLEU and peak memory, appended to BENCHMARKS.md.

    python -m benchmarks.decode --model runs/bench/reference
    python -m benchmarks.decode --model runs/bench/reference --profile   # where time goes

--profile decodes the test set batched with beam 5 under torch.profiler (top ops by self
CPU time) and cProfile (top Python functions by own time), and records nothing. Any run
and test set work for a trial, e.g. the quickstart run on its synthetic test set:

    python -m benchmarks.decode --model runs/quickstart --no-record \\
        --src runs/quickstart/data/test.src --ref runs/quickstart/data/test.tgt

Target tokens are the output tokens of the best hypotheses, EOS not counted.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import cast

import torch

from attnmt import Translation, Translator
from attnmt.config import SplitPaths
from attnmt.data.text import read_parallel
from attnmt.errors import UserError
from attnmt.evaluate.metrics import corpus_metrics
from attnmt.models.seq2seq import Seq2Seq, count_parameters
from benchmarks import common

TEST = "test_2016_flickr"
SEARCHES = (("greedy", 1), ("beam 5", 5))
WARMUP_SENTENCES = 20  # decoded once before timing: lazy initialisation is not measured
PROFILE_ROWS = 25


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, metavar="RUN_DIR", help="trained run")
    parser.add_argument("--which", default="best", help="checkpoint: best, last or a path")
    data = common.ROOT.parent / "shared/data/multi30k"
    parser.add_argument("--src", default=str(data / f"{TEST}.de.gz"), help="source sentences")
    parser.add_argument("--ref", default=str(data / f"{TEST}.en.gz"), help="references")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--limit", type=int, help="decode only the first N sentences")
    parser.add_argument("--profile", action="store_true", help="profile beam 5, batched")
    parser.add_argument("--no-record", action="store_true", help="print, do not append")
    parser.add_argument(
        "--outputs",
        metavar="DIR",
        help="also write each search's outputs (text and score per line) here, to check "
        "that two versions of attnmt decode byte for byte the same",
    )
    return parser.parse_args()


def batched(
    translator: Translator, sources: list[str], beam: int
) -> tuple[list[Translation], float]:
    """The whole test set in one translate call (default batch_tokens); seconds taken."""
    start = time.perf_counter()
    results = translator.translate(sources, beam=beam)
    return results, time.perf_counter() - start


def one_at_a_time(
    translator: Translator, sources: list[str], beam: int
) -> tuple[list[Translation], list[float]]:
    """Each sentence in its own translate call, as an interactive user would; the seconds
    of each call."""
    results, seconds = [], []
    for source in sources:
        start = time.perf_counter()
        results.append(translator.translate(source, beam=beam))
        seconds.append(time.perf_counter() - start)
    return results, seconds


def speed_rows(
    label: str, results: list[Translation], seconds: float, references: list[str]
) -> list[tuple[str, str]]:
    tokens = sum(len(result.tokens) for result in results)
    bleu = corpus_metrics([result.text for result in results], references)["bleu"]
    return [
        (f"{label}: sentences/s", f"{len(results) / seconds:,.1f}"),
        (f"{label}: target tokens/s", f"{tokens / seconds:,.0f}"),
        (f"{label}: BLEU", f"{bleu:.2f}"),
    ]


def write_outputs(directory: str | None, name: str, results: list[Translation]) -> None:
    """One line per sentence, text and score (repr: every bit), for a byte comparison."""
    if directory is None:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    lines = "".join(f"{result.text}\t{result.score!r}\n" for result in results)
    Path(directory, name.replace(" ", "_") + ".txt").write_text(lines, encoding="utf-8")


def measure(
    translator: Translator,
    sources: list[str],
    references: list[str],
    outputs: str | None = None,
) -> list[tuple[str, str]]:
    """Rows for BENCHMARKS.md: speed and BLEU of each search, batched and one at a time."""
    rows = []
    for label, beam in SEARCHES:
        results, seconds = batched(translator, sources, beam)
        rows += speed_rows(f"{label}, batched", results, seconds, references)
        write_outputs(outputs, f"{label} batched", results)
        results, latencies = one_at_a_time(translator, sources, beam)
        rows += speed_rows(f"{label}, one at a time", results, sum(latencies), references)
        write_outputs(outputs, f"{label} one", results)
        deciles = statistics.quantiles(latencies, n=10)
        rows.append(
            (
                f"{label}, one at a time: latency p50 / p90",
                f"{deciles[4] * 1e3:.1f} / {deciles[8] * 1e3:.1f} ms",
            )
        )
    return rows


def profile(translator: Translator, sources: list[str]) -> None:
    """Where the time of a batched beam-5 decode goes: torch ops, then Python functions."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        translator.translate(sources, beam=5)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=PROFILE_ROWS))
    profiler = cProfile.Profile()
    profiler.runcall(translator.translate, sources, beam=5)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(PROFILE_ROWS)


def describe(translator: Translator) -> str:
    config = translator.config.model
    return (
        f"{config.decoder} / {config.attention.score}, {config.rnn}, hidden {config.hidden_dim}, "
        f"embeddings {config.embed_dim}, vocab {translator.src_tok.vocab_size}/"
        f"{translator.tgt_tok.vocab_size}"
    )


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()[0]  # other work on the machine skews every number
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    translator = Translator.load(args.model, device=args.device, which=args.which)
    load_seconds = time.perf_counter() - start
    pairs = list(read_parallel(SplitPaths(src=args.src, tgt=args.ref), "test"))[: args.limit]
    sources, references = [src for src, _ in pairs], [ref for _, ref in pairs]
    translator.translate(sources[:WARMUP_SENTENCES], beam=5)
    if args.profile:
        profile(translator, sources)
        return
    model = cast(Seq2Seq, translator.model)  # one run, so one model
    rows = [
        ("run", f"`{args.model}` ({args.which})"),
        ("model", describe(translator)),
        ("parameters", f"{count_parameters(model):,}"),
        ("precision", str(translator.dtype or torch.float32).replace("torch.", "")),
        ("test set", f"{Path(args.src).name}, {len(sources):,} sentences"),
        ("load time", f"{load_seconds:.2f} s"),
        ("machine load average (1 min) before", f"{load_before:.2f}"),
        *measure(translator, sources, references, args.outputs),
        ("peak RSS", f"{common.peak_rss_mb():,.0f} MB"),
    ]
    title = f"Decoding {Path(args.src).name} with {Path(args.model).name}, {args.threads} threads"
    if args.no_record:
        print("\n".join(f"{name}: {value}" for name, value in rows))
    else:
        common.append(title, rows)


if __name__ == "__main__":
    try:
        main()
    except UserError as err:  # a wrong path or run directory: one line, no traceback
        sys.exit(f"benchmarks.decode: error: {err}")
