"""Figures: heatmap labels and annotations, merging pieces into words, files on disk."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from attnmt.errors import UserError
from attnmt.translate.words import merge_attention, merge_labels, word_attention
from attnmt.viz.curves import bleu_by_length_figure, curves_figure, read_metrics
from attnmt.viz.plot import attention_figure, nbest_figure, save_figure


def random_weights(rng: np.random.Generator, rows: int, columns: int) -> np.ndarray:
    """Rows that are random distributions over the columns."""
    return rng.dirichlet(np.ones(columns), size=rows)


def tick_texts(labels: list) -> list[str]:
    return [label.get_text() for label in labels]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) read from the PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# --------------------------------------------------------------------------- heatmaps


def test_heatmap_axes_carry_the_tokens_and_an_eos_row() -> None:
    rng = np.random.default_rng(0)
    src, tgt = ["▁le", "▁chat", "$5", "</s>"], ["▁the", "▁cat"]
    fig = attention_figure(src, tgt, random_weights(rng, 3, 4), title="a $ title")
    heatmap, colorbar = fig.axes  # the heatmap and its colorbar
    assert tick_texts(heatmap.get_xticklabels()) == src
    assert tick_texts(heatmap.get_yticklabels()) == [*tgt, "</s>"]
    assert heatmap.get_title() == "a $ title"
    assert colorbar.get_ylim() == (0.0, 1.0)  # one fixed scale for every heatmap


def test_weights_are_annotated_only_when_small() -> None:
    rng = np.random.default_rng(1)
    weights = random_weights(rng, 3, 4)
    small = attention_figure(list("abcd"), list("xyz"), weights).axes[0]
    assert sorted(float(text.get_text()) for text in small.texts) == pytest.approx(
        sorted(weights.ravel()), abs=0.005
    )
    big = random_weights(rng, 25, 4)
    assert len(attention_figure(list("abcd"), ["y"] * 25, big).axes[0].texts) == 0
    tiny_limit = attention_figure(list("abcd"), list("xyz"), weights, annotate_below=2)
    assert len(tiny_limit.axes[0].texts) == 0


def test_figure_grows_with_the_matrix_and_draws_into_a_given_axes() -> None:
    rng = np.random.default_rng(2)
    small = attention_figure(list("ab"), list("xy"), random_weights(rng, 2, 2))
    large = attention_figure(["w"] * 30, ["v"] * 30, random_weights(rng, 30, 30))
    assert (large.get_size_inches() > small.get_size_inches()).all()

    fig = Figure()
    ax = fig.add_subplot()
    assert attention_figure(list("ab"), list("xy"), random_weights(rng, 2, 2), ax=ax) is fig
    assert tick_texts(ax.get_xticklabels()) == ["a", "b"]


def test_heatmap_takes_a_tensor_and_rejects_a_shape_mismatch() -> None:
    weights = torch.softmax(torch.randn(2, 3, requires_grad=True), dim=-1)
    attention_figure(list("abc"), list("xy"), weights)
    with pytest.raises(ValueError, match="columns"):
        attention_figure(list("ab"), list("xy"), weights)
    with pytest.raises(ValueError, match="rows"):
        attention_figure(list("abc"), list("wxyz"), weights)


def test_nbest_figure_has_one_panel_per_hypothesis() -> None:
    rng = np.random.default_rng(3)
    src = ["a", "b", "c"]
    hyps = [
        (["x", "y"], random_weights(rng, 3, 3), -1.5),
        (["z"], random_weights(rng, 2, 3), -2.25),
    ]
    fig = nbest_figure(src, hyps)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == len(hyps)
    for (tokens, _, score), ax in zip(hyps, panels, strict=True):
        assert tick_texts(ax.get_yticklabels()) == [*tokens, "</s>"]
        assert tick_texts(ax.get_xticklabels()) == src
        assert f"{score:.3f}" in ax.get_title(loc="left")


# --------------------------------------------------------------------------- merging


def test_merge_attention_matches_a_hand_computation() -> None:
    weights = np.array(
        [
            [0.5, 0.25, 0.25],
            [0.0, 0.5, 0.5],
            [1.0, 0.0, 0.0],
        ]
    )
    # source words {0, 1} and {2}: columns summed; target words {0} and {1, 2}: rows averaged
    merged = merge_attention(weights, [[0, 1], [2]], [[0], [1, 2]])
    expected = np.array(
        [
            [0.75, 0.25],
            [(0.5 + 1.0) / 2, (0.5 + 0.0) / 2],
        ]
    )
    np.testing.assert_allclose(merged, expected)


def test_merged_rows_still_sum_to_one() -> None:
    rng = np.random.default_rng(4)
    weights = random_weights(rng, 7, 9)
    src_groups = [[0], [1, 2, 3], [4, 5], [6], [7, 8]]
    tgt_groups = [[0, 1], [2], [3, 4, 5], [6]]
    merged = merge_attention(weights, src_groups, tgt_groups)
    assert merged.shape == (len(tgt_groups), len(src_groups))
    np.testing.assert_allclose(merged.sum(axis=1), 1.0)


@pytest.mark.parametrize("groups", [[[0], [1]], [[0, 1], [1, 2]], [[0, 1, 2], []]])
def test_merge_attention_rejects_groups_that_are_not_a_partition(groups: list) -> None:
    with pytest.raises(ValueError, match="exactly once"):
        merge_attention(np.full((3, 3), 1 / 3), groups, [[0], [1], [2]])


def test_word_attention_merges_pieces_and_keeps_the_eos_row() -> None:
    def words(pieces: list[str]) -> list[list[int]]:  # stands in for tokenize.merge_pieces
        groups: list[list[int]] = []
        for i, piece in enumerate(pieces):
            if piece.startswith("▁") or not groups:
                groups.append([])
            groups[-1].append(i)
        return groups

    assert merge_labels(["▁new", "s", "▁paper"], [[0, 1], [2]]) == ["news", "paper"]
    rng = np.random.default_rng(5)
    src, tgt = ["▁zei", "tung", "▁heute"], ["▁news", "paper", "s", "▁today"]
    src_words, tgt_words, merged = word_attention(src, tgt, random_weights(rng, 5, 3), words)
    assert src_words == ["zeitung", "heute"]
    assert tgt_words == ["newspapers", "today", "</s>"]
    assert merged.shape == (3, 2)
    np.testing.assert_allclose(merged.sum(axis=1), 1.0)


# --------------------------------------------------------------------------- curves


def fake_history(seed: int, steps: int = 40) -> list[dict]:
    rng = np.random.default_rng(seed)
    train = [
        {"split": "train", "step": s, "time": 2.0 * s, "loss": 5 / s + rng.random(), "lr": 1e-3}
        for s in range(1, steps + 1)
    ]
    dev = [
        {"split": "dev", "step": s, "time": 2.0 * s, "loss": 4 / s, "ppl": 9.0, "bleu": s / 2}
        for s in range(10, steps + 1, 10)
    ]
    return train + dev


def test_curves_overlay_every_run_against_step_and_time() -> None:
    runs = {"luong": fake_history(0), "bahdanau": fake_history(1, steps=80)}
    fig = curves_figure(runs)
    panels = [ax for ax in fig.axes if ax.get_ylabel()]
    assert len(panels) == 6
    assert {ax.get_xlabel() for ax in panels} == {"step", "training time (min)"}
    for ax in panels:
        assert len(ax.lines) == len(runs)
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == list(runs)
    time_panel = next(
        ax for ax in panels if ax.get_ylabel() == "dev BLEU" and "time" in ax.get_xlabel()
    )
    np.testing.assert_allclose(
        time_panel.lines[0].get_xdata(), [2 * s / 60 for s in (10, 20, 30, 40)]
    )


def test_curves_panel_without_data_says_so() -> None:
    fig = curves_figure({"only-train": [r for r in fake_history(0) if r["split"] == "train"]})
    empty = [ax for ax in fig.axes if not ax.lines]
    assert len(empty) == 4  # dev loss and dev BLEU, against step and time
    assert all(ax.texts[0].get_text() == "no data" for ax in empty)


def test_bleu_by_length_figure_has_one_line_per_run_in_bucket_order() -> None:
    rows = [
        {"bucket": "10-19", "low": 10, "bleu": 12.0},
        {"bucket": "0-9", "low": 0, "bleu": 20.0},
        {"bucket": "20+", "low": 20, "bleu": None},
    ]
    ax = bleu_by_length_figure({"a": rows, "b": rows[:2]}).axes[0]
    assert tick_texts(ax.get_xticklabels()) == ["0-9", "10-19", "20+"]
    assert len(ax.lines) == 2
    ys = ax.lines[0].get_ydata()
    assert list(ys[:2]) == [20.0, 12.0] and math.isnan(ys[2])


def test_read_metrics_skips_a_truncated_last_line(tmp_path: Path) -> None:
    records = fake_history(0, steps=10)
    path = tmp_path / "metrics.jsonl"
    text = "".join(json.dumps({**r, "unknown": [1]}) + "\n" for r in records)
    path.write_text(text + "\n" + '{"split": "train", "st')
    read = read_metrics(path)
    assert [{k: v for k, v in r.items() if k != "unknown"} for r in read] == records


def test_read_metrics_rejects_a_broken_middle_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(UserError, match=r"metrics.jsonl:2"):
        read_metrics(path)
    with pytest.raises(UserError, match="cannot read"):
        read_metrics(tmp_path / "missing.jsonl")


# --------------------------------------------------------------------------- files


def test_png_and_svg_files_have_the_figure_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    fig = attention_figure(list("abcde"), list("xyz"), random_weights(rng, 4, 5))
    width, height = fig.get_size_inches()

    png = save_figure(fig, tmp_path / "sub" / "attn.png", dpi=50)
    assert png_size(png) == (round(width * 50), round(height * 50))
    assert matplotlib.image.imread(png).shape[:2] == (round(height * 50), round(width * 50))

    svg = save_figure(fig, tmp_path / "attn.SVG")
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert f'width="{width * 72:g}pt"' in text  # SVG sizes are in points
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["attn.SVG", "attn.png", "sub"]


def test_unsupported_suffix_is_a_one_line_user_error(tmp_path: Path) -> None:
    fig = curves_figure({})
    with pytest.raises(UserError, match=r"\.png or \.svg") as caught:
        save_figure(fig, tmp_path / "curves.pdf")
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []
