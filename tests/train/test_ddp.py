"""Data-parallel training in real torchrun processes (2 ranks, gloo on the CPU).

The file is also the script those processes run: ``torchrun ... test_ddp.py grads OUT``
computes one rank's gradients of a fixed batch and saves them for the test to compare.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from attnmt.config import Config, build_config, save_config
from attnmt.data.batching import make_batch
from attnmt.data.corpus import CorpusStats, TokenizedCorpus, load_corpus
from attnmt.data.tokenize import WordTokenizer
from attnmt.evaluate.evaluation import evaluate_corpus
from attnmt.io.checkpoint import step_checkpoints
from attnmt.io.run import Run
from attnmt.train.distributed import World, init_distributed, shutdown
from attnmt.train.setup import TrainingData
from attnmt.train.trainer import Trainer
from attnmt.translate.translator import Translator

TORCHRUN = Path(sys.executable).parent / "torchrun"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def torchrun(*args: str, **popen: Any) -> subprocess.Popen[bytes]:
    """Two processes on this machine, as a user would start them."""
    command = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", *args]
    return subprocess.Popen(
        command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen
    )


def kill_job(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL torchrun's workers (each runs in a session of its own), then torchrun:
    the run dies as it would on a crash, with no chance to save anything."""
    for task in Path(f"/proc/{process.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            os.kill(int(child), signal.SIGKILL)
    process.kill()
    process.communicate()


def finish(process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output.decode()[-3000:]


# ---------------------------------------------------------------------------
# Gradient equivalence: 2 ranks over two halves == 1 process over the whole batch

WORDS = [f"w{i}" for i in range(30)]
# Uneven halves: rank 0 has 3 long pairs, rank 1 has 5 short ones, so a loss normalised
# by each rank's own token count would weigh the two halves wrongly.
HALVES = [[0, 1, 2], [3, 4, 5, 6, 7]]


def gradient_trainer(world: World) -> tuple[Trainer, TokenizedCorpus]:
    """A tiny model (no dropout) and 8 pairs of random ids, the same in every process."""
    rng = np.random.default_rng(0)
    lengths = [(9, 11), (12, 8), (10, 10), (3, 2), (2, 4), (4, 3), (1, 2), (3, 3)]
    src = [rng.integers(4, 34, size=s) for s, _ in lengths]
    tgt = [rng.integers(4, 34, size=t) for _, t in lengths]

    def flat(side: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        offsets = np.concatenate([[0], np.cumsum([len(s) for s in side])]).astype(np.int64)
        return np.concatenate(side).astype(np.int32), offsets

    corpus = TokenizedCorpus(*flat(src), *flat(tgt), stats=CorpusStats(8, 0, 0))
    tok = WordTokenizer.build([" ".join(WORDS)], vocab_size=100)
    config = build_config(
        [
            (
                "test",
                {
                    "run_dir": "unused",
                    "model": {"embed_dim": 8, "hidden_dim": 16, "dropout": 0.0},
                    "train": {"precision": "fp32", "label_smoothing": 0.1, "threads": 1},
                },
            )
        ]
    )
    data = TrainingData(tok, tok, corpus, None, [])
    return Trainer(config, data, callbacks=[], log=lambda _: None, world=world), corpus


def gradients(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}


def test_two_ranks_give_the_gradient_of_one_process_over_the_union(tmp_path: Path) -> None:
    trainer, corpus = gradient_trainer(World())
    loss_sum, tokens = trainer.compute_gradients(make_batch(corpus, HALVES[0] + HALVES[1]))
    expected = gradients(trainer)
    assert tokens == int(corpus.tgt_lengths.sum()) + len(corpus)  # every EOS too

    finish(torchrun(__file__, "grads", str(tmp_path)))
    for rank in (0, 1):
        saved = torch.load(tmp_path / f"grads-{rank}.pt", weights_only=True)
        assert saved["tokens"] == tokens
        assert saved["loss_sum"] == pytest.approx(loss_sum, rel=1e-6)
        assert saved["grads"].keys() == expected.keys()
        for name, grad in expected.items():
            torch.testing.assert_close(saved["grads"][name], grad, rtol=1e-5, atol=1e-7)


def _save_rank_gradients(out: Path) -> None:
    world = init_distributed(torch.device("cpu"))
    trainer, corpus = gradient_trainer(world)
    loss_sum, tokens = trainer.compute_gradients(make_batch(corpus, HALVES[world.rank]))
    result = {"loss_sum": loss_sum, "tokens": tokens, "grads": gradients(trainer)}
    torch.save(result, out / f"grads-{world.rank}.pt")
    shutdown()


# ---------------------------------------------------------------------------
# End to end: torchrun -m attnmt train, killed, resumed; as accurate as one process


def write_reversal_task(directory: Path) -> None:
    """Reverse 2-4 letters and spell them in capitals: learnt in about 150 steps."""
    rng = random.Random(0)
    for name, count in (("train", 600), ("dev", 50)):
        pairs = []
        for _ in range(count):
            letters = [rng.choice("abcdef") for _ in range(rng.randint(2, 4))]
            pairs.append((" ".join(letters), " ".join(x.upper() for x in reversed(letters))))
        (directory / f"{name}.src").write_text("".join(s + "\n" for s, _ in pairs))
        (directory / f"{name}.tgt").write_text("".join(t + "\n" for _, t in pairs))


def reversal_config(task: Path, run_dir: Path, batch_tokens: int) -> Config:
    split = lambda n: {"src": str(task / f"{n}.src"), "tgt": str(task / f"{n}.tgt")}  # noqa: E731
    overrides = {
        "run_dir": str(run_dir),
        "model": {"embed_dim": 16, "hidden_dim": 32, "dropout": 0.0, "decoder": "luong"},
        "data": {"train": split("train"), "dev": split("dev"), "tokenizer": "word"},
        "train": {
            "max_steps": STEPS,
            "validate_every": STEPS // 4,
            "batch_tokens": batch_tokens,
            "precision": "fp32",
            "log_every": 10,
            "lr": 0.02,
            "schedule": "cosine",  # decays to 0 at max_steps: a steady end to compare
            "warmup_steps": 10,
            "threads": 1,
        },
        "decode": {"beam": 1, "max_len": 10},
    }
    return build_config([("test", overrides)])


STEPS = 160


def dev_entries(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["split"] == "dev"]


def test_two_processes_resume_after_a_kill_and_learn_like_one(tmp_path: Path) -> None:
    write_reversal_task(tmp_path)
    # The same global batch: each of the 2 ranks takes half the tokens of one process.
    one = reversal_config(tmp_path, tmp_path / "one", batch_tokens=240)
    two = reversal_config(tmp_path, tmp_path / "two", batch_tokens=120)
    save_config(two, tmp_path / "two.yaml")
    train = ["-m", "attnmt", "train", str(tmp_path / "two.yaml"), "--no-progress"]

    process = torchrun(*train)
    deadline = time.monotonic() + 120
    while not step_checkpoints(tmp_path / "two") and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 2 minutes"
        time.sleep(0.02)
    kill_job(process)
    killed_at = int(step_checkpoints(tmp_path / "two")[-1].stem.split("-")[1])
    assert killed_at < STEPS, "the run finished before it could be killed"

    Trainer.setup(one, progress_bar=False, log=lambda _: None).run()  # meanwhile: 1 process
    finish(torchrun(*train, "--resume"))

    dev_one, dev_two = dev_entries(tmp_path / "one"), dev_entries(tmp_path / "two")
    steps = [entry["step"] for entry in dev_two]
    assert steps == [STEPS // 4 * k for k in (1, 2, 3, 4)]  # once each: rank 0 alone logs
    exact_one, exact_two = dev_one[-1]["exact"], dev_two[-1]["exact"]
    assert exact_one >= 0.7 and exact_two >= 0.7, (exact_one, exact_two)
    assert abs(exact_one - exact_two) <= 0.15, (exact_one, exact_two)

    # The DDP run's best model loads and decodes in this single process.
    run = Run.load(tmp_path / "two")
    dev = load_corpus(two.data.dev, "dev", run.src_tok, run.tgt_tok, two.data, tmp_path, False)
    refs = (tmp_path / "dev.tgt").read_text().splitlines()
    translator = Translator.from_run(run)
    scores = evaluate_corpus(
        translator, dev, refs, options=translator.options(beam=1, n_best=1, sample=False)
    ).scores
    best = max(dev_two, key=lambda entry: entry["bleu"])
    assert scores["exact"] == pytest.approx(best["exact"])


if __name__ == "__main__":  # one rank of the gradient test, under torchrun
    assert sys.argv[1] == "grads"
    _save_rank_gradients(Path(sys.argv[2]))
