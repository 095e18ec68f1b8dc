"""`attnmt export --int8` and `--which int8`: the file beside best.pt (never over it, at
most half its size), what it decodes (exactly what the quantised model in memory does,
with attention), the commands that read it, and their one-line refusals."""

from __future__ import annotations

import copy
import io
import sys
from pathlib import Path

import pytest
import torch
from helpers import SENTENCES, make_run

from attnmt.cli.main import main
from attnmt.errors import UserError
from attnmt.export.int8 import export_int8
from attnmt.io.checkpoint import INT8, load_checkpoint
from attnmt.io.run import Run
from attnmt.models.quantized import QUANTIZATION, ContiguousLookup, quantize_int8
from attnmt.translate.translator import Translator

RNN_SIZES = {"embed_dim": 32, "hidden_dim": 64}  # large enough that weights outweigh the header
FAMILIES = {
    "bahdanau": {**RNN_SIZES, "decoder": "bahdanau"},
    "luong-lstm": {**RNN_SIZES, "decoder": "luong", "rnn": "lstm", "attention": {"score": "dot"}},
    "none": {**RNN_SIZES, "decoder": "none"},
    "transformer": {"arch": "transformer", "decoder": None, "hidden_dim": None, "embed_dim": 32},
    "transformer-tied": {  # two int8 copies of the one fp32 matrix
        "arch": "transformer",
        "decoder": None,
        "hidden_dim": None,
        "embed_dim": 32,
        "tie_embeddings": True,
    },
}


def exported_run(directory: Path, family: str) -> Path:
    run_dir = make_run(directory, model=FAMILIES[family])
    export_int8(run_dir)
    return run_dir


@pytest.fixture(scope="module", params=list(FAMILIES))
def run_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return exported_run(tmp_path_factory.mktemp(request.param), request.param)


def test_int8_file_sits_beside_best_and_is_at_most_half_its_size(run_dir: Path) -> None:
    checkpoints = run_dir / "checkpoints"
    best, int8 = checkpoints / "best.pt", checkpoints / INT8
    before = best.read_bytes()
    assert export_int8(run_dir) == int8  # a second export replaces int8.pt only
    assert best.read_bytes() == before
    assert sorted(p.name for p in checkpoints.iterdir()) == ["best.pt", INT8]  # no temp files
    assert int8.stat().st_size <= 0.5 * best.stat().st_size
    header = load_checkpoint(int8).header
    assert header.quantization == QUANTIZATION
    assert header.config == load_checkpoint(best).header.config


def test_which_int8_decodes_as_the_quantised_model_in_memory(run_dir: Path) -> None:
    """Loading rebuilds the model, quantises it and loads the int8 state: the same
    outputs, scores and attention as quantising the fp32 model here."""
    loaded = Translator.load(run_dir, which="int8")
    fp32 = Translator.load(run_dir, device="cpu")
    assert loaded.device.type == "cpu" and loaded.dtype is None
    here = Translator(
        quantize_int8(copy.deepcopy(fp32.model)), fp32.src_tok, fp32.tgt_tok, fp32.config
    )
    for options in (dict(beam=1), dict(beam=3, n_best=2)):
        got = loaded.translate(SENTENCES, **options)
        expected = here.translate(SENTENCES, **options)
        assert [t.text for t in got] == [t.text for t in expected]
        assert [t.score for t in got] == [t.score for t in expected]
        for mine, theirs in zip(got, expected, strict=True):
            if loaded.has_attention:
                assert mine.attention is not None and theirs.attention is not None
                assert (mine.attention == theirs.attention).all()
                assert abs(mine.attention.sum(-1) - 1).max() < 1e-5
            else:
                assert mine.attention is None


def feed(monkeypatch: pytest.MonkeyPatch, lines: list[str]) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_export_translate_and_evaluate_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = make_run(tmp_path / "run", model=RNN_SIZES)
    assert main(["export", str(run_dir), "--int8"]) == 0
    assert str(run_dir / "checkpoints" / INT8) in capsys.readouterr().out
    expected = Translator.load(run_dir, which="int8").translate(SENTENCES[:4], beam=2)
    feed(monkeypatch, SENTENCES[:4])
    assert main(["translate", "--model", str(run_dir), "--which", "int8", "--beam", "2"]) == 0
    assert capsys.readouterr().out == "".join(t.text + "\n" for t in expected)
    src, ref = tmp_path / "test.src", tmp_path / "test.ref"
    src.write_text("\n".join(SENTENCES[:4]) + "\n")
    ref.write_text("".join(t.text + "\n" for t in expected))
    args = ["evaluate", "--model", str(run_dir), "--which", "int8", "--beam", "2"]
    assert main([*args, "--src", str(src), "--ref", str(ref), "--json"]) == 0
    assert '"bleu": 100.0' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["translate", "--which", "int8"], "no int8 checkpoint; make one with: attnmt export"),
        (["export", "--int8", "--which", "int8"], "export int8 from best, last, averaged"),
    ],
)
def test_missing_or_circular_int8_is_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    run_dir = make_run(tmp_path / "run")
    command, *rest = args
    argv = [command, str(run_dir), *rest] if command == "export" else [*args]
    if command == "translate":
        argv += ["--model", str(run_dir)]
        feed(monkeypatch, SENTENCES[:1])
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (run_dir / "checkpoints" / INT8).exists()


def test_int8_refuses_bf16_and_other_devices(tmp_path: Path) -> None:
    run_dir = exported_run(tmp_path / "run", "bahdanau")
    with pytest.raises(UserError, match="an int8 model computes in fp32"):
        Run.load(run_dir, which="int8", precision="bf16")
    with pytest.raises(UserError, match="CPU only|not available"):
        Run.load(run_dir, which="int8", device="cuda" if torch.cuda.is_available() else "meta")
    assert Run.load(run_dir, which="int8", precision="fp32").dtype is None


def test_an_int8_checkpoint_is_not_exported_again(tmp_path: Path) -> None:
    run_dir = exported_run(tmp_path / "run", "none")
    with pytest.raises(UserError, match="int8 already"):
        export_int8(run_dir, str(run_dir / "checkpoints" / INT8))


def test_serve_answers_from_the_int8_model_as_its_translator_does(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from attnmt.serve.app import create_app
    from attnmt.serve.limits import Limits

    translator = Translator.load(exported_run(tmp_path / "run", "bahdanau"), which="int8")
    limits = Limits(max_chars=300, max_texts=8, max_wait_ms=20, max_beam=8, timeout_s=20)
    with TestClient(create_app({"int8": translator}, limits)) as client:
        answer = client.post("/translate", json={"text": SENTENCES[0], "beam": 3})
    assert answer.status_code == 200
    (record,) = answer.json()["translations"]
    expected = translator.translate(SENTENCES[0], beam=3)
    assert record["text"] == expected.text
    assert len(record["attention"]) == len(expected.tokens) + 1


def test_a_dialogue_run_chats_in_int8(tmp_path: Path) -> None:
    from attnmt.translate.chatbot import Chatbot

    run_dir = make_run(tmp_path / "run", task="dialogue", context_turns=1, model=RNN_SIZES)
    export_int8(run_dir)
    bot = Chatbot.load(run_dir, which="int8", precision="fp32", beam=2, sample=False)
    model = bot.translator.model
    assert any(isinstance(module, ContiguousLookup) for module in model.modules())
    first, second = bot.reply(SENTENCES[0]), bot.reply(SENTENCES[1])
    assert isinstance(first, str) and isinstance(second, str) and bot.last is not None
    assert bot.last.text == second and bot.last.attention is not None
