"""``python -m benchmarks.peer``: the alternated speed windows, the quality runs, the
report (what each measures: the package's docstring)."""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.peer import FAMILIES, Family, choose, joey, ours
from benchmarks.peer import __doc__ as OVERVIEW
from benchmarks.peer.process import busy_cores, log
from benchmarks.peer.report import IDLE_BUSY, NOTES, fmt, record, tables

DATA = common.ROOT.parent / "shared/data/multi30k"
SMOKE_LOGGING_FREQ = 1  # Joey's logging_freq with --sentences
Results = dict[str, Any]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peer",
        description=(OVERVIEW or "").splitlines()[0],
        epilog="Details: the docstring of benchmarks/peer/__init__.py.",
    )
    parser.add_argument("--family", choices=FAMILIES, default="rnn", help="the pair of configs")
    parser.add_argument("--config", help="attnmt's model, in place of the family's preset")
    parser.add_argument(
        "--with-rnn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time attnmt's RNN reference in the same windows (default: on for transformer)",
    )
    parser.add_argument("--quick", action="store_true", help="training speed and RSS only")
    parser.add_argument("--window-minutes", type=float, default=5.0, help="per window")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of alternated windows")
    parser.add_argument("--minutes", type=float, default=30.0, help="quality budget")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[1], help="one quality run per seed and side"
    )
    parser.add_argument(
        "--joey-valid-freq", type=int, help="Joey's validation_freq in the quality runs"
    )
    parser.add_argument(
        "--sentences", type=int, help="smoke tests: dev and test cut to N sentences"
    )
    parser.add_argument("--data", default=str(DATA), help="Multi30k raw data (gz)")
    parser.add_argument("--work", help="runs and logs (default /tmp/attnmt_peer/<time>)")
    parser.add_argument("--no-record", action="store_true", help="print, do not append")
    parser.add_argument("--decode-child", help=argparse.SUPPRESS)
    parser.add_argument("--beam", type=int, default=5, help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    parser.add_argument("--text", default=str(joey.DATA), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def smoke_data(folder: Path, sentences: int, data: Path) -> tuple[Path, Path]:
    """Multi30k with the dev and test sets cut to their first `sentences`: for attnmt
    (gz, the training set linked from `data`) and for Joey (raw text, with setup.sh's
    training set, BPE and vocabulary linked)."""
    ours_data, joey_data = folder / "attnmt", folder / "joey"
    for made in (ours_data, joey_data):
        made.mkdir(parents=True, exist_ok=True)
    for path in joey.DATA.iterdir():
        if path.name.startswith(("train.", "spm_", "vocab_")):
            (joey_data / path.name).unlink(missing_ok=True)
            (joey_data / path.name).symlink_to(path)
    for lang in ("de", "en"):
        (ours_data / f"train.{lang}.gz").unlink(missing_ok=True)
        (ours_data / f"train.{lang}.gz").symlink_to(data / f"train.{lang}.gz")
        for stem in ("val", "test_2016_flickr"):
            lines = (joey.DATA / f"{stem}.{lang}").read_text(encoding="utf-8").splitlines()
            kept = "".join(line + "\n" for line in lines[:sentences])
            (joey_data / f"{stem}.{lang}").write_text(kept, encoding="utf-8")
            with gzip.open(ours_data / f"{stem}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write(kept)
    return ours_data, joey_data


def joey_config(args: argparse.Namespace, source: Path, work: Path, seed: int, text: Path) -> Path:
    """The copy of Joey's config that its runs with `seed` train (smoke tests log every
    step, so that any validation_freq is a multiple)."""
    logging = SMOKE_LOGGING_FREQ if args.sentences else joey.config_logging_freq(source)
    return joey.write_config(source, work / f"joey/seed{seed}", seed, text, logging)


def speed_windows(
    args: argparse.Namespace, models: dict[str, Path], work: Path, data: Path, text: Path
) -> tuple[list[Results], list[float]]:
    """Each round, one training window per toolkit in the order of `models` (joey,
    attnmt, and the RNN reference where timed), none validating; and how busy the
    machine was before each."""
    config = joey_config(args, models["joey"], work, 1, text)
    windows, loads = [], []
    for k in range(1, args.rounds + 1):
        for toolkit, model in models.items():
            loads.append(busy_cores())
            log(f"window {k}, {toolkit}: {args.window_minutes:g} min of training")
            if toolkit == "joey":
                logs = work / f"joey/peer_window{k}"
                window = joey.run(config, logs, args.window_minutes, None, text)
            else:
                run_dir = work / f"{toolkit}_window{k}"
                window = ours.train(run_dir, model, args.window_minutes, False, data)
            window["toolkit"] = toolkit
            log(f"  {fmt(window['tok_per_s'])} tok/s, peak RSS {fmt(window['train_rss_mib'])} MiB")
            windows.append(window)
    return windows, loads


def quality_run(
    args: argparse.Namespace, seed: int, models: dict[str, Path], work: Path, data: Path, text: Path
) -> tuple[Results, list[float]]:
    """Each toolkit trains `args.minutes` with validation, then decodes with the
    checkpoint of its best dev BLEU."""
    valid_freq = args.joey_valid_freq or FAMILIES[args.family].valid_freq
    loads = [busy_cores()]
    log(f"quality, seed {seed}: Joey trains {args.minutes:g} min, then decodes")
    config = joey_config(args, models["joey"], work, seed, text)
    logs = work / f"joey/peer_quality_s{seed}"
    theirs = joey.run(config, logs, args.minutes, valid_freq, text)
    loads.append(busy_cores())
    log(f"quality, seed {seed}: attnmt trains {args.minutes:g} min, then decodes")
    run_dir = work / f"quality_s{seed}"
    mine = ours.train(run_dir, models["attnmt"], args.minutes, True, data, seed)
    mine.update(ours.best_checkpoint(run_dir))
    for mode, beam in (("greedy", 1), ("beam5", 5)):  # the keys Joey's results use
        decoded = ours.decode(run_dir, beam, text)  # bleu, sent_per_s, rss_mib
        mine.update({f"{mode}_{key}": value for key, value in decoded.items()})
    bleu = [fmt(side.get("beam5_bleu"), 2) for side in (mine, theirs)]
    log(f"  test BLEU, beam 5: attnmt {bleu[0]}, Joey {bleu[1]}")
    return {"seed": seed, "attnmt": mine, "joey": theirs}, loads


def shown(path: Path) -> str:
    return os.path.relpath(path, common.ROOT)  # never raises, unlike relative_to


def about(args: argparse.Namespace, family: Family, models: dict[str, Path]) -> list[str]:
    """The section's lines naming the family and the configs."""
    valid_freq = args.joey_valid_freq or family.valid_freq
    lines = [
        f"- family: `{args.family}`; attnmt: `{shown(models['attnmt'])}`; Joey NMT: "
        f"`{shown(models['joey'])}` (random_seed as attnmt's train.seed; validation every "
        f"{valid_freq} steps in the quality runs)",
    ]
    if "reference" in models:
        lines.append(
            f"- attnmt's RNN reference, timed in the same windows: `{shown(models['reference'])}`"
        )
    return lines


def precisions(results: Results) -> str:
    """The precision ``train.precision: auto`` chose in each of attnmt's runs, by model
    (no line printed: the CPU has no native bf16, so auto is fp32, or the config sets it)."""
    chosen = []
    for toolkit, name in (("attnmt", "attnmt's model"), ("reference", "the RNN reference")):
        runs = [w for w in results["windows"] if w["toolkit"] == toolkit]
        runs += [q["attnmt"] for q in results["quality"]] if toolkit == "attnmt" else []
        found = {r.get("precision") or "not timed (no native bf16: fp32)" for r in runs}
        chosen += [f"{name}: {'; '.join(sorted(found))}"] if runs else []
    return ", ".join(chosen)


def main() -> None:
    args = parse_args()
    if args.decode_child:
        ours.decode_child(args.decode_child, args.beam, args.json, Path(args.text))
        return
    family = FAMILIES[args.family]
    try:
        config, theirs, reference = choose(args.family, args.config, args.with_rnn)
        logging = SMOKE_LOGGING_FREQ if args.sentences else joey.config_logging_freq(theirs)
        joey.check_valid_freq(args.joey_valid_freq or family.valid_freq, logging)
    except ValueError as error:
        raise SystemExit(f"benchmarks.peer: {error}") from None
    models = {"joey": theirs, "attnmt": config}
    if reference is not None:
        models["reference"] = reference
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = Path(args.work or f"/tmp/attnmt_peer/{stamp}")
    work.mkdir(parents=True, exist_ok=True)
    busy = busy_cores()
    if busy > IDLE_BUSY:
        log(f"WARNING: {busy} cores busy with other work: the figures will not be valid")
    joey.setup()
    data, text = Path(args.data), joey.DATA
    if args.sentences:
        data, text = smoke_data(work / "data", args.sentences, data)
    windows, loads = speed_windows(args, models, work, data, text)
    results: Results = {"family": args.family, "models": {k: str(v) for k, v in models.items()}}
    results.update(commit=common.commit(), minutes=args.minutes, windows=windows, quality=[])
    for seed in [] if args.quick else args.seeds:
        run, more = quality_run(args, seed, models, work, data, text)
        results["quality"].append(run)
        loads += more
    results["loads"] = loads
    (work / "peer.json").write_text(json.dumps(results, indent=1))
    title = f"attnmt against Joey NMT, side by side: {family.name}"
    title += " (quick)" if args.quick else ""
    notes = (
        f"{NOTES} attnmt's `train.precision: auto`, as each run measured it: {precisions(results)}."
    )
    write = not args.no_record and not args.sentences
    record(results, about(args, family, models), tables(results, family), title, notes, write)
    log(f"raw figures: {work / 'peer.json'}")


if __name__ == "__main__":
    main()
