"""attnmt's side: ``attnmt train`` of a preset in its own process, and decoding of the
run's best checkpoint in another (each process's peak RSS is its own)."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.peer.process import gnu_time, timed

LOG_EVERY = 20  # steps between attnmt's logged rates (kept in peer.json as a check)
Results = dict[str, Any]


def train(
    run_dir: Path, config: Path, minutes: float, validate: bool, data: Path, seed: int = 1
) -> Results:
    """``attnmt train`` of `config` for `minutes` of training (``train.max_minutes``:
    validations included, data preparation not); without `validate`, no dev set at all."""
    overrides = [
        f"run_dir={run_dir}",
        f"train.max_minutes={minutes:g}",
        f"train.seed={seed}",
        "train.threads=2",
        f"train.log_every={LOG_EVERY}",
    ]
    for item in common.multi30k_overrides(data):
        if validate or not item.startswith("data.dev."):
            overrides.append(item)
    if not validate:  # throughput windows: no dev set, so no validation at all
        overrides += ["data.dev.src=null", "data.dev.tgt=null"]
    command = [sys.executable, "-m", "attnmt", "train", str(config), "--no-progress"]
    for item in overrides:
        command += ["--set", item]
    run_dir.mkdir(parents=True, exist_ok=True)
    logs = run_dir.parent / f"{run_dir.name}.log"
    rc = timed(command, run_dir.parent / f"{run_dir.name}.time", logs, {})
    if rc != 0:
        raise RuntimeError(f"attnmt train failed (rc {rc}); see {logs}")
    metrics = run_dir / "metrics.jsonl"  # absent when no step was logged
    entries = [json.loads(line) for line in metrics.open()] if metrics.exists() else []
    wall, rss = gnu_time(run_dir.parent / f"{run_dir.name}.time")
    return {
        "run_dir": str(run_dir),
        **printed_figures(logs.read_text(encoding="utf-8")),
        "logged_rates": [e["tgt_tokens_per_s"] for e in entries if e.get("split") == "train"][1:],
        "train_wall_s": wall,
        "train_rss_mib": rss,
    }


def printed_figures(printed: str) -> Results:
    """What ``attnmt train`` prints at the end: every target token of the run over the time
    of its training steps, the steps, and the precision ``auto`` chose (and why)."""
    speed = re.search(r"training speed: ([\d,.]+) target tokens/s", printed)
    steps = re.search(r"stopped after (\d+) steps", printed)
    chosen = re.search(r"precision auto: (.*)", printed)
    return {
        "tok_per_s": float(speed.group(1).replace(",", "")) if speed else None,
        "steps": int(steps.group(1)) if steps else None,
        "precision": chosen.group(1) if chosen else None,
    }


def best_checkpoint(run_dir: Path) -> Results:
    """The checkpoint that decoding loads (``which="best"``: the best dev score by
    ``train.metric``), its step and dev BLEU, read in this process, not the measured one."""
    from attnmt.io.checkpoint import find_model_checkpoint, load_checkpoint

    path = find_model_checkpoint(run_dir, "best")
    header = load_checkpoint(path).header
    return {"decoded": path.name, "best_step": header.step, "best_dev_bleu": header.dev.get("bleu")}


def decode(run_dir: Path, beam: int, text: Path) -> Results:
    """Decode test_2016_flickr (raw text in `text`) with the run's best checkpoint in a
    child process: sentences/s of the generation, BLEU, and the child's peak RSS."""
    report = run_dir.parent / f"{run_dir.name}.decode{beam}"
    command = [sys.executable, "-m", "benchmarks.peer", "--decode-child", str(run_dir)]
    command += ["--beam", str(beam), "--json", f"{report}.json", "--text", str(text)]
    rc = timed(command, Path(f"{report}.time"), Path(f"{report}.log"), {})
    if rc != 0:
        raise RuntimeError(f"attnmt decoding failed (rc {rc}); see {report}.log")
    result: Results = json.loads(Path(f"{report}.json").read_text())
    result["rss_mib"] = gnu_time(Path(f"{report}.time"))[1]
    return result


def decode_child(run_dir: str, beam: int, out: str, text: Path) -> None:
    """In the child: load, warm up on 20 sentences, time the generation of all."""
    import sacrebleu
    import torch

    from attnmt.translate.translator import Translator

    torch.set_num_threads(2)
    translator = Translator.load(run_dir, device="cpu", which="best")
    with open(text / "test_2016_flickr.de", encoding="utf-8") as f:  # run.sh's raw text
        sources = f.read().splitlines()
    with open(text / "test_2016_flickr.en", encoding="utf-8") as f:
        references = f.read().splitlines()
    translator.translate(sources[:20], beam=beam)
    start = time.perf_counter()
    results = translator.translate(sources, beam=beam)
    seconds = time.perf_counter() - start
    bleu = sacrebleu.corpus_bleu([r.text for r in results], [references]).score
    Path(out).write_text(json.dumps({"sent_per_s": len(sources) / seconds, "bleu": bleu}))
