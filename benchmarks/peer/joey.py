"""Joey NMT's side: the peer scripts in ``../shared/peers/joeynmt`` train and decode one of
Joey's configs (``setup.sh`` once, then ``run.sh``), and the figures are read back from what
they leave: the logs folder, the run directory the config copy names, the checkpoint Joey
saves when the budget stops it, and ``summary.json``."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from benchmarks import common
from benchmarks.peer.process import THREADS, gnu_time, log

JOEY = common.ROOT.parent / "shared/peers/joeynmt"
VENV = Path(os.environ.get("VENV", "/tmp/venv_joey"))
DATA = Path("/tmp/joey_m30k")  # setup.sh's raw text and BPE: both toolkits score against it
NO_VALIDATION = 1_000_000  # a validation_freq no throughput window reaches
Results = dict[str, Any]


def setup() -> None:
    """The peer's venv, data and BPE (setup.sh is idempotent: a no-op once done)."""
    log(f"Joey setup (bash setup.sh: venv {VENV}, data {DATA})")
    subprocess.run(["bash", str(JOEY / "setup.sh")], check=True, stdout=subprocess.DEVNULL)


def for_run(config: dict[str, Any], seed: int, data: Path, logging_freq: int) -> dict[str, Any]:
    """Joey's `config` with its ``random_seed`` set to `seed`, its train, dev and test sets
    taken from the folder `data` (same file stems) and its ``training.logging_freq`` set
    (the config's own, but for smoke tests); nothing else changes."""
    sets = {
        split: str(data / Path(config["data"][split]).name) for split in ("train", "dev", "test")
    }
    training = {**config["training"], "logging_freq": logging_freq}
    return {**config, "random_seed": seed, "data": {**config["data"], **sets}, "training": training}


def config_logging_freq(config: Path) -> int:
    """How often (steps) Joey's `config` logs its training rate."""
    return int(yaml.safe_load(config.read_text(encoding="utf-8"))["training"]["logging_freq"])


def check_valid_freq(valid_freq: int, logging_freq: int) -> None:
    """Joey refuses a ``validation_freq`` that is not a multiple of ``logging_freq`` above it."""
    if valid_freq <= logging_freq or valid_freq % logging_freq:
        raise ValueError(
            f"Joey needs validation_freq to be a multiple of logging_freq ({logging_freq}) "
            f"above it; {valid_freq} stops it at start-up"
        )


def write_config(source: Path, folder: Path, seed: int, data: Path, logging_freq: int) -> Path:
    """The copy of Joey's config `source` that one run trains (:func:`for_run`), written to
    `folder` under the same name, which run.sh names the run directory after."""
    folder.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    copy = folder / source.name
    copy.write_text(yaml.safe_dump(for_run(config, seed, data, logging_freq), sort_keys=False))
    return copy


def run(config: Path, logs: Path, minutes: float, valid_freq: int | None, data: Path) -> Results:
    """One ``run.sh`` of `config` with its logs in `logs`: train for `minutes` of wall
    clock. With `valid_freq`, validate every that many steps, then decode test_2016_flickr
    (greedy, beam 5) with the checkpoint of the best dev BLEU; without, train only and never
    validate (a throughput window)."""
    decode = valid_freq is not None
    env = {
        "CONFIG": os.path.relpath(config, JOEY),  # run.sh reads "$HERE/$CONFIG"
        "BUDGET_MIN": f"{minutes:g}",
        "TAG": logs.name,
        "OUT": str(logs),  # run.sh empties it first
        "DATA": str(data),
        "VENV": str(VENV),
        "SKIP_DECODE": "0" if decode else "1",
        "VALID_FREQ": str(valid_freq if decode else NO_VALIDATION),
        "DECODE_CKPT": "best",
    }
    logs.parent.mkdir(parents=True, exist_ok=True)
    printed = logs.parent / f"{logs.name}.run.log"
    with printed.open("w") as out:  # with SKIP_DECODE, run.sh may end in a failing grep
        subprocess.run(
            ["bash", str(JOEY / "run.sh")],
            env={**os.environ, **THREADS, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    train_log = logs / "train.log"
    if not train_log.exists():
        raise RuntimeError(f"Joey training left no log; see {printed} and {logs}/train.stdout")
    stopped = (logs / "train.rc").read_text().strip()  # "train_rc=124": the budget's stop
    if stopped != "train_rc=124":
        log(f"WARNING: Joey's training ended with {stopped}; see {logs}/train.stdout")
    text = train_log.read_text(encoding="utf-8")
    run_dir = run_directory(logs)
    steps, tokens = checkpoint_stats(run_dir / "latest.ckpt")
    seconds = training_seconds(text)
    wall, rss = gnu_time(logs / "train.time")
    result: Results = {
        "log_dir": str(logs),
        "run_dir": str(run_dir),
        "tok_per_s": tokens / seconds if tokens and seconds else None,
        "logged_rates": logged_rates(text),
        "steps": steps,
        "train_seconds": seconds,
        "train_wall_s": wall,
        "train_rss_mib": rss,
    }
    summary = logs / "summary.json"
    if decode and not summary.exists():
        log(f"WARNING: Joey did not decode (no best.ckpt: no validation in the budget?); {printed}")
    if decode and summary.exists():
        s = json.loads(summary.read_text())
        result.update(
            steps=s.get("train_steps"),
            epochs=s.get("train_epochs_fractional"),
            decoded=Path(s["decode_ckpt"]).name,  # best.ckpt's target, named after its step
            best_step=s.get("val_bleu_best_validation_step"),
            best_dev_bleu=s.get("val_bleu_best_validation"),
            greedy_bleu=s.get("test_greedy_bleu"),
            beam5_bleu=s.get("test_beam5_bleu"),
            greedy_sent_per_s=s.get("test_greedy_decode_sent_per_s"),
            beam5_sent_per_s=s.get("test_beam5_decode_sent_per_s"),
            greedy_rss_mib=s.get("decode_greedy_peak_rss_MiB"),
            beam5_rss_mib=s.get("decode_beam5_peak_rss_MiB"),
        )
    return result


def run_directory(logs: Path) -> Path:
    """Where run.sh trained: the ``model_dir`` of the config copy it wrote to `logs`
    (run.sh derives it from the config's name and the tag)."""
    config = yaml.safe_load((logs / "train.yaml").read_text(encoding="utf-8"))
    return Path(config["model_dir"])


def checkpoint_stats(checkpoint: Path) -> tuple[int | None, int | None]:
    """Steps and target tokens trained, from the checkpoint Joey saves when stopped."""
    code = (
        "import sys, torch; s = torch.load(sys.argv[1], map_location='cpu', "
        "weights_only=False)['stats_state']; print(s['steps'], s['total_tokens'])"
    )
    done = subprocess.run(
        [str(VENV / "bin/python"), "-c", code, str(checkpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None, None
    steps, tokens = done.stdout.split()
    return int(steps), int(tokens)


def logged_rates(text: str) -> list[float]:
    """Joey's own "Tokens per Sec" of each logged interval of `text` (its train.log),
    the first interval (warm-up) left out."""
    return [float(rate) for rate in re.findall(r"Step:\s+\d+,.*?Tokens per Sec:\s+(\d+)", text)][1:]


def training_seconds(text: str) -> float | None:
    """From the first epoch's start to the interruption, in Joey's log timestamps (no
    validation happens in a throughput window, which sets VALID_FREQ out of reach)."""
    stamp = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - INFO - joeynmt.training - "
    start = re.search(stamp + "EPOCH 1\\b", text)
    end = re.search(stamp + "Interrupt at", text)
    if not (start and end):
        return None
    parse = lambda value: dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S,%f")  # noqa: E731
    return (parse(end.group(1)) - parse(start.group(1))).total_seconds()
