"""attnmt plot: attention heatmaps of a trained run (pieces, words, n-best) and curves."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import matplotlib.colors
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from attnmt.cli.main import main
from attnmt.cli.plot import attention_plot, beam_plot
from attnmt.compare.evaluation import torch_threads
from attnmt.config import build_config
from attnmt.data.synthetic import write_task
from attnmt.io.run import Run
from attnmt.train.trainer import Trainer
from attnmt.translate.translator import Translator
from attnmt.viz.beam import WINNER

SRC = "the dog sees a red cat"


def train_tiny(root: Path, decoder: str) -> Path:
    """A character-level run trained for two steps: enough to decode, plot and log."""
    data = root / "data"
    if not data.is_dir():
        write_task(data, train=100, dev=4, test=4)
    split = lambda name: {"src": str(data / f"{name}.src"), "tgt": str(data / f"{name}.tgt")}  # noqa: E731
    config = build_config(
        [
            (
                "test",
                {
                    "run_dir": str(root / decoder),
                    "model": {
                        "decoder": decoder,
                        "embed_dim": 8,
                        "hidden_dim": 16,
                        "dropout": 0.0,
                        "attention": {"score": "dot"},
                    },
                    "data": {"train": split("train"), "dev": split("dev"), "tokenizer": "char"},
                    "train": {"max_steps": 2, "validate_every": 2, "log_every": 1},
                    "decode": {"beam": 1},
                },
            )
        ]
    )
    Trainer.setup(config, progress_bar=False, log=lambda _: None).run()
    return root / decoder


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread: tiny models gain nothing from more, and a busy CPU stays usable."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("plot")
    return {decoder: train_tiny(root, decoder) for decoder in ("luong", "none")}


def heatmaps(figure: Figure) -> list[Axes]:
    """The axes that hold an attention image (colorbars hold none)."""
    return [ax for ax in figure.axes if ax.images]


def labels(ax: Axes) -> tuple[list[str], list[str]]:
    return [t.get_text() for t in ax.get_xticklabels()], [
        t.get_text() for t in ax.get_yticklabels()
    ]


def test_heatmap_axes_carry_the_pieces(runs: dict[str, Path]) -> None:
    run = Run.load(runs["luong"], device="cpu")
    best = Translator.from_run(run).translate(SRC)
    (ax,) = heatmaps(attention_plot(runs["luong"], SRC))
    x_labels, y_labels = labels(ax)
    assert x_labels == run.src_tok.to_pieces(run.src_tok.encode(SRC))
    assert y_labels == [*best.tokens, "</s>"]
    weights = np.asarray(ax.images[0].get_array())
    assert weights.shape == (len(y_labels), len(x_labels))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-3)


def test_words_merges_pieces_into_words(runs: dict[str, Path]) -> None:
    (ax,) = heatmaps(attention_plot(runs["luong"], SRC, words=True))
    x_labels, y_labels = labels(ax)
    assert x_labels == SRC.split()
    assert y_labels[-1] == "</s>" and all(" " not in label for label in y_labels)
    weights = np.asarray(ax.images[0].get_array())
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-3)  # still distributions


def test_n_best_draws_one_panel_per_hypothesis(runs: dict[str, Path]) -> None:
    panels = heatmaps(attention_plot(runs["luong"], SRC, n_best=3, beam=3))
    assert len(panels) == 3
    assert [ax.get_title(loc="left").split()[0] for ax in panels] == ["#1", "#2", "#3"]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
    return width, height


def test_cli_writes_a_png_of_the_figure_size(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "heat.png"
    args = ["plot", "attention", "--model", str(runs["luong"]), "--src", SRC]
    assert main([*args, "--words", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    width, height = attention_plot(runs["luong"], SRC, words=True).get_size_inches() * 100
    assert png_size(out) == (round(width), round(height))


def test_no_attention_is_a_one_line_error(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "none.png"
    assert (
        main(["plot", "attention", "--model", str(runs["none"]), "--src", SRC, "--out", str(out)])
        == 2
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no attention" in lines[0]
    assert not out.exists()


def test_bad_output_suffix_is_a_one_line_error(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["plot", "curves", str(runs["luong"]), "--out", str(tmp_path / "c.jpg")]
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and ".png or .svg" in lines[0]


def test_curves_of_two_runs(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "curves.png"
    assert main(["plot", "curves", str(runs["luong"]), str(runs["none"]), "--out", str(out)]) == 0
    assert png_size(out)[0] > 0 and out.stat().st_size > 1000


def boxes(figure: Figure) -> list[tuple[str, str]]:
    """(text, edge colour) of every box of a beam tree: the start and each candidate."""
    ax = figure.axes[0]
    found = []
    for text in ax.texts:
        patch = text.get_bbox_patch()
        if patch is not None:
            found.append((text.get_text(), matplotlib.colors.to_hex(patch.get_edgecolor())))
    return found


@pytest.mark.parametrize("decoder", ["luong", "none"])  # no attention needed for a tree
def test_beam_tree_draws_every_candidate_and_the_winner(
    runs: dict[str, Path], decoder: str
) -> None:
    translator = Translator.from_run(Run.load(runs[decoder], device="cpu"))
    options = translator.options(beam=3, n_best=1, sample=False)
    translation, trace = translator.beam_tree(SRC, options)
    assert translation.text == translator.translate(SRC, options).text  # the search as usual
    nodes = trace.candidates[0]
    figure, summary = beam_plot(runs[decoder], SRC, beam=3)
    drawn = boxes(figure)
    assert len(drawn) == len(nodes) + 1  # and the start
    path = trace.path(0, trace.won[0])
    assert sum(colour == WINNER for _, colour in drawn) == len(path) + 1
    assert [float(text.split("\n")[1]) for text, _ in drawn[1:]] == pytest.approx(
        [node.score for node in nodes], abs=0.006
    )
    assert f"{len(nodes)} candidates" in summary and translation.text in summary


def test_cli_beam_writes_the_tree(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "beam.svg"
    assert (
        main(["plot", "beam", "--model", str(runs["luong"]), "--src", SRC, "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "beam 3:" in printed and str(out) in printed  # the run decodes greedily: beam 3
    assert out.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--beam", "0"], "--beam must be at least 1"),
        (["--src", "   "], "source sentence is empty"),
    ],
)
def test_cli_beam_errors_are_one_line(
    runs: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    out = tmp_path / "beam.png"
    command = ["plot", "beam", "--model", str(runs["luong"]), "--src", SRC, "--out", str(out)]
    assert main([*command, *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]
    assert not out.exists()
