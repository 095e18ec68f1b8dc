"""attnmt against Joey NMT, side by side: one run, one machine, every figure a ratio.

    python -m benchmarks.peer --quick        # training speed and peak RSS (about 22 min)
    python -m benchmarks.peer                # + 30-min quality runs and decoding (~90 min)
    python -m benchmarks.peer --quick --window-minutes 1 --no-record   # smoke test

Both toolkits train the same model on the same data: Multi30k de->en, joint sentencepiece
BPE 8k, biGRU 2x256 encoder, GRU 512 decoder, embeddings 256, dropout 0.3, the concat
(additive) score queried with the decoder's current state and no input feeding. That is
Joey's RNN decoder with ``attention: bahdanau`` and ``input_feeding: False`` (it calls the
score Bahdanau's, but its recurrence is Luong's), and attnmt's
``configs/multi30k_de_en_luong_concat.yaml``. attnmt's ``multi30k_de_en_bahdanau.yaml`` is
Bahdanau's own decoder (query s_{i-1}, context fed into the RNN), a heavier model:
``--config`` runs it instead. Joey comes from the peer scripts in ``../shared/peers/joeynmt``
(``setup.sh`` once, then ``run.sh`` with a budget). Joey lives in its own venv outside the
repository, where those scripts put it: ``/tmp/venv_joey`` (data and BPE in
``/tmp/joey_m30k``, logs in ``/tmp/joey_logs/peer_*``). attnmt's runs and logs go to
``--work`` (default ``/tmp/attnmt_peer/<time>``). Every process gets 2 threads
(``OMP_NUM_THREADS=2``) and runs alone, one after the other; nothing else should run on
the machine.

- Training speed: target tokens (EOS counted, padding not) over the seconds of training
  steps, validation and start-up excluded. Joey: the token count of the checkpoint it
  saves when the budget stops it, over the time from its first epoch's start to the
  interruption in its log (no validation inside a window). attnmt: the same ratio as
  ``attnmt train`` prints it. Windows alternate Joey, attnmt, Joey, attnmt (``--rounds``);
  ``peer.json`` also keeps each toolkit's own per-interval rates as a check.
- Peak RSS: ``/usr/bin/time -v`` of each training or decoding process.
- Quality and decoding (not with ``--quick``): each toolkit trains ``--minutes`` (Joey:
  the whole process, start-up and validations included, as ``run.sh`` does; attnmt:
  ``train.max_minutes``, validations included, data preparation not), then decodes
  test_2016_flickr with its own model, greedy and beam 5, in its own process: sentences/s
  of the generation alone, BLEU with sacrebleu defaults.

Appends one section to BENCHMARKS.md (unless ``--no-record``) and writes the raw
figures to ``<work>/peer.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import common

JOEY = common.ROOT.parent / "shared/peers/joeynmt"
JOEY_LOGS = Path("/tmp/joey_logs")
JOEY_VENV = Path(os.environ.get("VENV", "/tmp/venv_joey"))
DATA = common.ROOT.parent / "shared/data/multi30k"
CONFIG = common.ROOT / "configs/multi30k_de_en_luong_concat.yaml"
JOEY_DATA = Path("/tmp/joey_m30k")  # setup.sh's raw text: both score against the same refs
THREADS = {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
ATTNMT_LOG_EVERY = 20
Results = dict[str, Any]


def log(message: str) -> None:
    stamp = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[peer {stamp}] {message}", flush=True)


def busy_cores(seconds: float = 5.0) -> float:
    """Cores kept busy by other processes, sampled from /proc/stat while we run nothing
    (a load average would still count our own previous window)."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all jiffies, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    busy = 1 - (idle1 - idle0) / max(total1 - total0, 1)
    return round(busy * (os.cpu_count() or 1), 2)


def gnu_time(path: Path) -> tuple[float | None, float | None]:
    """Wall seconds and peak RSS (MiB) from a ``/usr/bin/time -v`` report."""
    if not path.exists():
        return None, None
    text = path.read_text()
    wall = rss = None
    found = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", text)
    if found:
        parts = [float(x) for x in found.group(1).split(":")]
        wall = sum(v * 60**i for i, v in enumerate(reversed(parts)))
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if found:
        rss = int(found.group(1)) / 1024
    return wall, rss


def timed(command: list[str], report: Path, stdout: Path, env: dict[str, str]) -> int:
    """Run `command` under /usr/bin/time -v (report to `report`), output to `stdout`."""
    with stdout.open("w") as out:
        done = subprocess.run(
            ["/usr/bin/time", "-v", "-o", str(report), *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **THREADS, **env},
            check=False,
        )
    return done.returncode


# ---------------------------------------------------------------------------- Joey


def joey_setup() -> None:
    """The peer's venv, data and BPE (setup.sh is idempotent: a no-op once done)."""
    log("Joey setup (bash setup.sh: venv /tmp/venv_joey, data /tmp/joey_m30k)")
    subprocess.run(["bash", str(JOEY / "setup.sh")], check=True, stdout=subprocess.DEVNULL)


def joey_run(tag: str, minutes: float, decode: bool) -> Results:
    """One ``run.sh``: train for `minutes` of wall clock (then decode, with `decode`)."""
    env = {
        "BUDGET_MIN": f"{minutes:g}",
        "TAG": tag,
        "SKIP_DECODE": "0" if decode else "1",
        # throughput windows: no validation inside (Joey excludes it from tok/s anyway)
        "VALID_FREQ": "500" if decode else "1000000",
    }
    out = JOEY_LOGS / tag
    subprocess.run(
        ["bash", str(JOEY / "run.sh")],
        env={**os.environ, **THREADS, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,  # with SKIP_DECODE, run.sh ends in a grep that fails without a log line
    )
    train_log = out / "train.log"
    if not train_log.exists():
        raise RuntimeError(f"Joey training left no log; see {out}/train.stdout")
    text = train_log.read_text(encoding="utf-8")
    logged = re.findall(r"Step:\s+(\d+),.*?Tokens per Sec:\s+(\d+)", text)
    rates = [float(rate) for step, rate in logged if int(step) > 100]  # after warm-up
    steps, tokens = joey_checkpoint_stats(Path(f"/tmp/joey_runs/rnn_m30k_{tag}/latest.ckpt"))
    seconds = joey_training_seconds(text)
    wall, rss = gnu_time(out / "train.time")
    result: Results = {
        "log_dir": str(out),
        "tok_per_s": tokens / seconds if tokens and seconds else None,
        "logged_rates": rates,
        "steps": steps,
        "train_seconds": seconds,
        "train_wall_s": wall,
        "train_rss_mib": rss,
    }
    summary = out / "summary.json"
    if decode and summary.exists():
        s = json.loads(summary.read_text())
        result.update(
            steps=s.get("train_steps"),
            epochs=s.get("train_epochs_fractional"),
            greedy_bleu=s.get("test_greedy_bleu"),
            beam5_bleu=s.get("test_beam5_bleu"),
            greedy_sent_per_s=s.get("test_greedy_decode_sent_per_s"),
            beam5_sent_per_s=s.get("test_beam5_decode_sent_per_s"),
            greedy_rss_mib=s.get("decode_greedy_peak_rss_MiB"),
            beam5_rss_mib=s.get("decode_beam5_peak_rss_MiB"),
        )
    return result


def joey_checkpoint_stats(checkpoint: Path) -> tuple[int | None, int | None]:
    """Steps and target tokens trained, from the checkpoint Joey saves when stopped."""
    code = (
        "import sys, torch; s = torch.load(sys.argv[1], map_location='cpu', "
        "weights_only=False)['stats_state']; print(s['steps'], s['total_tokens'])"
    )
    done = subprocess.run(
        [str(JOEY_VENV / "bin/python"), "-c", code, str(checkpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return None, None
    steps, tokens = done.stdout.split()
    return int(steps), int(tokens)


def joey_training_seconds(text: str) -> float | None:
    """From the first epoch's start to the interruption, in Joey's log timestamps (no
    validation happens in a throughput window, which sets VALID_FREQ out of reach)."""
    stamp = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - INFO - joeynmt.training - "
    start = re.search(stamp + "EPOCH 1\\b", text)
    end = re.search(stamp + "Interrupt at", text)
    if not (start and end):
        return None
    parse = lambda value: dt.datetime.strptime(value, "%Y-%m-%d %H:%M:%S,%f")  # noqa: E731
    return (parse(end.group(1)) - parse(start.group(1))).total_seconds()


# -------------------------------------------------------------------------- attnmt


def attnmt_train(
    run_dir: Path, minutes: float, validate: bool, data: Path, config: Path = CONFIG
) -> Results:
    """``attnmt train`` of the preset for `minutes` of training, in its own process."""
    overrides = [
        f"run_dir={run_dir}",
        f"train.max_minutes={minutes:g}",
        "train.threads=2",
        f"train.log_every={ATTNMT_LOG_EVERY}",
    ]
    splits = dict(common.SPLITS)
    if not validate:  # throughput windows: no dev set, so no validation at all
        overrides += ["data.dev.src=null", "data.dev.tgt=null"]
        del splits["dev"]
    for split, name in splits.items():
        overrides += [
            f"data.{split}.src={data / f'{name}.de.gz'}",
            f"data.{split}.tgt={data / f'{name}.en.gz'}",
        ]
    command = [sys.executable, "-m", "attnmt", "train", str(config), "--no-progress"]
    for item in overrides:
        command += ["--set", item]
    run_dir.mkdir(parents=True, exist_ok=True)
    logs = run_dir.parent / f"{run_dir.name}.log"
    rc = timed(command, run_dir.parent / f"{run_dir.name}.time", logs, {})
    if rc != 0:
        raise RuntimeError(f"attnmt train failed (rc {rc}); see {logs}")
    printed = logs.read_text(encoding="utf-8")
    speed = re.search(r"training speed: ([\d,.]+) target tokens/s", printed)
    steps = re.search(r"stopped after (\d+) steps", printed)
    chosen = re.search(r"precision auto: (.*)", printed)  # the measured choice, and why
    metrics = run_dir / "metrics.jsonl"  # absent when no step was logged
    entries = [json.loads(line) for line in metrics.open()] if metrics.exists() else []
    rates = [e["tgt_tokens_per_s"] for e in entries if e.get("split") == "train"][1:]
    dev = [e for e in entries if e.get("split") == "dev"]
    wall, rss = gnu_time(run_dir.parent / f"{run_dir.name}.time")
    return {
        "run_dir": str(run_dir),
        # every target token of the run over the time of its training steps
        "tok_per_s": float(speed.group(1).replace(",", "")) if speed else None,
        "logged_rates": rates,
        "steps": int(steps.group(1)) if steps else None,
        "train_wall_s": wall,
        "train_rss_mib": rss,
        "dev_bleu_last": dev[-1]["bleu"] if dev else None,
        "precision": chosen.group(1) if chosen else None,
    }


def attnmt_decode(run_dir: Path, beam: int) -> Results:
    """Decode test_2016_flickr with the run's best model in a child process (its RSS)."""
    report = run_dir.parent / f"{run_dir.name}.decode{beam}"
    command = [sys.executable, "-m", "benchmarks.peer", "--decode-child", str(run_dir)]
    command += ["--beam", str(beam), "--json", f"{report}.json"]
    rc = timed(command, Path(f"{report}.time"), Path(f"{report}.log"), {})
    if rc != 0:
        raise RuntimeError(f"attnmt decoding failed (rc {rc}); see {report}.log")
    result: Results = json.loads(Path(f"{report}.json").read_text())
    result["rss_mib"] = gnu_time(Path(f"{report}.time"))[1]
    return result


def decode_child(run_dir: str, beam: int, out: str) -> None:
    """In the child: load, warm up on 20 sentences, time the generation of all."""
    import sacrebleu
    import torch

    from attnmt.translate.translator import Translator

    torch.set_num_threads(2)
    translator = Translator.load(run_dir, device="cpu")
    with open(JOEY_DATA / "test_2016_flickr.de", encoding="utf-8") as f:  # run.sh's raw text
        sources = f.read().splitlines()
    with open(JOEY_DATA / "test_2016_flickr.en", encoding="utf-8") as f:
        references = f.read().splitlines()
    translator.translate(sources[:20], beam=beam)
    start = time.perf_counter()
    results = translator.translate(sources, beam=beam)
    seconds = time.perf_counter() - start
    bleu = sacrebleu.corpus_bleu([r.text for r in results], [references]).score
    Path(out).write_text(json.dumps({"sent_per_s": len(sources) / seconds, "bleu": bleu}))


# --------------------------------------------------------------------------- report


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None, digits: int = 2) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.{digits}f}×"


def verdict(value: float | None, at_least: float | None, at_most: float | None) -> str:
    if value is None or (at_least is None and at_most is None):
        return ""
    met = (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
    return ": met" if met else ": **not met**"


def table(results: Results) -> list[str]:
    """Rows: measure | attnmt | Joey NMT | ratio attnmt/Joey | target (met or not)."""
    a, j = results["attnmt"], results["joey"]
    rows = [
        "| measure | attnmt | Joey NMT | attnmt / Joey | target |",
        "|---|---|---|---|---|",
    ]

    def row(
        name: str,
        x: float | None,
        y: float | None,
        target: str = "",
        at_least: float | None = None,
        at_most: float | None = None,
        digits: int = 0,
    ) -> None:
        quotient = x / y if x is not None and y else None
        check = verdict(quotient, at_least, at_most)
        cells = [name, fmt(x, digits), fmt(y, digits), ratio(x, y), target + check]
        rows.append("| " + " | ".join(cells) + " |")

    windows = results["windows"]
    a_rates = [w["tok_per_s"] for w in windows if w["toolkit"] == "attnmt"]
    j_rates = [w["tok_per_s"] for w in windows if w["toolkit"] == "joey"]
    mean = lambda xs: sum(xs) / len(xs) if xs and None not in xs else None  # noqa: E731
    name = f"training target tokens/s (mean of {len(a_rates)} alternated windows each)"
    row(name, mean(a_rates), mean(j_rates), "≥ 3× (moonshot 5×)", at_least=3)
    for k, (x, y) in enumerate(zip(a_rates, j_rates, strict=False), 1):
        row(f"window pair {k}", x, y)
    a_rss = [w["train_rss_mib"] for w in windows if w["toolkit"] == "attnmt"]
    j_rss = [w["train_rss_mib"] for w in windows if w["toolkit"] == "joey"]
    largest = lambda xs: max(xs) if xs and None not in xs else None  # noqa: E731
    name = "peak RSS of training, MiB (largest window)"
    row(name, largest(a_rss), largest(j_rss), "≤ 1×", at_most=1)
    if "quality" not in a:
        return rows
    qa, qj = a["quality"], j["quality"]
    budget = results["minutes"]
    row(f"steps in the {budget:g}-min budget", qa["steps"], qj.get("steps"))
    row("training target tokens/s in that run", qa["tok_per_s"], qj["tok_per_s"])
    row("peak RSS of that training, MiB", qa["train_rss_mib"], qj["train_rss_mib"], "≤ 1×", None, 1)
    for mode, beam, label in (("greedy", 1, "greedy"), ("beam5", 5, "beam 5")):
        x, y = qa[f"decode{beam}"]["bleu"], qj.get(f"{mode}_bleu")
        diff = None if y is None else x - y
        target = ("≥ +2" + verdict(diff, 2, None)) if beam == 5 else ""
        cells = [f"test_2016_flickr BLEU, {label}", fmt(x, 2), fmt(y, 2)]
        cells += ["n/a" if diff is None else f"{diff:+.2f}", target]
        rows.append("| " + " | ".join(cells) + " |")
    for mode, beam, label in (("greedy", 1, "greedy"), ("beam5", 5, "beam 5")):
        x, y = qa[f"decode{beam}"]["sent_per_s"], qj.get(f"{mode}_sent_per_s")
        row(f"decoding sentences/s, {label}", x, y, "≥ 3×", 3, None, 1)
    for mode, beam, label in (("greedy", 1, "greedy"), ("beam5", 5, "beam 5")):
        x, y = qa[f"decode{beam}"]["rss_mib"], qj.get(f"{mode}_rss_mib")
        row(f"peak RSS of decoding, {label}, MiB", x, y, "≤ 1×", None, 1)
    return rows


def record(results: Results, rows: list[str], title: str, notes: str, write: bool) -> None:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n## {title}\n",
        f"- command: `{common.command_line()}`",
        f"- machine: {common.machine()}",
        f"- date: {now}",
        f"- commit: {results['commit']}",
        f"- cores busy with other work just before each measurement: {results['loads']}",
        "",
        *(IDLE_WARNING if max(results["loads"], default=0.0) > IDLE_BUSY else []),
        *rows,
        "",
        notes,
    ]
    print("\n".join(lines))
    if write:
        with common.BENCHMARKS.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")


IDLE_BUSY = 0.2
IDLE_WARNING = [
    f"**Not a valid measurement: the machine was busy** (more than {IDLE_BUSY} cores "
    "busy with other work before a measurement; two OpenMP threads on two busy cores "
    "wait on each other, so both toolkits slow down by unequal factors). Rerun on an "
    "idle machine.",
    "",
]
NOTES = (
    "Training tokens/s: target tokens (EOS included, padding not) per second of training "
    "steps, validation and start-up excluded (Joey: its checkpoint's token count over the "
    "time from its first epoch to the interruption in its log; attnmt: as `attnmt train` "
    "reports it). Windows alternate Joey, attnmt. Peak RSS: `/usr/bin/time -v` of each "
    "process. Ratios are attnmt / Joey (for RSS lower is better); for BLEU the column is "
    "attnmt − Joey. Each toolkit decodes its own model (Joey: the weights at the end of "
    "the budget, beam alpha 1.0; attnmt: the best dev checkpoint, alpha 0.6), batched, "
    "generation time only; BLEU by sacrebleu with default settings against the same raw "
    "references."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="training speed and RSS only")
    parser.add_argument("--window-minutes", type=float, default=5.0, help="per window")
    parser.add_argument("--rounds", type=int, default=2, help="alternated window pairs")
    parser.add_argument("--minutes", type=float, default=30.0, help="quality budget")
    parser.add_argument("--data", default=str(DATA), help="Multi30k raw data (gz)")
    parser.add_argument("--config", default=str(CONFIG), help="attnmt's model (%(default)s)")
    parser.add_argument("--work", default=None, help="attnmt runs and logs")
    parser.add_argument("--no-record", action="store_true", help="print, do not append")
    parser.add_argument("--decode-child", help=argparse.SUPPRESS)
    parser.add_argument("--beam", type=int, default=5, help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.decode_child:
        decode_child(args.decode_child, args.beam, args.json)
        return
    data = Path(args.data)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = Path(args.work or f"/tmp/attnmt_peer/{stamp}")
    work.mkdir(parents=True, exist_ok=True)
    busy = busy_cores()
    if busy > IDLE_BUSY:
        log(f"WARNING: {busy} cores busy with other work: the figures will not be valid")
    joey_setup()
    results: Results = {"commit": common.commit(), "windows": [], "loads": [], "attnmt": {}}
    results["joey"], results["minutes"] = {}, args.minutes
    for k in range(1, args.rounds + 1):
        for toolkit in ("joey", "attnmt"):
            results["loads"].append(busy_cores())
            log(f"window {k}, {toolkit}: {args.window_minutes:g} min of training")
            if toolkit == "joey":
                window = joey_run(f"peer_window{k}", args.window_minutes, decode=False)
            else:
                window = attnmt_train(
                    work / f"window{k}", args.window_minutes, False, data, Path(args.config)
                )
            window["toolkit"] = toolkit
            log(f"  {fmt(window['tok_per_s'])} tok/s, peak RSS {fmt(window['train_rss_mib'])} MiB")
            results["windows"].append(window)
    if not args.quick:
        results["loads"].append(busy_cores())
        log(f"quality: Joey trains {args.minutes:g} min, then decodes")
        results["joey"]["quality"] = joey_run("peer_quality", args.minutes, decode=True)
        results["loads"].append(busy_cores())
        log(f"quality: attnmt trains {args.minutes:g} min, then decodes")
        quality = attnmt_train(work / "quality", args.minutes, True, data, Path(args.config))
        for beam in (1, 5):
            quality[f"decode{beam}"] = attnmt_decode(work / "quality", beam)
        results["attnmt"]["quality"] = quality
    (work / "peer.json").write_text(json.dumps(results, indent=1))
    title = "attnmt against Joey NMT, side by side" + (" (quick)" if args.quick else "")
    runs = [w for w in results["windows"] if w["toolkit"] == "attnmt"]
    runs += [results["attnmt"]["quality"]] if "quality" in results["attnmt"] else []
    chosen = "; ".join(sorted({str(r.get("precision")) for r in runs}))
    model = os.path.relpath(args.config, common.ROOT)  # never raises, unlike relative_to
    notes = (
        f"attnmt's model: `{model}`. {NOTES} attnmt's `train.precision: auto`, as each of its "
        f"runs measured it: {chosen}."
    )
    record(results, table(results), title, notes, not args.no_record)
    log(f"raw figures: {work / 'peer.json'}")


if __name__ == "__main__":
    main()
