"""A comparison report of several runs: one self-contained HTML page plus JSON and CSV.

`write_report` writes three files into a folder:

- ``report.html``: summary table, BLEU by source length, attention statistics, the same
  sentences' attention heatmaps side by side for every run, learning curves, and the
  command and date that made it. Every image is embedded as a base64 PNG data URI and the
  CSS is inline, so the page opens offline and makes no request of any kind.
- ``results.json`` and ``results.csv``: the numbers of those tables, for other tools.

Each file is written atomically (temporary file, then rename). The numbers come in as
:class:`RunResult` objects of plain Python values; nothing here trains or decodes.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy.typing as npt
from matplotlib.figure import Figure

from attnmt.files import write_bytes_atomic
from attnmt.translate.words import WORD_START, as_matrix
from attnmt.viz.curves import bleu_by_length_figure, curves_figure
from attnmt.viz.plot import ANNOTATE_BELOW, attention_figure, figure_bytes, heads_figure

MAX_EXAMPLES = 3  # sentences shown per run in the heatmap grid


@dataclass
class Example:
    """One sentence as one run translated it, for the side-by-side heatmaps."""

    src_tokens: list[str]  # the S source tokens (the same sentence in every run)
    tgt_tokens: list[str]  # this run's output tokens, without EOS
    weights: npt.ArrayLike | None = None  # (T, S) or (T + 1, S) with EOS; None: no attention
    heads: npt.ArrayLike | None = None  # (layers, heads, T + 1, S): every head, if several


@dataclass
class RunResult:
    """Everything the report shows about one run. Missing numbers are None."""

    name: str  # unique among the runs of one report
    config: dict[str, Any] = field(default_factory=dict)  # e.g. decoder, score, window
    bleu: float | None = None  # test BLEU (sacrebleu)
    chrf: float | None = None  # test chrF
    ppl: float | None = None  # test perplexity
    parameters: int | None = None  # trainable parameters
    train_tgt_tokens_per_s: float | None = None  # training speed, target tokens/s
    decode_sents_per_s: float | None = None  # decoding speed, sentences/s
    peak_memory_mb: float | None = None  # peak memory while training
    wall_time_s: float | None = None  # training wall time
    bleu_by_length: list[dict[str, Any]] = field(default_factory=list)  # study.bleu_by_length
    attention_entropy: float | None = None  # study.attention_entropy; None: no attention
    monotonicity: float | None = None  # study.monotonicity; None: no attention
    aer: float | None = None  # alignment error rate vs gold (evaluate.alignment); None: unknown
    dialogue: dict[str, float] = field(default_factory=dict)
    """Dialogue runs: word_ppl, distinct_1, distinct_2, reply_len, unique and generic of
    the replies (evaluate.dialogue), and with conversation ids hits_1, mrr, hits_1_mean
    and mrr_mean (evaluate.relevance)."""
    history: list[dict[str, Any]] = field(default_factory=list)  # metrics.jsonl records
    examples: list[Example] = field(default_factory=list)  # up to MAX_EXAMPLES sentences


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    if seconds >= 60:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{seconds:.1f} s"


# (RunResult field, column heading, how to show a value) for the summary table, in order.
METRICS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("bleu", "BLEU", "{:.2f}".format),
    ("chrf", "chrF", "{:.2f}".format),
    ("ppl", "Perplexity", "{:.2f}".format),
    ("aer", "AER", "{:.3f}".format),
    ("parameters", "Parameters", "{:,}".format),
    ("train_tgt_tokens_per_s", "Train tgt tokens/s", "{:,.0f}".format),
    ("decode_sents_per_s", "Decode sentences/s", "{:,.1f}".format),
    ("peak_memory_mb", "Peak memory (MB)", "{:,.0f}".format),
    ("wall_time_s", "Wall time", _duration),
)
ATTENTION_STATS = ("attention_entropy", "monotonicity")
DIALOGUE_METRICS = (  # summary columns shown only when some run is a dialogue model
    ("word_ppl", "Perplexity per word", "{:.1f}".format),
    ("hits_1", "Hits@1/20", "{:.3f}".format),
    ("mrr", "MRR", "{:.3f}".format),
    ("distinct_1", "Distinct-1", "{:.3f}".format),
    ("distinct_2", "Distinct-2", "{:.3f}".format),
    ("reply_len", "Reply length (words)", "{:.1f}".format),
    ("generic", "Generic replies", "{:.1%}".format),
)

CSS = resources.files("attnmt.viz").joinpath("report.css").read_text(encoding="utf-8")
"""The report's style sheet, kept in report.css beside this module."""


# --------------------------------------------------------------------------- html bits


def _e(value: Any) -> str:
    """Any value as escaped HTML text."""
    return html.escape(str(value), quote=True)


def _cell(value: Any, show: Callable[[Any], str] = str) -> str:
    """A table cell: numbers right-aligned, missing or non-finite values as a dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return '<td class="num">—</td>'
    return f'<td class="num">{_e(show(value))}</td>'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; `header` is plain text, `rows` hold finished <td> cells."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(fig: Figure, alt: str, dpi: float = 100) -> str:
    """The figure as an <img> with an embedded base64 PNG (no file, no request)."""
    data = base64.b64encode(figure_bytes(fig, "png", dpi)).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(alt)}">'


def _sentence(tokens: Sequence[str]) -> str:
    """Tokens as readable text: sentencepiece pieces ("▁" starts a word) are joined into
    words; other tokens are joined with spaces."""
    if any(token.startswith(WORD_START) for token in tokens):
        return "".join(tokens).replace(WORD_START, " ").strip()
    return " ".join(tokens)


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(heading)}</h2>\n{body}\n</section>'


# --------------------------------------------------------------------------- sections


def _summary(runs: Sequence[RunResult]) -> str:
    dialogue = DIALOGUE_METRICS if any(run.dialogue for run in runs) else ()
    rows = []
    for run in runs:
        config = "<br>".join(f"{_e(key)}={_e(value)}" for key, value in run.config.items())
        metrics = [_cell(getattr(run, name), show) for name, _, show in METRICS]
        metrics += [_cell(run.dialogue.get(name), show) for name, _, show in dialogue]
        rows.append([f"<th>{_e(run.name)}</th>", f"<td>{config}</td>", *metrics])
    headings = [heading for _, heading, _ in (*METRICS, *dialogue)]
    return _table(["Run", "Config", *headings], rows)


def _bucket_labels(runs: Sequence[RunResult]) -> list[str]:
    """Every bucket label of any run, ordered by the bucket's lower edge."""
    lows = {row["bucket"]: row["low"] for run in runs for row in run.bleu_by_length}
    return sorted(lows, key=lows.__getitem__)


def _by_length(runs: Sequence[RunResult]) -> str:
    """The figure, then a table with one row per run and one column per length bucket
    (the heading gives the bucket's sentence count), which fits any number of runs."""
    labels = _bucket_labels(runs)
    if not labels:
        return '<p class="note">No run has BLEU by source length.</p>'
    figure = bleu_by_length_figure({run.name: run.bleu_by_length for run in runs})
    by_run = [{row["bucket"]: row for row in run.bleu_by_length} for run in runs]
    header = ["Run"]
    for label in labels:
        counts = sorted({rows[label]["count"] for rows in by_run if label in rows})
        header.append(f"{label} ({' / '.join(map(str, counts))} sentences)")
    table_rows = []
    for run, rows in zip(runs, by_run, strict=True):
        cells = []
        for label in labels:
            row = rows.get(label)
            cells.append(_cell(None if row is None or row["bleu"] is None else row, _bleu_chrf))
        table_rows.append([f"<th>{_e(run.name)}</th>", *cells])
    note = '<p class="note">Each cell: BLEU / chrF of the sentences in that bucket.</p>'
    return _image(figure, "BLEU by source length") + note + _table(header, table_rows)


def _bleu_chrf(row: dict[str, Any]) -> str:
    return f"{row['bleu']:.2f} / {row['chrf']:.2f}"


def _attention_stats(runs: Sequence[RunResult]) -> str:
    explain = (
        "<p>Entropy is the mean over target tokens of −Σ<sub>j</sub> α<sub>tj</sub> log "
        "α<sub>tj</sub> in nats: 0 when a token attends to one source position, log S when "
        "it attends uniformly. Monotonicity is the share of target tokens (after the first) "
        "whose most-attended source position is not left of the previous token's; 1 for a "
        "diagonal alignment, 0 for a reversed one. A dash: the run has no attention.</p>"
    )
    rows = [
        [
            f"<th>{_e(run.name)}</th>",
            _cell(run.attention_entropy, "{:.3f}".format),
            _cell(run.monotonicity, "{:.3f}".format),
        ]
        for run in runs
    ]
    return explain + _table(["Run", "Attention entropy (nats)", "Monotonicity"], rows)


COMPACT_SCALE = 0.5  # large heatmaps in the report: this much of the natural size


def _compact(fig: Figure, rows: int, columns: int) -> Figure:
    """Shrink a heatmap too large for cell annotations: the cells get smaller, the labels
    keep their point size, so several runs' heatmaps fit side by side and stay legible."""
    if max(rows, columns) > ANNOTATE_BELOW:
        width, height = fig.get_size_inches()
        fig.set_size_inches(width * COMPACT_SCALE, height * COMPACT_SCALE)
    return fig


def _example_figure(run: RunResult, index: int) -> str:
    """Run `run`'s heatmap of sentence `index` with the run's output, or a note why none."""
    name = f'<div class="run">{_e(run.name)}</div>'
    if index >= len(run.examples):
        return f'<figure class="text">{name}<p class="note">No example.</p></figure>'
    example = run.examples[index]
    caption = f"<figcaption>{_e(_sentence(example.tgt_tokens))}</figcaption>"
    if example.weights is None:
        note = '<p class="note">No attention: this model has no attention weights.</p>'
        return f'<figure class="text">{name}{note}{caption}</figure>'
    matrix = as_matrix(example.weights)  # (T, S) or (T + 1, S)
    fig = _compact(attention_figure(example.src_tokens, example.tgt_tokens, matrix), *matrix.shape)
    image = _image(fig, f"attention of {run.name} on sentence {index + 1}", dpi=80)
    if example.heads is not None:  # every layer × head, below the mean map
        grid = heads_figure(example.src_tokens, example.tgt_tokens, example.heads, annotate_below=0)
        alt = f"every head of {run.name} on sentence {index + 1}"
        image += f"<details><summary>every head</summary>{_image(grid, alt, dpi=60)}</details>"
    return f"<figure>{name}{image}{caption}</figure>"


def _heatmaps(runs: Sequence[RunResult]) -> str:
    """One table per sentence: its source as the heading, then every run's heatmap of it,
    side by side and wrapping, so the runs are compared on the same sentence."""
    count = min(MAX_EXAMPLES, max(len(run.examples) for run in runs))
    if count == 0:
        return '<p class="note">No example sentences.</p>'
    tables = []
    for index in range(count):
        sources = [run.examples[index].src_tokens for run in runs if index < len(run.examples)]
        header = f"Sentence {index + 1}<br>{_e(_sentence(sources[0]))}"
        if any(source != sources[0] for source in sources):
            header += '<br><span class="note">(runs translated different sources here)</span>'
        figures = "".join(_example_figure(run, index) for run in runs)
        tables.append(
            f'<table class="grid"><thead><tr><th>{header}</th></tr></thead>'
            f'<tbody><tr><td><div class="heatmaps">{figures}</div></td></tr></tbody></table>'
        )
    return "\n".join(tables)


def _curves(runs: Sequence[RunResult]) -> str:
    if not any(run.history for run in runs):
        return '<p class="note">No metrics history.</p>'
    return _image(curves_figure({run.name: run.history for run in runs}), "learning curves")


def _provenance(command: str, date: datetime) -> str:
    return (
        f"<p>Command:</p><pre>{_e(command)}</pre>"
        f"<p>Date: <time>{_e(date.isoformat(timespec='seconds'))}</time></p>"
    )


SECTIONS = (  # (anchor, heading) of each section, in page order
    ("summary", "Summary"),
    ("bleu-by-length", "BLEU by source length"),
    ("attention-statistics", "Attention statistics"),
    ("heatmaps", "Attention heatmaps"),
    ("learning-curves", "Learning curves"),
    ("provenance", "How this report was made"),
)


def _notes(notes: Sequence[str]) -> str:
    """How the numbers were measured, as a list under the summary table."""
    if not notes:
        return ""
    return '<ul class="note">' + "".join(f"<li>{_e(note)}</li>" for note in notes) + "</ul>"


def render_html(
    runs: Sequence[RunResult],
    command: str,
    date: datetime,
    title: str = "attnmt report",
    notes: Sequence[str] = (),
) -> str:
    """The whole report page as one string; `notes` (plain text) follow the summary."""
    bodies = [
        _summary(runs) + _notes(notes),
        _by_length(runs),
        _attention_stats(runs),
        _heatmaps(runs),
        _curves(runs),
        _provenance(command, date),
    ]
    contents = "".join(f'<li><a href="#{anchor}">{_e(h)}</a></li>' for anchor, h in SECTIONS)
    sections = "\n".join(
        _section(anchor, heading, body)
        for (anchor, heading), body in zip(SECTIONS, bodies, strict=True)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n"
        f"<body><h1>{_e(title)}</h1><nav><ul>{contents}</ul></nav>\n{sections}\n</body></html>\n"
    )


# --------------------------------------------------------------------------- data files


def _finite(value: Any) -> Any:
    """A plain JSON-ready number: numpy scalars become Python ones, and NaN and infinities
    become None (JSON has no NaN, and a blank reads better in a CSV)."""
    if hasattr(value, "item"):  # a numpy or torch scalar
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def result_record(run: RunResult) -> dict[str, Any]:
    """The numbers of one run as written to results.json (no history, no examples)."""
    record: dict[str, Any] = {"name": run.name, "config": dict(run.config)}
    for name in (*(name for name, _, _ in METRICS), *ATTENTION_STATS):
        record[name] = _finite(getattr(run, name))
    if run.dialogue:
        record["dialogue"] = {key: _finite(value) for key, value in run.dialogue.items()}
    record["bleu_by_length"] = [
        {key: _finite(value) for key, value in row.items()} for row in run.bleu_by_length
    ]
    return record


def results_json(runs: Sequence[RunResult], command: str, date: datetime) -> str:
    document = {
        "command": command,
        "date": date.isoformat(timespec="seconds"),
        "runs": [result_record(run) for run in runs],
    }
    return json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n"


def results_csv(runs: Sequence[RunResult]) -> str:
    """One row per run: name, config.<key> columns, the metrics, then per bucket
    bleu/chrf/count columns named like ``bleu_len_10-19``. Missing values are blank."""
    config_keys = list(dict.fromkeys(key for run in runs for key in run.config))
    labels = _bucket_labels(runs)
    bucket_columns = [f"{m}_len_{label}" for label in labels for m in ("bleu", "chrf", "count")]
    metric_names = [name for name, _, _ in METRICS]
    header = ["name", *(f"config.{k}" for k in config_keys), *metric_names, *ATTENTION_STATS]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, [*header, *bucket_columns], lineterminator="\n")
    writer.writeheader()
    for run in runs:
        record = result_record(run)
        row = {"name": run.name, **{f"config.{k}": v for k, v in run.config.items()}}
        row.update({name: record[name] for name in [*metric_names, *ATTENTION_STATS]})
        for bucket in record["bleu_by_length"]:
            for m in ("bleu", "chrf", "count"):
                row[f"{m}_len_{bucket['bucket']}"] = bucket[m]
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


# --------------------------------------------------------------------------- entry point


def write_report(
    out_dir: Path,
    runs: Sequence[RunResult],
    *,
    command: str,
    date: datetime | None = None,
    title: str = "attnmt report",
    notes: Sequence[str] = (),
) -> Path:
    """Write report.html, results.json and results.csv for `runs` into `out_dir`.

    Args:
        out_dir: the folder to write into (created if missing).
        runs: the runs to compare, in column order; names must be unique.
        command: the command line that made the report, shown at the end of it.
        date: when it was made; now (local time) by default.
        title: the page title.
        notes: plain-text remarks shown under the summary table (how numbers were made).

    Returns:
        The path of report.html.
    """
    if not runs:
        raise ValueError("write_report needs at least one run")
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"run names must be unique, got {names}")
    date = date or datetime.now().astimezone()
    out_dir = Path(out_dir)
    write_bytes_atomic(out_dir / "results.json", results_json(runs, command, date).encode("utf-8"))
    write_bytes_atomic(out_dir / "results.csv", results_csv(runs).encode("utf-8"))
    report = out_dir / "report.html"
    write_bytes_atomic(report, render_html(runs, command, date, title, notes).encode("utf-8"))
    return report
