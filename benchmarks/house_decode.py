"""Decode a run's synthetic test split and print output hashes and speed, so the same
script can be run against two versions of attnmt (one through PYTHONPATH) to check that
a refactoring changed neither outputs nor speed.

    PYTHONPATH=/path/to/old/checkout python benchmarks/house_decode.py RUN OUT [fp32]
    python benchmarks/house_decode.py RUN OUT [fp32]

It uses only the public API that both versions share (`from attnmt import Translator`),
one torch thread, greedy and beam 5, and writes OUT.beam{1,5}.json (texts and scores).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import torch

from attnmt import Translator


def main() -> None:
    torch.set_num_threads(1)
    run, out = sys.argv[1], sys.argv[2]
    sources = Path(run, "data", "test.src").read_text(encoding="utf-8").splitlines()
    translator = Translator.load(run, device="cpu")
    if len(sys.argv) > 3 and sys.argv[3] == "fp32":
        translator.dtype = None
    results = {}
    for beam in (1, 5):
        translator.translate(sources[:50], beam=beam)  # warm up
        start = time.perf_counter()
        outputs = translator.translate(sources, beam=beam)
        seconds = time.perf_counter() - start
        texts = [output.text for output in outputs]
        results[beam] = {
            "sha": hashlib.sha1("\n".join(texts).encode()).hexdigest()[:12],
            "sent_per_s": round(len(sources) / seconds, 1),
        }
        record = {"texts": texts, "scores": [round(output.score, 4) for output in outputs]}
        Path(f"{out}.beam{beam}.json").write_text(json.dumps(record), encoding="utf-8")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
