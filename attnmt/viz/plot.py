"""Figures for studying attention: heatmaps of one sentence, n-best panels, every head,
and saving figures (learning curves are in :mod:`attnmt.viz.curves`).

Every function builds a :class:`matplotlib.figure.Figure` directly (the object-oriented
API), so nothing here touches pyplot's global state: importing this module changes no
backend and no rcParams, and figures are freed as soon as they go out of scope.

Inputs are plain Python and numpy (torch tensors work too), so this module depends on
nothing in the training code; it is the plotting layer on top of the library, never the
other way round.

Attention weights are drawn on a fixed 0..1 colour scale, so heatmaps of different
sentences and different models can be compared cell by cell.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from attnmt.errors import UserError
from attnmt.files import write_bytes_atomic
from attnmt.translate.words import EOS_LABEL, as_matrix
from attnmt.translate.words import merge_attention as merge_attention
from attnmt.translate.words import merge_labels as merge_labels
from attnmt.translate.words import word_attention as word_attention

ANNOTATE_BELOW = 20  # write the weight into each cell when both sides have at most this


CMAP = "Blues"  # white for 0, dark blue for 1


FORMATS = {".png": "png", ".svg": "svg"}  # file suffix -> matplotlib format


def _row_labels(tgt_tokens: Sequence[str], rows: int) -> list[str]:
    """Target labels for `rows` rows: the tokens, plus "</s>" for an extra EOS row."""
    if rows == len(tgt_tokens):
        return list(tgt_tokens)
    if rows == len(tgt_tokens) + 1:
        return [*tgt_tokens, EOS_LABEL]
    raise ValueError(
        f"attention has {rows} rows for {len(tgt_tokens)} target tokens "
        "(expected one row per token, plus optionally one for EOS)"
    )


def _font_size(n: int) -> float:
    """Tick label size that still fits when there are n labels on an axis."""
    return 9.0 if n <= 30 else max(5.0, 9.0 - (n - 30) / 15)


def heatmap_size(rows: int, columns: int, longest_label: int = 8) -> tuple[float, float]:
    """Figure (width, height) in inches for a rows × columns heatmap with a colorbar."""
    label_room = 0.3 + 0.065 * min(longest_label, 30)  # rotated source labels, y labels
    width = 1.2 + label_room + 0.42 * columns
    height = 0.9 + label_room + 0.34 * rows
    return min(max(width, 3.5), 24.0), min(max(height, 2.5), 24.0)


def draw_heatmap(
    ax: Axes,
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    weights: npt.ArrayLike,
    *,
    annotate_below: int = ANNOTATE_BELOW,
    x_label: str = "source",
    y_label: str = "target",
) -> AxesImage:
    """Draw attention weights into `ax`: sources on x, targets on y; returns the image.

    `weights` has shape (T, S) with S = len(src_tokens) and T = len(tgt_tokens), or one
    more row for the EOS step (labelled "</s>"). Cells carry their weight as text when
    the matrix is at most `annotate_below` on both sides. For self-attention the axes
    are keys and queries of one sequence: name them with `x_label` and `y_label`.
    """
    matrix = as_matrix(weights)  # (T, S)
    rows, columns = matrix.shape
    if columns != len(src_tokens):
        raise ValueError(f"attention has {columns} columns for {len(src_tokens)} source tokens")
    tgt_labels = _row_labels(tgt_tokens, rows)
    image = ax.imshow(matrix, cmap=CMAP, vmin=0.0, vmax=1.0, aspect="auto")
    # parse_math=False: a token such as "$5" is text, not the start of a formula.
    ax.set_xticks(
        range(columns),
        list(src_tokens),
        rotation=60,
        ha="right",
        rotation_mode="anchor",
        fontsize=_font_size(columns),
        parse_math=False,
    )
    ax.set_yticks(range(rows), tgt_labels, fontsize=_font_size(rows), parse_math=False)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.tick_params(length=0)
    if max(rows, columns) <= annotate_below:
        for t in range(rows):
            for j in range(columns):
                weight = matrix[t, j]
                ax.text(
                    j,
                    t,
                    f"{weight:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if weight > 0.6 else "black",
                )
    return image


def attention_figure(
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    weights: npt.ArrayLike,
    *,
    title: str | None = None,
    annotate_below: int = ANNOTATE_BELOW,
    ax: Axes | None = None,
    x_label: str = "source",
    y_label: str = "target",
) -> Figure:
    """A heatmap of one sentence's attention weights, with a colorbar.

    Args:
        src_tokens: the S source tokens, shown along x.
        tgt_tokens: the target tokens, shown down y (an extra EOS row gets "</s>").
        weights: (T, S) weights; row t is the distribution target t attends with.
        title: optional title.
        annotate_below: write weights into the cells when T and S are both at most this.
        ax: draw into these axes (of an existing figure) instead of a new figure.

    Returns:
        The figure drawn on; a new one is sized from the matrix.
    """
    matrix = as_matrix(weights)
    if ax is None:
        longest = max((len(token) for token in [*src_tokens, *tgt_tokens]), default=1)
        fig = Figure(
            figsize=heatmap_size(matrix.shape[0], matrix.shape[1], longest), layout="constrained"
        )
        ax = fig.add_subplot()
    parent = ax.figure  # the figure, or the subfigure that holds `ax`
    fig = parent if isinstance(parent, Figure) else parent.figure
    image = draw_heatmap(
        ax,
        src_tokens,
        tgt_tokens,
        matrix,
        annotate_below=annotate_below,
        x_label=x_label,
        y_label=y_label,
    )
    parent.colorbar(image, ax=ax, fraction=0.05, pad=0.02, label="attention weight")
    if title is not None:
        ax.set_title(title, parse_math=False)
    return fig


def nbest_figure(
    src_tokens: Sequence[str],
    hyps: Sequence[tuple[Sequence[str], npt.ArrayLike, float]],
    *,
    annotate_below: int = ANNOTATE_BELOW,
) -> Figure:
    """One heatmap panel per hypothesis of an n-best list, best first, one shared colorbar.

    Args:
        src_tokens: the S source tokens.
        hyps: (target tokens, (T_k, S) weights, score) for each hypothesis k.

    Returns:
        A figure with the panels stacked top to bottom, each panel as tall as its target.
    """
    if not hyps:
        raise ValueError("nbest_figure needs at least one hypothesis")
    matrices = [as_matrix(weights) for _, weights, _ in hyps]
    rows = [matrix.shape[0] for matrix in matrices]
    longest = max(len(token) for token in [*src_tokens, *(t for h in hyps for t in h[0])])
    width, _ = heatmap_size(max(rows), len(src_tokens), longest)
    height = sum(heatmap_size(r, len(src_tokens), longest)[1] for r in rows)
    fig = Figure(figsize=(width, min(height, 60.0)), layout="constrained")
    axes = fig.subplots(len(hyps), 1, squeeze=False, height_ratios=[r + 3 for r in rows])
    images = [
        draw_heatmap(ax, src_tokens, tokens, matrix, annotate_below=annotate_below)
        for (tokens, _, _), matrix, ax in zip(hyps, matrices, axes[:, 0], strict=True)
    ]
    for k, ((_, _, score), ax) in enumerate(zip(hyps, axes[:, 0], strict=True), start=1):
        ax.set_title(f"#{k}   score {score:.3f}", loc="left", fontsize=10)
    # Every panel uses the same 0..1 scale, so one colorbar serves them all.
    fig.colorbar(images[0], ax=list(axes[:, 0]), fraction=0.03, pad=0.02, label="attention weight")
    return fig


def heads_figure(
    src_tokens: Sequence[str],
    tgt_tokens: Sequence[str],
    weights: npt.ArrayLike,
    *,
    layer_names: Sequence[str] | None = None,
    title: str | None = None,
    annotate_below: int = 8,
    x_label: str = "source",
    y_label: str = "target",
) -> Figure:
    """Every head at once: a grid of heatmaps, one row per layer and one column per head,
    on the shared 0..1 colour scale with one colorbar.

    Args:
        src_tokens, tgt_tokens: axis labels as for :func:`draw_heatmap` (an extra last
            row of the maps is the EOS step).
        weights: (layers, heads, T, S), e.g. ``Translation.attention_heads``.
        layer_names: one name per row (default "layer 1", "layer 2", ...).
        title: optional title over the grid.
        annotate_below: write weights into the cells of maps at most this large.
    """
    if hasattr(weights, "detach"):
        weights = weights.detach().cpu().numpy()
    stack = np.array(weights, dtype=np.float64)
    if stack.ndim != 4:
        raise ValueError(f"head weights must be (layers, heads, T, S), got shape {stack.shape}")
    layers, heads, rows, columns = stack.shape
    names = (
        list(layer_names) if layer_names is not None else [f"layer {i + 1}" for i in range(layers)]
    )
    if len(names) != layers:
        raise ValueError(f"{len(names)} layer names for {layers} layers")
    longest = max((len(token) for token in [*src_tokens, *tgt_tokens]), default=1)
    width, height = heatmap_size(rows, columns, longest)
    fig = Figure(
        figsize=(min(0.85 * width * heads + 1.0, 40.0), min(0.85 * height * layers + 0.6, 40.0)),
        layout="constrained",
    )
    axes = fig.subplots(layers, heads, squeeze=False)
    image = None
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer, head]
            image = draw_heatmap(
                ax,
                src_tokens,
                tgt_tokens,
                stack[layer, head],
                annotate_below=annotate_below,
                x_label=x_label if layer == layers - 1 else "",
                y_label=y_label if head == 0 else "",
            )
            ax.set_title(f"{names[layer]}, head {head + 1}", fontsize=9, parse_math=False)
    assert image is not None
    fig.colorbar(image, ax=list(axes.ravel()), fraction=0.02, pad=0.01, label="attention weight")
    if title is not None:
        fig.suptitle(title, parse_math=False)
    return fig


def figure_bytes(fig: Figure, fmt: str = "png", dpi: float = 100) -> bytes:
    """The figure rendered as PNG or SVG bytes, at exactly figsize × dpi pixels."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: float = 100) -> Path:
    """Save a figure as PNG or SVG, chosen by the file suffix, atomically.

    Raises:
        UserError: for any suffix other than .png or .svg.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(
            f"cannot save a figure as {path.name!r}: use a file name ending in .png or .svg"
        )
    write_bytes_atomic(path, figure_bytes(fig, fmt, dpi))
    return path
