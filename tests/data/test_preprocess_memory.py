"""Preprocessing memory does not grow with the corpus: tokenizing four times the pairs
peaks at about the same resident memory, measured in fresh processes."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm

from attnmt.special import BOS_ID, EOS_ID, PAD_ID, UNK_ID

WORDS = [f"{a}{b}" for a in ("ka", "to", "mi", "re", "su", "no", "ha") for b in "aeiou"]
SMALL, LARGE = 25_000, 100_000
# Growth allowed from SMALL to LARGE pairs: the index (lengths and offsets, about 40 bytes
# a pair at its peak, 3 MB for the 75,000 more) plus allocator noise. Holding the tokens
# in memory, as the code before did, grows by 4 bytes a token: 61 MB from 50,000 to
# 200,000 pairs of this corpus (measured with benchmarks/preprocess.py's baseline).
ALLOWED_GROWTH_MB = 12

# Peak RSS of the preprocessing alone, in a fresh process. ru_maxrss cannot say it: Linux
# carries the parent's peak across fork and exec, so a child of pytest (over 300 MB with
# torch loaded) reports at least that. Writing 5 to /proc/self/clear_refs resets the
# peak (VmHWM) to the present RSS instead. Workers start after the reset; the largest
# one's peak is RUSAGE_CHILDREN. Memory rises until the pipeline of chunks in flight is
# full, then stays: small chunks fill it well before SMALL pairs.
MEASURE = """
import json, resource, sys
from pathlib import Path
from attnmt.config import DataConfig, SplitPaths
from attnmt.data import preprocess
from attnmt.data.corpus import load_corpus
from attnmt.data.tokenize import SentencePieceTokenizer
preprocess.CHUNK_PAIRS = 2_000  # 2 workers x 2 chunks in flight: full from 8,000 pairs on
def peak_mb():
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(status["VmHWM"].split()[0]) / 1024
directory = Path(sys.argv[1])
tok = SentencePieceTokenizer((directory / "spm.model").read_bytes())
split = SplitPaths(src=sys.argv[2], tgt=sys.argv[3])
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")
corpus = load_corpus(split, "train", tok, tok, DataConfig(), directory / "cache", workers=2)
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"pairs": len(corpus), "tokens": int(len(corpus.src_tokens)),
                  "main": peak_mb(), "workers": workers}))
"""


def write_corpus(directory: Path) -> tuple[Path, Path, Path, Path]:
    """SMALL pairs of 30-50 words a side, and the same lines repeated to LARGE pairs."""
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, size=rng.integers(30, 50))) for _ in range(SMALL)]
    text = "".join(line + "\n" for line in lines)
    paths = [directory / name for name in ("small.src", "small.tgt", "large.src", "large.tgt")]
    for path, copies in zip(paths, (1, 1, 4, 4), strict=True):
        path.write_text(text * copies)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines[:2000]),
        model_writer=model,
        vocab_size=100,
        hard_vocab_limit=False,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        minloglevel=2,
    )
    (directory / "spm.model").write_bytes(model.getvalue())
    return paths[0], paths[1], paths[2], paths[3]


def peak_memory(directory: Path, src: Path, tgt: Path) -> dict[str, float]:
    command = [sys.executable, "-c", MEASURE, str(directory), str(src), str(tgt)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_peak_memory_does_not_grow_with_the_corpus(tmp_path: Path) -> None:
    small_src, small_tgt, large_src, large_tgt = write_corpus(tmp_path)
    small = peak_memory(tmp_path, small_src, small_tgt)
    large = peak_memory(tmp_path, large_src, large_tgt)
    assert (small["pairs"], large["pairs"]) == (SMALL, LARGE)
    assert large["tokens"] == 4 * small["tokens"] > LARGE * 30  # long enough to show growth
    main_growth = large["main"] - small["main"]
    worker_growth = large["workers"] - small["workers"]
    assert main_growth < ALLOWED_GROWTH_MB, (small, large)
    assert worker_growth < ALLOWED_GROWTH_MB, (small, large)
