"""`attnmt shapes`: the RNN shapes of a real encoder on a real batch, and its checks."""

from __future__ import annotations

import re

import pytest

from attnmt.cli.main import main
from attnmt.cli.shapes import shape_report, varied_pairs
from attnmt.config import load_config

SMALL = ["model.embed_dim=6", "model.hidden_dim=8"]


def shapes_output(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    assert main(["shapes", *words]) == 0
    return capsys.readouterr().out


def printed_list(text: str, name: str) -> list[int]:
    found = re.search(rf"^  {name} .*?\[([0-9, ]+)\]", text, flags=re.MULTILINE)
    assert found, name
    return [int(item) for item in found.group(1).split(",")]


@pytest.mark.parametrize(
    ("rnn", "layers", "bidirectional", "reverse"),
    [("gru", 1, True, False), ("lstm", 2, True, True), ("rnn", 3, False, False)],
)
def test_shapes_follow_the_config(
    capsys: pytest.CaptureFixture[str], rnn: str, layers: int, bidirectional: bool, reverse: bool
) -> None:
    overrides = [
        f"model.rnn={rnn}",
        f"model.layers={layers}",
        f"model.bidirectional={str(bidirectional).lower()}",
        f"model.reverse_source={str(reverse).lower()}",
    ]
    words = [word for item in SMALL + overrides for word in ("--set", item)]
    text = shapes_output(capsys, *words, "--batch", "4")
    dirs = 2 if bidirectional else 1
    hidden = 8 // dirs
    assert f"h_n          ({layers * dirs}, 4, {hidden})" in text
    assert ("c_n" in text) == (rnn == "lstm")
    assert f"final        ({layers}, 4, 8)" in text
    # Every property the printout checks holds (seq-first = batch-first transposed, h_n =
    # the last real output, zeros at padding, memory = the RNN output).
    checks = re.findall(r": (True|False)$", text, flags=re.MULTILINE)
    assert len(checks) >= 4 and set(checks) == {"True"}
    assert ("reads each row backwards" in text) == reverse
    lengths, batch_sizes = printed_list(text, "src_lengths"), printed_list(text, "batch_sizes")
    assert sum(batch_sizes) == sum(lengths) and batch_sizes[0] == 4
    assert f"data         ({sum(lengths)}, 6)" in text


def test_padded_batch_has_spread_lengths() -> None:
    lengths = [len(src.split()) for src, _ in varied_pairs(3, seed=3)]
    assert len(set(lengths)) == 3


def test_a_model_without_attention_has_none() -> None:
    config = load_config(None, [*SMALL, "model.decoder=none"])
    lines = shape_report(config.model, varied_pairs(2, seed=1))
    assert any("attention    None" in line for line in lines)


def test_user_mistakes_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["shapes", "--set", "model.arch=transformer"]) == 2
    assert "model.arch is 'transformer'" in capsys.readouterr().err
    assert main(["shapes", "--batch", "0"]) == 2
    assert "--batch must be at least 1" in capsys.readouterr().err
