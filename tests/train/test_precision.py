"""`train.precision: auto` on a CPU with native bf16: timed on the run's own batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from attnmt import device
from attnmt.config import Config, build_config
from attnmt.data.batching import make_batch
from attnmt.data.synthetic import write_task
from attnmt.device import BF16_MIN_SPEEDUP
from attnmt.io.run import Run
from attnmt.train import precision
from attnmt.train.trainer import Trainer


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("task")
    write_task(directory, train=120, dev=10, test=10, seed=4)
    return directory


def config(task: Path, run_dir: Path, chosen: str = "auto") -> Config:
    split = {"src": str(task / "train.src"), "tgt": str(task / "train.tgt")}
    overrides = {
        "run_dir": str(run_dir),
        "model": {"embed_dim": 8, "hidden_dim": 16, "dropout": 0.3, "decoder": "bahdanau"},
        "data": {"train": split, "dev": split, "tokenizer": "word", "vocab_size": 100},
        "train": {"max_steps": 3, "validate_every": 100, "batch_tokens": 200},
        "decode": {"beam": 1, "max_len": 20},
    }
    overrides["train"]["precision"] = chosen  # type: ignore[index]
    return build_config([("test", overrides)])


def pretend(monkeypatch: pytest.MonkeyPatch, speedup: float) -> list[int]:
    """A CPU with native bf16 on which bf16 measures `speedup`; counts the measurements."""
    calls: list[int] = []
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(precision, "measure_bf16_speedup", lambda *args: calls.append(1) or speedup)
    return calls


@pytest.mark.parametrize(
    ("speedup", "expected"),
    [(2.1, torch.bfloat16), (BF16_MIN_SPEEDUP, torch.bfloat16), (1.1, None), (0.8, None)],
)
def test_auto_follows_the_measured_training_step(
    task: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    speedup: float,
    expected: torch.dtype | None,
) -> None:
    calls, lines = pretend(monkeypatch, speedup), []
    trainer = Trainer.setup(config(task, tmp_path / "run"), progress_bar=False, log=lines.append)
    assert trainer.dtype == expected and calls == [1]
    said = [line for line in lines if line.startswith("precision auto")]
    assert len(said) == 1 and ("bf16" if expected else "fp32") in said[0].split(": ")[-1]


def test_a_resumed_run_keeps_its_precision(
    task: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pretend(monkeypatch, 2.0)
    first = config(task, tmp_path / "run")
    Trainer.setup(first, progress_bar=False, log=lambda _: None).run(until_step=2)
    calls = pretend(monkeypatch, 1.0)  # the machine changed its mind: the run does not
    resumed = Trainer.setup(first, resume=True, progress_bar=False, log=lambda _: None)
    assert resumed.dtype == torch.bfloat16 and calls == []


def test_the_measurement_changes_nothing(task: Path, tmp_path: Path) -> None:
    """Weights, gradients and the random stream are as they were; the ratio is a time."""
    trainer = Trainer.setup(
        config(task, tmp_path / "run", "fp32"), progress_bar=False, log=lambda _: None
    )
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    shard = trainer.sampler.shard(0)
    batches = [make_batch(trainer.data.train, shard[i].tolist()) for i in range(2)]
    torch.manual_seed(11)
    parameters = list(trainer.model.parameters())
    speedup = precision.measure_bf16_speedup(parameters, trainer.forward, batches)
    after_rng = torch.rand(4)
    torch.manual_seed(11)
    assert torch.equal(after_rng, torch.rand(4))
    assert 0 < speedup < float("inf")
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert all(p.grad is None for p in trainer.model.parameters())


def test_probe_batches_are_distinct_and_around_the_median() -> None:
    batches = [[0] * n for n in (5, 1, 9, 3, 7, 2, 8)]
    chosen = precision.probe_batches(batches, 3)
    assert sorted(len(batches[i]) for i in chosen) == [3, 5, 7]
    assert len(set(precision.probe_batches(batches[:2], 4))) == 2  # fewer batches than asked


def test_decoding_follows_what_training_measured(
    task: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Run.load` takes the run's measured choice over a micro-benchmark of its own."""
    monkeypatch.setattr(device, "cpu_bf16_speedup", lambda threads: pytest.fail("measured"))
    for speedup, expected in ((2.0, torch.bfloat16), (1.0, None)):
        pretend(monkeypatch, speedup)
        run_dir = tmp_path / f"run-{speedup}"
        Trainer.setup(config(task, run_dir), progress_bar=False, log=lambda _: None).run()
        assert Run.load(run_dir, "last", device="cpu").dtype == expected


@pytest.mark.parametrize("decoder", ["bahdanau", "luong"])
def test_cpu_autocast_runs_only_the_output_layer_in_bf16(decoder: str) -> None:
    """Under CPU bf16 autocast the encoder and decoder compute exactly what they compute in
    fp32 (so their matmuls meet oneDNN's per-shape bf16 kernels nowhere), and the output
    layer's logits come out in bf16, teacher-forced and step by step."""
    from attnmt.models.build import build_model

    cfg = build_config(
        [("test", {"model": {"embed_dim": 8, "hidden_dim": 16, "decoder": decoder}})]
    ).model
    model = build_model(cfg, src_vocab_size=30, tgt_vocab_size=30).eval()
    src = torch.randint(4, 30, (3, 6))
    lengths = torch.tensor([6, 4, 5])
    tgt_in = torch.randint(4, 30, (3, 5))
    want, _ = model.decoder_outputs(src, lengths, tgt_in)
    enc = model.encode(src, lengths)
    want_step = model.step(tgt_in[:, 0], enc, model.init_state(enc))[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, _ = model.decoder_outputs(src, lengths, tgt_in)
        logits, _ = model(src, lengths, tgt_in)
        enc = model.encode(src, lengths)
        got_step = model.step(tgt_in[:, 0], enc, model.init_state(enc))[0]
    assert got.dtype == torch.float32 and logits.dtype == torch.bfloat16
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert got_step.dtype == torch.float32  # log-probabilities of bf16 logits
    torch.testing.assert_close(got_step, want_step, rtol=0.02, atol=0.05)
