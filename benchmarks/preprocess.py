"""Preprocessing at scale: tokenize millions of synthetic pairs into memory-mapped shards,
against the code before this change (one sentence at a time, all in memory), recording
wall time, minutes per million pairs and peak resident memory; appended to BENCHMARKS.md.

    nice -n 10 python -m benchmarks.preprocess                      # 5M pairs; baseline 200k
    python -m benchmarks.preprocess --pairs 300000 --baseline-pairs 100000 --no-record

The corpus is random Zipf-distributed pseudo-words (a vocabulary of 5,000, 5-40 words a
side), written once to --work and reused. A BPE sentencepiece model of 8,000 pieces is
learnt from its first 100,000 lines. Each measurement runs in a fresh process; peak RSS
is that process's (``ru_maxrss``) and, for the parallel path, the largest worker's.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import common

VOCABULARY = 5_000
LINES_PER_WRITE = 100_000

# Run in a fresh process. Peak RSS is VmHWM after resetting it (writing 5 to
# /proc/self/clear_refs) just before tokenizing: ru_maxrss would carry over the peak of
# the process that started this one. Workers start after the reset; the largest one's
# peak is RUSAGE_CHILDREN.
MEASURE = """
import json, resource, sys, time
from pathlib import Path
from attnmt.config import DataConfig, SplitPaths
from attnmt.data.tokenize import SentencePieceTokenizer
from benchmarks.preprocess import baseline_tokenize
def peak_mb():
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(status["VmHWM"].split()[0]) / 1024
work, src, tgt, kind = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
tok = SentencePieceTokenizer((work / "spm.model").read_bytes())
split, config = SplitPaths(src=src, tgt=tgt), DataConfig(max_len=1000)  # drop nothing
cache = work / f"cache-{kind}-{time.time_ns()}"
before = peak_mb()
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")
cpu_before = resource.getrusage(resource.RUSAGE_SELF)
start = time.perf_counter()
if kind == "baseline":
    pairs, tokens = baseline_tokenize(split, tok, config, cache)
else:
    from attnmt.data.corpus import load_corpus
    corpus = load_corpus(split, "train", tok, tok, config, cache, workers=int(sys.argv[5]))
    pairs, tokens = len(corpus), int(len(corpus.src_tokens) + len(corpus.tgt_tokens))
seconds = time.perf_counter() - start
main = resource.getrusage(resource.RUSAGE_SELF)
children = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = (main.ru_utime + main.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
       + children.ru_utime + children.ru_stime)
print(json.dumps({"pairs": pairs, "tokens": tokens, "seconds": seconds, "imports": before,
                  "main": peak_mb(), "workers": children.ru_maxrss / 1024, "cpu": cpu}))
"""


def write_corpus(work: Path, pairs: int, seed: int = 0) -> tuple[Path, Path]:
    """`pairs` lines of pseudo-words per side (reused when the files exist)."""
    src, tgt = work / f"synthetic-{pairs}.src", work / f"synthetic-{pairs}.tgt"
    if src.exists() and tgt.exists():
        return src, tgt
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}x" for i in range(VOCABULARY)])
    weights = 1.0 / np.arange(1, VOCABULARY + 1)  # Zipf: a few words are most of the text
    weights /= weights.sum()
    with open(src, "w") as src_file, open(tgt, "w") as tgt_file:
        for start in range(0, pairs, LINES_PER_WRITE):
            count = min(LINES_PER_WRITE, pairs - start)
            for handle in (src_file, tgt_file):
                lengths = rng.integers(5, 41, size=count)
                flat = rng.choice(words, size=int(lengths.sum()), p=weights)
                cuts = np.cumsum(lengths)[:-1]
                handle.write("".join(" ".join(s) + "\n" for s in np.split(flat, cuts)))
    return src, tgt


def train_sentencepiece(work: Path, src: Path) -> None:
    import sentencepiece as spm

    from attnmt.special import BOS_ID, EOS_ID, PAD_ID, UNK_ID

    if (work / "spm.model").exists():
        return
    with open(src) as handle:
        lines = [line.rstrip("\n") for line in itertools.islice(handle, 100_000)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=8000,
        model_type="bpe",
        hard_vocab_limit=False,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        minloglevel=2,
    )
    (work / "spm.model").write_bytes(model.getvalue())


def head(path: Path, lines: int) -> Path:
    """The first `lines` lines of `path`, as a file of their own."""
    out = path.with_name(f"{path.stem}-head{lines}{path.suffix}")
    if not out.exists():
        with open(path) as source, open(out, "w") as target:
            for _ in range(lines):
                target.write(next(source))
    return out


def baseline_tokenize(split, tok, config, cache: Path) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """The code before this change (attnmt.data.corpus up to commit 6ab22f7): encode one
    sentence at a time into growable int arrays in memory, then save one .npz."""
    from array import array

    from attnmt.data.text import read_parallel

    buffers = {side: (array("i"), array("i")) for side in ("src", "tgt")}
    for src_text, tgt_text in read_parallel(split, "train"):
        src_ids, tgt_ids = tok.encode(src_text), tok.encode(tgt_text)
        if not (src_ids and tgt_ids) or max(len(src_ids), len(tgt_ids)) > config.max_len:
            continue
        for side, ids in (("src", src_ids), ("tgt", tgt_ids)):
            buffers[side][0].extend(ids)
            buffers[side][1].append(len(ids))
    arrays = {}
    for side, (tokens, lengths) in buffers.items():
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(np.frombuffer(lengths, dtype=np.int32), out=offsets[1:])
        arrays[f"{side}_tokens"] = np.frombuffer(tokens, dtype=np.int32)
        arrays[f"{side}_offsets"] = offsets
    cache.mkdir(parents=True)
    np.savez(cache / "train.npz", **arrays)
    pairs = len(arrays["src_offsets"]) - 1
    return pairs, int(len(arrays["src_tokens"]) + len(arrays["tgt_tokens"]))


def measure(work: Path, src: Path, tgt: Path, kind: str, workers: int) -> dict[str, float]:
    command = [sys.executable, "-c", MEASURE, str(work), str(src), str(tgt), kind, str(workers)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=common.ROOT)
    if result.returncode:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def describe(result: dict[str, float], workers: bool) -> str:
    per_million = result["seconds"] / 60 / (result["pairs"] / 1e6)
    text = (
        f"{result['pairs']:,} pairs, {result['tokens']:,} tokens in {result['seconds']:.1f} s "
        f"({per_million:.2f} min per million pairs; CPU time {result['cpu']:.1f} s, all "
        f"processes); peak RSS {result['main']:,.0f} MB"
    )
    return text + (f", largest worker {result['workers']:,.0f} MB" if workers else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5_000_000)
    parser.add_argument("--baseline-pairs", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("runs/bench/preprocess"))
    parser.add_argument("--no-record", action="store_true", help="print, do not append")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    src, tgt = write_corpus(args.work, args.pairs)
    print(f"corpus ready in {time.perf_counter() - started:.0f} s: {src}", flush=True)
    train_sentencepiece(args.work, src)
    small_src, small_tgt = head(src, args.baseline_pairs), head(tgt, args.baseline_pairs)

    baseline = measure(args.work, small_src, small_tgt, "baseline", 1)
    print("baseline", baseline, flush=True)
    small = measure(args.work, small_src, small_tgt, "shards", args.workers)
    print("shards, small", small, flush=True)
    large = measure(args.work, src, tgt, "shards", args.workers)
    print("shards, large", large, flush=True)
    rows = [
        ("before (one sentence at a time, in memory)", describe(baseline, False)),
        (f"now, {args.workers} workers, same corpus", describe(small, True)),
        (f"now, {args.workers} workers, large corpus", describe(large, True)),
    ]
    notes = (
        "Synthetic pseudo-word corpus, BPE 8,000, nothing dropped (`data.max_len` 1000). "
        f"Peak RSS includes the {baseline['imports']:,.0f} MB the process holds before "
        "tokenizing (attnmt imports torch). The machine's 2 cores were shared with other "
        "jobs; the script ran under `nice -n 10`."
    )
    if args.no_record:
        print(rows)
    else:
        common.append("Preprocessing: parallel chunks into memory-mapped shards", rows, notes)


if __name__ == "__main__":
    main()
