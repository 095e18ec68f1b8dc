"""The beam search tree of one sentence (what google/seq2seq's DumpBeams recorded and
Seq2Seq-Vis draws): every candidate of every step, kept, finished or pruned, with its
score, and the path that won.

One column per step (step t holds the candidates for the t-th output token), best at the
top; each candidate is joined to the hypothesis it extends in the column before. A
candidate's number is its log-probability so far, log P(y_1 .. y_t | x); a finished one
also shows the rank score s(Y, X) that search compares finished hypotheses by (the
length and coverage penalties applied), which is how a longer hypothesis can win.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from attnmt.search.trace import Candidate

STYLES = {  # fate -> (face colour, edge colour, text colour, edge line style)
    "live": ("#dbe9f6", "#2b6ca3", "black", "solid"),
    "ended": ("#d9f0d3", "#1b7837", "black", "solid"),
    "pruned": ("white", "#b0b0b0", "#8c8c8c", "dashed"),
}
WINNER = "#d95f02"  # the winning path's edges and boxes
LONGEST_LABEL = 12  # characters of a token shown before it is cut with "…"


def _short(label: str) -> str:
    return label if len(label) <= LONGEST_LABEL else label[: LONGEST_LABEL - 1] + "…"


def _positions(nodes: Sequence[Candidate]) -> list[tuple[float, float]]:
    """(x, y) of each node: x its step, y minus its rank within the step (best on top)."""
    rank_in_step: dict[int, int] = {}
    positions = []
    for node in nodes:
        row = rank_in_step.get(node.step, 0)
        rank_in_step[node.step] = row + 1
        positions.append((float(node.step), -float(row)))
    return positions


def beam_figure(
    nodes: Sequence[Candidate],
    labels: Sequence[str],
    won: Collection[int] = (),
    *,
    title: str | None = None,
    root_label: str = "<s>",
) -> Figure:
    """Draw a sentence's beam search tree.

    Args:
        nodes: the candidates of one sentence, step by step and best first within a step
            (``BeamTrace.candidates[b]``).
        labels: the text of each node's token.
        won: the nodes of the path that won, from the first step to its end
            (``BeamTrace.path``): drawn in orange.
        title: optional title.
        root_label: the label of the start, which every first-step candidate extends.
    """
    if len(labels) != len(nodes):
        raise ValueError(f"{len(labels)} labels for {len(nodes)} nodes")
    if not nodes:
        raise ValueError("beam_figure needs at least one candidate")
    steps = max(node.step for node in nodes)
    positions = _positions(nodes)
    rows = 1 + int(-min(y for _, y in positions))
    on_path = set(won)
    fig = Figure(
        figsize=(min(max(1.4 + 1.2 * (steps + 1), 7.5), 80.0), 1.9 + 0.62 * rows),
        layout="constrained",
    )
    ax = fig.add_subplot()
    for index, node in enumerate(nodes):  # edges first, under the boxes
        x, y = positions[index]
        px, py = positions[node.parent] if node.parent is not None else (0.0, 0.0)
        winning = index in on_path
        ax.plot(
            [px + 0.25, x - 0.25],
            [py, y],
            color=WINNER if winning else ("#d0d0d0" if node.fate == "pruned" else "#7f7f7f"),
            linewidth=2.6 if winning else 0.9,
            zorder=3 if winning else 1,
        )
    _box(ax, 0.0, 0.0, root_label, STYLES["live"], bool(on_path))
    for index, (node, label) in enumerate(zip(nodes, labels, strict=True)):
        text = f"{_short(label)}\n{node.score:.2f}"
        if node.fate == "ended" and node.rank_score is not None:
            text += f"\ns {node.rank_score:.2f}"
        _box(ax, *positions[index], text, STYLES[node.fate], index in on_path)
    for step in range(steps + 1):
        ax.text(step, 0.75, "start" if step == 0 else f"t={step}", ha="center", fontsize=8)
    ax.set_xlim(-0.6, steps + 0.6)
    ax.set_ylim(-(rows - 1) - 0.7, 1.0)
    ax.set_axis_off()
    ax.legend(
        handles=_legend(),
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=4,
        fontsize=8,
        title_fontsize=8,
        frameon=False,
        title="each box: the token and log P(y_1..y_t | x); s = log P / lp + cp, the rank "
        "score of a finished hypothesis. Search stops once no kept hypothesis can still win.",
    )
    if title is not None:
        ax.set_title(title, parse_math=False, fontsize=10)
    return fig


def _box(
    ax: Axes, x: float, y: float, text: str, style: tuple[str, str, str, str], won: bool
) -> None:
    face, edge, colour, line = style
    ax.text(
        x,
        y,
        text,
        ha="center",
        va="center",
        fontsize=8,
        color=colour,
        parse_math=False,
        zorder=4,
        bbox={
            "boxstyle": "round,pad=0.3",
            "facecolor": face,
            "edgecolor": WINNER if won else edge,
            "linewidth": 2.2 if won else 0.9,
            "linestyle": "solid" if won else line,
        },
    )


def _legend() -> list[Patch]:
    return [
        Patch(facecolor=STYLES["live"][0], edgecolor=STYLES["live"][1], label="kept in the beam"),
        Patch(
            facecolor=STYLES["ended"][0],
            edgecolor=STYLES["ended"][1],
            label="finished (</s>; s = rank score)",
        ),
        Patch(facecolor="white", edgecolor=STYLES["pruned"][1], linestyle="dashed", label="pruned"),
        Patch(facecolor="white", edgecolor=WINNER, linewidth=2.2, label="the path that won"),
    ]
