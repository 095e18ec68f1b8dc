"""attnmt export --onnx: for every model family the export decodes, through the same
search code, what the PyTorch model decodes (greedy and beam), with its attention; the
manifest describes the graphs; --model DIR runs it in translate and evaluate; refusals
are one line and leave nothing half-written."""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import random_batch
from helpers import SENTENCES, make_run

from attnmt.cli.main import main
from attnmt.errors import UserError
from attnmt.export import onnx as export_module
from attnmt.export.onnx import export_onnx
from attnmt.io.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from attnmt.io.run import Run
from attnmt.models.build import build_model
from attnmt.runtime.onnx import FORMAT, MANIFEST, OnnxModel, is_onnx_export
from attnmt.special import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from attnmt.translate.translator import Translator

pytest.importorskip("onnxruntime")

RNN = {"embed_dim": 8, "hidden_dim": 16, "dropout": 0.0}
FAMILIES: dict[str, dict[str, Any]] = {
    # Bahdanau's query s_{i-1}, the local-m window: positions come from the traced step
    "bahdanau-local-m": {
        **RNN,
        "decoder": "bahdanau",
        "attention": {"score": "concat", "window": "local-m", "window_half_width": 2},
    },
    # input feeding, a 2-layer LSTM, the location score (its fixed max_src_len) and local-p
    "luong-feed-location-local-p": {
        **RNN,
        "decoder": "luong",
        "rnn": "lstm",
        "layers": 2,
        "attention": {
            "score": "location",
            "window": "local-p",
            "window_half_width": 2,
            "max_src_len": 30,
        },
    },
    "luong-fast-multihead": {
        **RNN,
        "decoder": "luong",
        "input_feeding": False,
        "attention": {"score": "multihead", "heads": 2},
    },
    "sutskever": {**RNN, "decoder": "none", "rnn": "lstm", "reverse_source": True},
    "cho": {**RNN, "decoder": "none", "feed_context": True},
    "transformer": {
        "arch": "transformer",
        "embed_dim": 8,
        "layers": 2,
        "ff_dim": 16,
        "dropout": 0.0,
        "positions": "learned",
    },
}


def with_model(run_dir: Path, model: dict[str, Any]) -> Path:
    """Replace the run's model by a random one of the `model` section (large weights,
    as make_run's, so outputs depend on the source and differ in length)."""
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    header = checkpoint.header
    section = header.config.model.model_validate(model)
    header = dataclasses.replace(header, config=header.config.model_copy(update={"model": section}))
    torch.manual_seed(0)
    built = build_model(section, header.src_vocab_size, header.tgt_vocab_size)
    with torch.no_grad():
        for param in built.parameters():
            param.normal_(0.0, 1.0)
        built.generator.bias[EOS_ID] += 2.0
    save_checkpoint(run_dir / "checkpoints" / "best.pt", Checkpoint(header, built.state_dict()))
    return run_dir


@pytest.fixture(scope="module", params=list(FAMILIES))
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(run directory, export directory) of one family."""
    root = tmp_path_factory.mktemp(request.param)
    run_dir = with_model(make_run(root / "run"), FAMILIES[request.param])
    return run_dir, export_onnx(run_dir, root / "onnx")


def test_onnx_decodes_what_pytorch_decodes(exported: tuple[Path, Path]) -> None:
    run_dir, onnx_dir = exported
    ours = Translator.load(run_dir, device="cpu")
    theirs = Translator.load(onnx_dir)
    assert isinstance(theirs.model, OnnxModel)
    for options in ({"beam": 1}, {"beam": 3, "n_best": 2}):
        expected = ours.translate(SENTENCES, **options)
        got = theirs.translate(SENTENCES, **options)
        assert [t.text for t in got] == [t.text for t in expected]
        for mine, other in zip(expected, got, strict=True):
            # fp32 rounding summed over up to 25 steps of large random weights
            assert other.score == pytest.approx(mine.score, rel=1e-3)
            assert [h.text for h in other.hypotheses] == [h.text for h in mine.hypotheses]
            if ours.has_attention:  # the export keeps the attention map
                assert other.attention is not None and mine.attention is not None
                torch.testing.assert_close(
                    torch.as_tensor(other.attention),
                    torch.as_tensor(mine.attention),
                    atol=2e-3,
                    rtol=0,
                )
            else:
                assert other.attention is None


def test_teacher_forcing_gives_the_models_log_probabilities(exported: tuple[Path, Path]) -> None:
    """OnnxModel.forward steps the graph over the target: its log-probabilities (the
    logits evaluate's loss and perplexity read) are log_softmax of PyTorch's logits."""
    run_dir, onnx_dir = exported
    model = Run.load(run_dir, device="cpu").model
    onnx_model = Run.load(onnx_dir).model
    src, lengths, tgt_in = random_batch(torch.Generator().manual_seed(1), [5, 3, 7], [4, 6, 2], 40)
    with torch.no_grad():
        logits, attention = model.train(False)(src, lengths, tgt_in)
    log_probs, onnx_attention = onnx_model(src, lengths, tgt_in)
    for row, length in enumerate([4, 6, 2]):  # real target positions
        torch.testing.assert_close(
            log_probs[row, :length], logits[row, :length].log_softmax(-1), atol=1e-4, rtol=0
        )
        if attention is not None:
            assert onnx_attention is not None
            torch.testing.assert_close(
                onnx_attention[row, :length], attention[row, :length], atol=1e-4, rtol=0
            )


def test_manifest_describes_the_graphs(exported: tuple[Path, Path]) -> None:
    run_dir, onnx_dir = exported
    manifest = json.loads((onnx_dir / MANIFEST).read_text())
    assert manifest["format"] == FORMAT and is_onnx_export(onnx_dir)
    assert manifest["special_ids"] == {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID}
    assert manifest["opset"] == export_module.OPSET and "commit" in manifest["exported_by"]
    encoder, step = manifest["encoder"], manifest["decoder_step"]
    assert [node["name"] for node in encoder["inputs"]] == ["src", "src_lengths"]
    assert encoder["inputs"][0]["shape"] == ["batch", "src_len"]  # dynamic axes
    outputs = [node["name"] for node in encoder["outputs"]]
    assert outputs == [entry["name"] for entry in manifest["memory"]]
    state = [entry["name"] for entry in manifest["state"]]
    assert state and all(name in outputs for name in state)
    step_out = [node["name"] for node in step["outputs"]]
    assert step_out[0] == "log_probs" and step["outputs"][0]["shape"][0] == "batch"
    assert ("attention" in step_out) == manifest["has_attention"]
    assert step_out[-len(state) :] == ["next_" + name for name in state]
    assert {node["name"] for node in step["inputs"]} <= {"tokens", *outputs}
    assert (onnx_dir / "tokenizer" / "tokenizers.json").is_file()
    assert Run.load(onnx_dir).config == Run.load(run_dir, device="cpu").config


@pytest.fixture(scope="module")
def transformer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run directory, export directory) of a Transformer run."""
    root = tmp_path_factory.mktemp("cli")
    run_dir = with_model(make_run(root / "run"), FAMILIES["transformer"])
    return run_dir, export_onnx(run_dir, root / "onnx")


def feed(monkeypatch: pytest.MonkeyPatch, lines: list[str]) -> None:
    data = "".join(line + "\n" for line in lines).encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_cli_exports_and_translates_and_evaluates(
    transformer: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_dir, _ = transformer
    onnx_dir = tmp_path / "onnx"
    assert main(["export", str(run_dir), "--onnx", str(onnx_dir)]) == 0
    assert str(onnx_dir) in capsys.readouterr().out
    outputs = []
    for model in (run_dir, onnx_dir):
        feed(monkeypatch, SENTENCES[:4])
        assert main(["translate", "--model", str(model), "--beam", "2"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 4
    src, ref = tmp_path / "test.src", tmp_path / "test.ref"
    src.write_text("\n".join(SENTENCES) + "\n")
    ref.write_text(outputs[0] + "\n".join(SENTENCES[4:]) + "\n")  # 4 exact of 12
    scores = []
    for model in (run_dir, onnx_dir):
        args = ["evaluate", "--model", str(model), "--src", str(src), "--ref", str(ref)]
        assert main([*args, "--beam", "2", "--json"]) == 0
        scores.append(json.loads(capsys.readouterr().out))
    for key in ("bleu", "chrf", "exact"):
        assert scores[1][key] == pytest.approx(scores[0][key])
    assert scores[1]["exact"] == pytest.approx(4 / 12)
    assert scores[1]["ppl"] == pytest.approx(scores[0]["ppl"], rel=1e-4)  # teacher-forced too
    # exporting again replaces the export whole
    assert main(["export", str(run_dir), "--onnx", str(onnx_dir)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx", "test.ref", "test.src"]


def test_serve_answers_from_an_export(transformer: tuple[Path, Path]) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from attnmt.serve.app import create_app
    from attnmt.serve.limits import Limits

    run_dir, onnx_dir = transformer
    translators = {"onnx": Translator.load(onnx_dir)}
    expected = Translator.load(run_dir, device="cpu").translate(SENTENCES[:3], beam=2)
    with TestClient(create_app(translators, Limits(max_wait_ms=20))) as client:
        answer = client.post("/translate", json={"text": SENTENCES[:3], "beam": 2})
    assert answer.status_code == 200
    records = answer.json()["translations"]
    assert [r["text"] for r in records] == [t.text for t in expected]
    assert all(r["attention"] for r in records)


def test_refusals_are_one_line(
    transformer: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, _ = transformer
    assert main(["export", str(run_dir), "--onnx", str(tmp_path / "out"), "--which", "int8"]) == 2
    err = capsys.readouterr().err
    assert "int8 checkpoint cannot be exported" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["export", str(run_dir), "--onnx", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "is not an ONNX export" in err and err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_an_export_is_not_exported_again(exported: tuple[Path, Path], tmp_path: Path) -> None:
    _, onnx_dir = exported
    with pytest.raises(UserError, match="ONNX export already"):
        export_onnx(onnx_dir, tmp_path / "again")


def test_a_failed_check_leaves_nothing(
    transformer: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, _ = transformer

    def disagree(*_: object) -> None:
        raise UserError("cannot export this model to ONNX: the graph's log-probabilities differ")

    monkeypatch.setattr(export_module, "_check_graphs", disagree)
    with pytest.raises(UserError, match="differ"):
        export_onnx(run_dir, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_without_onnxruntime_one_line_says_what_to_install(
    transformer: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_dir, _ = transformer
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails
    assert main(["export", str(run_dir), "--onnx", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'attnmt[onnx]'" in err and err.count("\n") == 1
