"""The benchmark's section of BENCHMARKS.md: every figure beside its peer's, as a ratio
with the issue's target, met or not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from benchmarks import common

if TYPE_CHECKING:
    from benchmarks.peer import Family

Results = dict[str, Any]
DECODES = (("greedy", "greedy"), ("beam5", "beam 5"))  # the results' key, the label
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
    "time from its first epoch to the interruption in its log, which in the quality run "
    "includes its validations; attnmt: as `attnmt train` reports it). Windows alternate "
    "Joey, attnmt (and attnmt's RNN reference where it is timed). Peak RSS: "
    "`/usr/bin/time -v` of each process. Ratios are attnmt / Joey (for RSS lower is "
    "better); for BLEU the column is attnmt − Joey. Each toolkit decodes the checkpoint of "
    "its best dev BLEU (Joey: `DECODE_CKPT=best`, among its validations, beam alpha 1.0; "
    'attnmt: `which="best"`, alpha 0.6), batched, generation time only; BLEU by sacrebleu '
    "with default settings against the same raw references."
)


def fmt(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None, digits: int = 2) -> str:
    return "n/a" if a is None or b is None or b == 0 else f"{a / b:.{digits}f}×"


def verdict(value: float | None, at_least: float | None, at_most: float | None) -> str:
    if value is None or (at_least is None and at_most is None):
        return ""
    met = (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
    return ": met" if met else ": **not met**"


def mean(values: Sequence[float | None]) -> float | None:
    return sum(values) / len(values) if values and None not in values else None  # type: ignore[arg-type]


def largest(values: Sequence[float | None]) -> float | None:
    return max(values) if values and None not in values else None  # type: ignore[type-var]


def row(
    name: str,
    x: float | None,
    y: float | None,
    target: str = "",
    at_least: float | None = None,
    at_most: float | None = None,
    digits: int = 0,
) -> str:
    """One row: measure | x | y | x / y | target, and whether x / y meets it."""
    quotient = x / y if x is not None and y else None
    cells = [name, fmt(x, digits), fmt(y, digits), ratio(x, y)]
    return "| " + " | ".join([*cells, target + verdict(quotient, at_least, at_most)]) + " |"


def speed_rows(
    windows: list[Results], ours: str, peer: str, goal: str, at_least: float
) -> list[str]:
    """Training speed (mean of the alternated windows, each pair) and peak RSS, `ours`
    against `peer` (the toolkit names of the windows)."""
    a = [w for w in windows if w["toolkit"] == ours]
    b = [w for w in windows if w["toolkit"] == peer]
    a_rates, b_rates = [w["tok_per_s"] for w in a], [w["tok_per_s"] for w in b]
    name = f"training target tokens/s (mean of {len(a_rates)} alternated windows each)"
    rows = [row(name, mean(a_rates), mean(b_rates), goal, at_least=at_least)]
    for k, (x, y) in enumerate(zip(a_rates, b_rates, strict=False), 1):
        rows.append(row(f"window pair {k}", x, y))
    a_rss, b_rss = [w["train_rss_mib"] for w in a], [w["train_rss_mib"] for w in b]
    name = "peak RSS of training, MiB (largest window)"
    rss_goal = ("≤ 1×", None, 1.0) if peer == "joey" else ("", None, None)
    rows.append(row(name, largest(a_rss), largest(b_rss), *rss_goal))
    return rows


def difference_row(name: str, x: float | None, y: float | None, at_least: float | None) -> str:
    """One row: measure | x | y | x − y | target, and whether x − y meets it."""
    diff = None if x is None or y is None else x - y
    target = "" if at_least is None else f"≥ +{at_least:g}" + verdict(diff, at_least, None)
    cells = [name, fmt(x, 2), fmt(y, 2), "n/a" if diff is None else f"{diff:+.2f}", target]
    return "| " + " | ".join(cells) + " |"


def quality_rows(runs: list[Results], minutes: float, family: Family) -> list[str]:
    """The quality runs (one per seed) as means over the seeds (peak RSS: the largest),
    with each seed's decoded checkpoint and, for several seeds, each one's beam-5 BLEU."""
    sides = [[run["attnmt"] for run in runs], [run["joey"] for run in runs]]

    def pair(key: str, combine: Any = mean) -> list[float | None]:
        return [combine([result.get(key) for result in side]) for side in sides]

    def checkpoint(result: Results) -> str:  # the step decoded, and its dev BLEU
        return f"{fmt(result.get('best_step'))} (dev {fmt(result.get('best_dev_bleu'), 2)})"

    seeds = ", ".join(str(run["seed"]) for run in runs)
    label = f"mean of seeds {seeds}" if len(runs) > 1 else f"seed {seeds}"
    rows = [
        row(f"steps in the {minutes:g}-min budget", *pair("steps")),
        row("training target tokens/s in that run", *pair("tok_per_s")),
        row("peak RSS of that training, MiB", *pair("train_rss_mib", largest), "≤ 1×", None, 1),
    ]
    for run in runs:
        cells = [checkpoint(run["attnmt"]), checkpoint(run["joey"]), "", ""]
        name = f"seed {run['seed']}: step of the decoded checkpoint (its dev BLEU)"
        rows.append("| " + " | ".join([name, *cells]) + " |")
    for mode, name in DECODES:
        goal = 2.0 if mode == "beam5" else None
        bleu = pair(f"{mode}_bleu")
        rows.append(difference_row(f"test_2016_flickr BLEU, {name} ({label})", *bleu, goal))
    for run in runs if len(runs) > 1 else []:
        bleu = [r.get("beam5_bleu") for r in (run["attnmt"], run["joey"])]
        rows.append(difference_row(f"seed {run['seed']}: BLEU, beam 5", *bleu, None))
    for mode, name in DECODES:
        goal = family.decode_targets.get(mode)
        target = "" if goal is None else f"≥ {goal:g}×"
        speeds = pair(f"{mode}_sent_per_s")
        rows.append(row(f"decoding sentences/s, {name}", *speeds, target, goal, None, 1))
    for mode, name in DECODES:
        peaks = pair(f"{mode}_rss_mib", largest)
        rows.append(row(f"peak RSS of decoding, {name}, MiB", *peaks, "≤ 1×", None, 1))
    return rows


def tables(results: Results, family: Family) -> list[str]:
    """attnmt against Joey; then, where the RNN reference was timed, attnmt's model
    against it."""
    rows = ["| measure | attnmt | Joey NMT | attnmt / Joey | target |", "|---|---|---|---|---|"]
    rows += speed_rows(results["windows"], "attnmt", "joey", family.speed_goal, family.speed_target)
    if results["quality"]:
        rows += quality_rows(results["quality"], results["minutes"], family)
    if any(w["toolkit"] == "reference" for w in results["windows"]):
        goal = f"≥ {family.reference_target:g}× (moonshot 2×)"
        rows += [
            "",
            "| measure | attnmt | attnmt's RNN reference | attnmt / RNN reference | target |",
            "|---|---|---|---|---|",
            *speed_rows(results["windows"], "attnmt", "reference", goal, family.reference_target),
        ]
    return rows


def record(
    results: Results, about: list[str], rows: list[str], title: str, notes: str, write: bool
) -> None:
    """Print the section (`about`: more lines for its list of facts); with `write`, append
    it to BENCHMARKS.md."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n## {title}\n",
        f"- command: `{common.command_line()}`",
        f"- machine: {common.machine()}",
        f"- date: {now}",
        f"- commit: {results['commit']}",
        *about,
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
