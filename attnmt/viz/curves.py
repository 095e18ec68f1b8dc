"""Learning curves and BLEU by source length, from runs' metrics logs.

Like :mod:`attnmt.viz.plot`, every function builds a Figure with the object-oriented API
and touches no global matplotlib state."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from attnmt.errors import UserError
from attnmt.translate.words import merge_attention as merge_attention
from attnmt.translate.words import merge_labels as merge_labels
from attnmt.translate.words import word_attention as word_attention

# (split, metric, y-axis label) for each row of the learning-curve grid.
CURVES = (
    ("train", "loss", "train loss"),
    ("dev", "loss", "dev loss"),
    ("dev", "bleu", "dev BLEU"),
)


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a run's ``metrics.jsonl``: one JSON object per line.

    Blank lines are skipped and a malformed *last* line is dropped (the run may have
    been stopped while writing it); a malformed line anywhere else is a UserError.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise UserError(f"cannot read metrics file {path}: {err.strerror}") from err
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    records = []
    for position, (number, line) in enumerate(numbered):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if position == len(numbered) - 1:
                break  # a truncated last line
            raise UserError(f"{path}:{number}: not a JSON object: {line[:60]!r}") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}:{number}: not a JSON object: {line[:60]!r}")
        records.append(record)
    return records


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_series(
    records: Sequence[Mapping[str, Any]], split: str, metric: str, x: str = "step"
) -> tuple[list[float], list[float]]:
    """The (x, y) points of one metric of one split, in file order, skipping gaps."""
    points = [
        (float(record[x]), float(record[metric]))
        for record in records
        if record.get("split") == split
        and _is_number(record.get(x))
        and _is_number(record.get(metric))
    ]
    return [p[0] for p in points], [p[1] for p in points]


def time_unit(seconds: float) -> tuple[float, str]:
    """(divisor, name) to show a wall time whose largest value is `seconds`."""
    if seconds >= 2 * 3600:
        return 3600.0, "h"
    if seconds >= 2 * 60:
        return 60.0, "min"
    return 1.0, "s"


LINESTYLES = ("-", "--", ":", "-.")  # after ten runs the colours repeat with a new line style


LEGEND_INSIDE_MAX = 4  # more runs than this: the BLEU-by-length legend goes outside


def run_style(index: int) -> tuple[str, str]:
    """(colour, line style) of the run at `index`, distinct for the first 40 runs."""
    return f"C{index % 10}", LINESTYLES[index // 10 % len(LINESTYLES)]


def _legend_label(name: str) -> str:
    """A run name as legend text: "$" is literal, not the start of a formula."""
    return name.replace("$", r"\$")


def _curve_panel(
    ax: Axes,
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
    split: str,
    metric: str,
    x: str,
    scale: float,
) -> dict[str, Line2D]:
    """Plot one metric of every run into `ax` (x values divided by `scale`).

    Returns the line drawn for each run that has data; a panel without any says so.
    """
    lines = {}
    for i, (name, records) in enumerate(runs.items()):
        xs, ys = metric_series(records, split, metric, x)
        if xs:
            (lines[name],) = ax.plot(
                [v / scale for v in xs],
                ys,
                color=run_style(i)[0],  # the run's colour and line, the same in every panel
                linestyle=run_style(i)[1],
                label=_legend_label(name),
                marker="." if split == "dev" else "",
                linewidth=1.2,
            )
    if not lines:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.grid(alpha=0.3)
    return lines


def curves_figure(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> Figure:
    """Learning curves of several runs overlaid: a 3 × 2 grid.

    Rows are train loss, dev loss and dev BLEU; the left column plots them against the
    training step, the right one against training wall time ("time", seconds since the
    run started, shown in s, min or h). Each run keeps one colour in every panel, and
    one legend names them all. Panels without data say so.

    Args:
        runs: run name -> its metrics records (as from :func:`read_metrics`).
    """
    times = [float(r["time"]) for rs in runs.values() for r in rs if _is_number(r.get("time"))]
    divisor, unit = time_unit(max(times, default=0.0))
    fig = Figure(figsize=(11.0, 9.0), layout="constrained")
    axes = fig.subplots(len(CURVES), 2, squeeze=False)
    handles: dict[str, Line2D] = {}
    for row, (split, metric, y_label) in enumerate(CURVES):
        for column, (x, scale, x_label) in enumerate(
            (("step", 1.0, "step"), ("time", divisor, f"training time ({unit})"))
        ):
            ax = axes[row, column]
            handles.update(_curve_panel(ax, runs, split, metric, x, scale))
            ax.set_xlabel(x_label)
            ax.set_ylabel(y_label)
    if handles:
        ordered = [handles[name] for name in runs if name in handles]
        labels = [_legend_label(name) for name in runs if name in handles]
        fig.legend(ordered, labels, loc="outside upper center", ncols=min(len(labels), 4))
    return fig


def bleu_by_length_figure(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> Figure:
    """BLEU against source-length bucket, one line per run (Bahdanau et al. 2015, Fig. 2).

    Args:
        runs: run name -> rows from :func:`attnmt.evaluate.study.bleu_by_length` (each with
            "bucket", "low" and "bleu"; a bucket without sentences has bleu None).
    """
    buckets: dict[str, float] = {}  # label -> lower edge, to order the x axis
    for rows in runs.values():
        for row in rows:
            buckets[row["bucket"]] = row["low"]
    labels = sorted(buckets, key=buckets.__getitem__)
    outside = len(runs) > LEGEND_INSIDE_MAX  # many runs: the legend goes right of the plot
    width = max(5.0, 1.0 + 0.8 * len(labels)) + (2.4 if outside else 0.0)
    fig = Figure(figsize=(width, 3.8), layout="constrained")
    ax = fig.add_subplot()
    for i, (name, rows) in enumerate(runs.items()):
        by_label = {row["bucket"]: row.get("bleu") for row in rows}
        ys = [by_label.get(label) for label in labels]
        ax.plot(
            range(len(labels)),
            [np.nan if y is None else y for y in ys],
            marker="o",
            color=run_style(i)[0],
            linestyle=run_style(i)[1],
            label=_legend_label(name),
        )
    ax.set_xticks(range(len(labels)), labels, parse_math=False)
    ax.set_xlabel("source length (tokens)")
    ax.set_ylabel("BLEU")
    ax.grid(alpha=0.3)
    if outside:
        fig.legend(loc="outside right upper", fontsize=8)
    elif runs:
        ax.legend(fontsize=8)
    return fig
