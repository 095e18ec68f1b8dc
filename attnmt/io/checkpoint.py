"""Checkpoints and run directories.

A run directory is self-contained and can be moved:

    run_dir/
      config.yaml              the resolved config (every key)
      tokenizer/               tokenizer models and vocabularies
      checkpoints/step-*.pt    the last `train.keep_last` training checkpoints (resumable)
      checkpoints/best.pt      the best model by `train.metric`
      metrics.jsonl            one JSON object per logged step or validation

Checkpoints are written atomically (temp file + rename) and read with
``torch.load(..., weights_only=True)``: they hold tensors, numbers, strings, lists and
dicts only, so loading a file someone else made runs no pickled code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from attnmt.config import Config, ConfigError
from attnmt.errors import UserError
from attnmt.io.files import atomic_write
from attnmt.models.build import build_model
from attnmt.models.seq2seq import Seq2Seq

FORMAT = 1
STEP_PATTERN = re.compile(r"step-(\d+)\.pt$")


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Atomically write a checkpoint payload (tensors, numbers, strings, lists, dicts)."""
    atomic_write(path, lambda f: torch.save({"format": FORMAT, **payload}, f))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint without running pickled code; one-line errors for bad files."""
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated or not a checkpoint at all
        raise UserError(
            f"{path}: not a readable attnmt checkpoint ({type(exc).__name__})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path}: not an attnmt checkpoint (format {FORMAT} expected)")
    return payload


def step_checkpoints(run_dir: Path) -> list[Path]:
    """Training checkpoints of a run, oldest first."""
    directory = run_dir / "checkpoints"
    found = [
        (int(m.group(1)), p)
        for p in directory.glob("step-*.pt")
        if (m := STEP_PATTERN.search(p.name))
    ]
    return [p for _, p in sorted(found)]


def find_model_checkpoint(run_dir: Path, which: str = "best") -> Path:
    """`best`, `last`, or a path; falls back from best to the newest step checkpoint."""
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    if which not in ("best", "last"):
        return Path(which)
    best = run_dir / "checkpoints" / "best.pt"
    steps = step_checkpoints(run_dir)
    if which == "best" and best.is_file():
        return best
    if steps:
        return steps[-1]
    if best.is_file():
        return best
    raise UserError(f"{run_dir}: no checkpoint yet (is it a finished attnmt run directory?)")


def model_from_payload(
    payload: dict[str, Any], device: str | torch.device = "cpu"
) -> tuple[Seq2Seq, Config]:
    """Rebuild the model a checkpoint describes and load its weights."""
    try:
        config = Config.model_validate(payload["config"])
    except Exception:
        raise ConfigError("checkpoint holds a config this attnmt version cannot read") from None
    model = build_model(config.model, payload["src_vocab_size"], payload["tgt_vocab_size"])
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), config


def load_model(
    run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu"
) -> tuple[Seq2Seq, Config]:
    """The trained model of a run directory (in eval mode) and the config it was trained with."""
    path = find_model_checkpoint(Path(run_dir), which)
    return model_from_payload(load_checkpoint(path), device)
