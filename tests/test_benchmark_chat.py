"""benchmarks/chat.py on a tiny dialogue split: every table is there, and at λ = 0, γ = 0
the MMI ranking is the forward model's."""

from __future__ import annotations

from pathlib import Path

from helpers import make_run

from attnmt.data.synthetic import generate
from benchmarks.chat import parse_args, report


def test_the_report_holds_every_table_and_the_grid(tmp_path: Path) -> None:
    pairs = generate(30, seed=4)
    data = tmp_path / "data"
    data.mkdir()
    (data / "dev.src").write_text("".join(p.source + "\n" for p in pairs))
    (data / "dev.tgt").write_text("".join(p.target + "\n" for p in pairs))
    (data / "dev.ids").write_text("".join(f"c{k // 3}\n" for k in range(len(pairs))))
    forward = make_run(tmp_path / "forward", seed=0, task="dialogue")
    backward = make_run(tmp_path / "backward", seed=2, task="dialogue_backward")
    args = ["--model", str(forward), "--rerank", str(backward), "--data", str(data)]
    args += [
        "--mmi-weight",
        "0",
        "0.5",
        "--length-bonus",
        "0",
        "1",
        "--candidates",
        "3",
        "--sample",
    ]
    text = report(parse_args(args))
    lines = text.splitlines()
    assert lines[0].startswith("## Chat metrics") and "- commit: " in text
    forward_row = lines[lines.index(next(x for x in lines if x.startswith("| perplexity"))) + 2]
    assert "| 30 |" in forward_row  # every pair ranked
    hits = forward_row.split(" | ")[2]  # perplexity, per word, hits@1, ...
    grid = [line for line in lines if line.startswith(("| 0 |", "| 0.5 |"))]
    assert len(grid) == 4
    assert grid[0].split(" | ")[2] == hits  # λ 0, γ 0: ranked by the forward model alone
    assert "| human (the references) |" in text and "| chat decoding, no reranking |" in text
