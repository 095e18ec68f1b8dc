"""fp32 against bf16 autocast for training steps and batched decoding of the reference
model on real Multi30k batches, measured alternately in one process so both see the same
machine. Reports medians; appends to BENCHMARKS.md.

    python -m benchmarks.precision --model runs/bench/reference   # tokenizers from a run
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from attnmt.config import SplitPaths
from attnmt.data.batching import BatchSampler, make_batch
from attnmt.data.corpus import load_corpus
from attnmt.data.tokenize import load_tokenizers
from attnmt.device import autocast
from attnmt.io.checkpoint import load_model
from attnmt.search.decode import decode
from attnmt.special import PAD_ID
from benchmarks import common

DTYPES = {"fp32": None, "bf16": torch.bfloat16}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a trained reference run directory")
    parser.add_argument("--data", default=str(common.ROOT.parent / "shared/data/multi30k"))
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per dtype")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run_dir, data = Path(args.model), Path(args.data)
    model, config = load_model(run_dir)
    src_tok, tgt_tok = load_tokenizers(run_dir / "tokenizer")
    split = SplitPaths(src=str(data / "train.de.gz"), tgt=str(data / "train.en.gz"))
    corpus = load_corpus(split, "train", src_tok, tgt_tok, config.data, run_dir / "cache")
    sampler = BatchSampler(
        corpus.src_lengths, corpus.tgt_lengths, config.train.batch_tokens, True, seed=0
    )
    batches = [make_batch(corpus, indices) for indices in itertools.islice(sampler, args.steps + 1)]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)

    train_times: dict[str, list[float]] = {name: [] for name in DTYPES}
    model.train()
    for i, batch in enumerate(batches):
        for name, dtype in DTYPES.items():
            start = time.perf_counter()
            with autocast(torch.device("cpu"), dtype):
                logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
            loss = F.cross_entropy(
                logits.float().flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if i > 0:  # the first round warms up
                train_times[name].append(batch.n_tgt_tokens / (time.perf_counter() - start))

    test = SplitPaths(
        src=str(data / "test_2016_flickr.de.gz"), tgt=str(data / "test_2016_flickr.en.gz")
    )
    test_corpus = load_corpus(test, "test", src_tok, tgt_tok, config.data, run_dir / "cache", False)
    src_batch = make_batch(test_corpus, list(range(len(test_corpus))))
    decode_times: dict[str, list[float]] = {name: [] for name in DTYPES}
    for _ in range(3):
        for name, dtype in DTYPES.items():
            start = time.perf_counter()
            with autocast(torch.device("cpu"), dtype):
                decode(model, src_batch.src, src_batch.src_lengths, config.decode)
            decode_times[name].append(len(test_corpus) / (time.perf_counter() - start))

    rows = []
    for name in DTYPES:
        rows.append(
            (
                f"training target tokens/s, {name} (median of {len(train_times[name])})",
                f"{statistics.median(train_times[name]):,.0f}",
            )
        )
    for name in DTYPES:
        rows.append(
            (
                f"decoding sentences/s, beam {config.decode.beam}, {name} (median of 3)",
                f"{statistics.median(decode_times[name]):,.0f}",
            )
        )
    common.append("Precision: fp32 against bf16 autocast on the CPU", rows)


if __name__ == "__main__":
    main()
