"""Checkpoints and run directories.

A run directory is self-contained and can be moved:

    run_dir/
      config.yaml              the resolved config (every key)
      tokenizer/               tokenizer models and vocabularies
      checkpoints/step-*.pt    the last `train.keep_last` training checkpoints (resumable)
      checkpoints/best.pt      the best model by `train.metric`
      checkpoints/averaged.pt  the mean of the last N step checkpoints (`attnmt average`)
      metrics.jsonl            one JSON object per logged step or validation

Checkpoints are written atomically (temp file + rename) and read with
``torch.load(..., weights_only=True)``: they hold tensors, numbers, strings, lists and
dicts only, so loading a file someone else made runs no pickled code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
AVERAGED = "averaged.pt"  # what `attnmt average` writes into run_dir/checkpoints
WHICH = ("best", "last", "averaged")  # the checkpoints a run directory names


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
    """`best`, `last`, `averaged` (written by ``attnmt average``) or a path; falls back
    from best to the newest step checkpoint."""
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    if which not in WHICH:
        return Path(which)
    if which == "averaged":
        averaged = run_dir / "checkpoints" / AVERAGED
        if not averaged.is_file():
            raise UserError(
                f"{run_dir}: no averaged checkpoint; make one with: attnmt average {run_dir}"
            )
        return averaged
    best = run_dir / "checkpoints" / "best.pt"
    steps = step_checkpoints(run_dir)
    if which == "best" and best.is_file():
        return best
    if steps:
        return steps[-1]
    if best.is_file():
        return best
    raise UserError(f"{run_dir}: no checkpoint yet (is it a finished attnmt run directory?)")


def average_checkpoints(paths: Sequence[Path]) -> dict[str, Any]:
    """A model checkpoint whose weights are the element-wise mean of the checkpoints'
    weights (Vaswani et al. 2017, 6.1, averaged the last 5 or 20), for any model family.

    The checkpoints must hold the same model (config ``model`` section and vocabulary
    sizes); the sums are kept in float64 and each mean is cast back to its tensor's
    dtype. Tensors that are not floating point (none in attnmt's families) must be equal.
    The config and step are the last checkpoint's; ``averaged`` lists the files.
    """
    if not paths:
        raise UserError("no checkpoints to average")
    first = load_checkpoint(paths[0])
    sums = {name: _float64_copy(value) for name, value in first["model"].items()}
    last = first
    for path in paths[1:]:
        payload = load_checkpoint(path)
        same = all(
            payload[key] == first[key] for key in ("src_vocab_size", "tgt_vocab_size")
        ) and payload["config"].get("model") == first["config"].get("model")
        if not same or payload["model"].keys() != sums.keys():
            raise UserError(
                f"cannot average {path} with {paths[0]}: they hold different models "
                "(average checkpoints of one run)"
            )
        for name, value in payload["model"].items():
            if value.is_floating_point():
                sums[name] += value.to(torch.float64)
            elif not torch.equal(value, sums[name]):
                raise UserError(f"cannot average {path}: its {name} differs and is not a float")
        last = payload
    count = len(paths)
    model = {
        name: (total / count).to(first["model"][name].dtype) if total.is_floating_point() else total
        for name, total in sums.items()
    }
    progress = last.get("progress")
    step = progress.get("step") if isinstance(progress, dict) else last.get("step")
    return {
        "config": last["config"],
        "src_vocab_size": last["src_vocab_size"],
        "tgt_vocab_size": last["tgt_vocab_size"],
        "model": model,
        "step": step,
        "averaged": [str(path) for path in paths],
    }


def _float64_copy(value: torch.Tensor) -> torch.Tensor:
    """A float64 copy of a floating tensor (never the tensor itself: tied weights share
    one), or a copy of any other."""
    if value.is_floating_point():
        return value.to(torch.float64, copy=True)
    return value.clone()


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
