"""`--precision auto|fp32|bf16` on translate, evaluate, serve and chat, decided by
device.loading_precision: auto keeps what the run recorded, fp32 and bf16 are taken as
asked, bf16 on a CPU without native bf16 and bf16 for an int8 model are refused in one
line."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
import torch
from helpers import SENTENCES, make_run

from attnmt import device
from attnmt.cli.main import build_parser, main
from attnmt.device import loading_precision
from attnmt.errors import UserError
from attnmt.translate.translator import Translator

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"))  # trained in fp32 (train.precision)


@pytest.mark.parametrize("native", [True, False])
def test_fp32_is_fp32_and_auto_keeps_what_the_run_recorded(
    monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(device, "cpu_bf16_speedup", lambda threads: pytest.fail("measured"))
    assert loading_precision("fp32", CPU, "bf16", "bf16") is None
    assert loading_precision("auto", CPU, "fp32", "fp32") is None
    assert loading_precision("auto", CPU, "bf16", None) is torch.bfloat16  # configured bf16
    expected = torch.bfloat16 if native else None  # auto: what training recorded, natively
    assert loading_precision("auto", CPU, "auto", "bf16") is expected


def test_bf16_is_taken_where_the_cpu_has_it_and_refused_where_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert loading_precision("bf16", CPU, "fp32", "fp32") is torch.bfloat16
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(UserError, match="no native bf16"):
        loading_precision("bf16", CPU, "fp32", "fp32")


def test_int8_computes_in_fp32_whatever_is_asked_but_bf16() -> None:
    assert loading_precision("auto", CPU, "bf16", "bf16", int8=True) is None
    assert loading_precision("fp32", CPU, "bf16", "bf16", int8=True) is None
    with pytest.raises(UserError, match="int8 model computes in fp32"):
        loading_precision("bf16", CPU, "fp32", "fp32", int8=True)


def test_an_unknown_precision_names_the_choices() -> None:
    with pytest.raises(UserError, match="auto, fp32, bf16"):
        loading_precision("fp16", CPU, "fp32", "fp32")


def test_translator_load_takes_the_precision(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    fp32 = Translator.load(run_dir, device="cpu", precision="fp32")
    bf16 = Translator.load(run_dir, device="cpu", precision="bf16")
    assert fp32.dtype is None and bf16.dtype is torch.bfloat16
    assert Translator.load(run_dir, device="cpu").dtype is None  # auto: it trained in fp32
    translation = bf16.translate(SENTENCES[0])  # runs under bf16 autocast
    assert translation.attention is not None
    assert abs(translation.attention.sum(-1) - 1).max() < 1e-2


def feed(monkeypatch: pytest.MonkeyPatch, lines: list[str]) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_translate_precision_fp32_equals_the_default_and_bf16_is_refused_in_one_line(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for extra in ([], ["--precision", "fp32"]):
        feed(monkeypatch, SENTENCES[:3])
        assert main(["translate", "--model", str(run_dir), "--device", "cpu", *extra]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 3
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    feed(monkeypatch, SENTENCES[:1])
    assert main(["translate", "--model", str(run_dir), "--precision", "bf16"]) != 0
    err = capsys.readouterr().err
    assert "no native bf16" in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["translate", "evaluate", "serve", "chat"])
def test_every_decoding_command_takes_precision(command: str) -> None:
    parser = build_parser(command)
    required = {
        "translate": ["--model", "RUN"],
        "evaluate": ["--model", "RUN", "--src", "S", "--ref", "R"],
        "serve": ["--model", "RUN"],
        "chat": ["--model", "RUN"],
    }[command]
    args = parser.parse_args([command, *required, "--precision", "fp32", "--which", "int8"])
    assert args.precision == "fp32" and args.which == "int8"
    assert parser.parse_args([command, *required]).precision == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args([command, *required, "--precision", "fp16"])
