"""attnmt average: the mean of a run's last step checkpoints, for every model family,
accepted by translate and evaluate as --which averaged."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import SENTENCES, make_run

from attnmt import device
from attnmt.cli.average import average_run
from attnmt.cli.main import main
from attnmt.device import Precision
from attnmt.errors import UserError
from attnmt.io.checkpoint import Checkpoint, load_checkpoint, load_model, save_checkpoint
from attnmt.io.run import Run
from attnmt.models.build import build_model
from attnmt.translate.translator import Translator

TRANSFORMER = {"arch": "transformer", "embed_dim": 8, "layers": 1, "ff_dim": 16, "dropout": 0.0}


def add_steps(
    run_dir: Path,
    steps: list[int],
    model: dict[str, Any] | None = None,
    precision: Precision | None = "fp32",
) -> list[dict]:
    """Step checkpoints of random models (of the run's config, or with `model` as its
    model section) trained in `precision`, as training leaves them; returns their state
    dicts."""
    header = load_checkpoint(run_dir / "checkpoints" / "best.pt").header
    if model is not None:
        config = header.config
        validated = config.model.model_validate(model)
        header = replace(header, config=config.model_copy(update={"model": validated}))
    header = replace(header, precision=precision)
    states = []
    for step in steps:
        torch.manual_seed(step)
        built = build_model(header.config.model, header.src_vocab_size, header.tgt_vocab_size)
        state = built.state_dict()
        checkpoint = Checkpoint(replace(header, step=step, dev={"bleu": float(step)}), state)
        save_checkpoint(run_dir / "checkpoints" / f"step-{step:08d}.pt", checkpoint)
        states.append(state)
    if model is not None:  # the run's best model is of the same family
        save_checkpoint(run_dir / "checkpoints" / "best.pt", Checkpoint(header, states[-1]))
    return states


@pytest.mark.parametrize("family", ["rnn", "transformer"])
def test_average_is_the_mean_of_the_last_checkpoints(family: str, tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run")
    states = add_steps(
        run_dir, [100, 200, 300, 400], TRANSFORMER if family == "transformer" else None
    )
    path, steps = average_run(run_dir, 3)
    assert path == run_dir / "checkpoints" / "averaged.pt" and steps == [200, 300, 400]
    averaged = load_checkpoint(path)
    assert averaged.header.step == 400 and averaged.header.averaged_steps == (200, 300, 400)
    assert averaged.header.family == family and averaged.header.dev == {}  # not validated
    assert averaged.training is None
    for name, value in averaged.model.items():
        expected = torch.stack([state[name].double() for state in states[1:]]).mean(0)
        torch.testing.assert_close(value, expected.to(value.dtype))
    model, config = load_model(run_dir, "averaged")
    assert config.model.arch == family
    translation = Translator.load(run_dir, which="averaged", device="cpu").translate(SENTENCES[0])
    assert translation.attention is not None


def test_translate_and_evaluate_accept_the_averaged_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = make_run(tmp_path / "run")
    add_steps(run_dir, [10, 20], TRANSFORMER)
    assert main(["average", str(run_dir), "--last", "2"]) == 0
    assert "--which averaged" in capsys.readouterr().out
    src, ref = tmp_path / "src.txt", tmp_path / "ref.txt"
    src.write_text("".join(s + "\n" for s in SENTENCES[:3]))
    ref.write_text("".join(s + "\n" for s in SENTENCES[:3]))
    code = main(
        ["evaluate", "--model", str(run_dir), "--which", "averaged"]
        + ["--src", str(src), "--ref", str(ref), "--device", "cpu", "--json"]
    )
    assert code == 0 and '"bleu"' in capsys.readouterr().out
    code = main(
        ["translate", "--model", str(run_dir), "--which", "averaged", "--device", "cpu"]
        + ["--input", str(src)]
    )
    assert code == 0 and len(capsys.readouterr().out.splitlines()) == 3
    out = tmp_path / "elsewhere.pt"
    assert main(["average", str(run_dir), "--last", "1", "--out", str(out)]) == 0
    assert out.is_file() and f"--which {out}" in capsys.readouterr().out


def test_average_refuses_what_it_cannot_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = make_run(tmp_path / "run")
    add_steps(run_dir, [1, 2])
    assert main(["average", str(run_dir), "--last", "5"]) == 2
    assert "fewer than --last 5; train with train.keep_last >= 5" in capsys.readouterr().err
    with pytest.raises(UserError, match="no averaged checkpoint"):
        load_model(run_dir, "averaged")
    # Checkpoints of different models, or of other tokenizers, are not averaged.
    other = load_checkpoint(run_dir / "checkpoints" / "step-00000002.pt")
    model = other.header.config.model.model_copy(update={"embed_dim": 12})
    config = other.header.config.model_copy(update={"model": model})
    differs = [replace(other.header, config=config), replace(other.header, src_tokenizer="0" * 64)]
    for header in differs:
        save_checkpoint(run_dir / "checkpoints" / "step-00000003.pt", replace(other, header=header))
        with pytest.raises(UserError, match="they hold different models"):
            average_run(run_dir, 2)


@pytest.mark.parametrize("recorded", ["fp32", "bf16"])
def test_the_averaged_checkpoint_keeps_the_precision_training_chose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recorded: Precision
) -> None:
    """`--which averaged` decodes in what training chose (`precision: auto`), never
    falling back to a micro-benchmark of this machine."""
    run_dir = make_run(tmp_path / "run")
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    train = best.header.config.train.model_copy(update={"precision": "auto"})
    config = best.header.config.model_copy(update={"train": train})
    save_checkpoint(
        run_dir / "checkpoints" / "best.pt",
        replace(best, header=replace(best.header, config=config)),
    )
    add_steps(run_dir, [5, 10], precision=recorded)
    average_run(run_dir, 2)
    assert load_checkpoint(run_dir / "checkpoints" / "averaged.pt").header.precision == recorded
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(device, "cpu_bf16_speedup", lambda threads: pytest.fail("measured"))
    expected = torch.bfloat16 if recorded == "bf16" else None
    assert Run.load(run_dir, "averaged", device="cpu").dtype == expected
