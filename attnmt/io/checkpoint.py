"""Checkpoints and run directories.

A run directory is self-contained and can be moved:

    run_dir/
      config.yaml              the resolved config (every key)
      tokenizer/               tokenizer models and vocabularies
      checkpoints/step-*.pt    the last `train.keep_last` training checkpoints (resumable)
      checkpoints/best.pt      the best model by `train.metric`
      checkpoints/averaged.pt  the mean of the last N step checkpoints (`attnmt average`)
      checkpoints/int8.pt      an int8 copy of one of them (`attnmt export --int8`)
      metrics.jsonl            one JSON object per logged step or validation

A checkpoint is a :class:`Checkpoint`: a typed :class:`CheckpointHeader` (what the
weights are and how they were trained), the model's state dict and, in step checkpoints,
the :class:`TrainingState` that resuming needs. :func:`save_checkpoint` is the one
writer and :func:`load_checkpoint` the one reader; a file holds

    {"format": 2, "header": {...}, "model": {...}, "training": {...} or None}

and format 1, the flat dict of earlier versions (``config``, ``model``, the vocabulary
sizes, optional ``precision``, ``step``, ``progress`` and training state side by side),
is still read. Files are written atomically (temp file + rename) and read with
``torch.load(..., weights_only=True)``: they hold tensors, numbers, strings, lists and
dicts only, so loading a file someone else made runs no pickled code.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from attnmt.config import Config, ConfigError
from attnmt.data.tokenize import Tokenizer
from attnmt.device import Precision, precision_name
from attnmt.errors import UserError
from attnmt.files import atomic_write
from attnmt.models.build import build_model
from attnmt.models.interface import TrainableModel
from attnmt.models.quantized import (
    QUANTIZATION,
    int8_state_dict,
    load_int8_state_dict,
    quantize_int8,
)

FORMAT = 2
"""The layout :func:`save_checkpoint` writes (1: the flat dict of earlier versions)."""
STEP_PATTERN = re.compile(r"step-(\d+)\.pt$")
AVERAGED = "averaged.pt"  # what `attnmt average` writes into run_dir/checkpoints
INT8 = "int8.pt"  # what `attnmt export --int8` writes into run_dir/checkpoints
WHICH = ("best", "last", "averaged", "int8")  # the checkpoints a run directory names
TRAINING_KEYS = ("optimizer", "schedule", "sampler", "progress", "rng")


@dataclass(frozen=True)
class CheckpointHeader:
    """What a checkpoint's weights are and how they were trained."""

    config: Config  # the resolved config of the run (its model section builds the model)
    src_vocab_size: int  # vocabulary sizes: with config.model they fix every shape
    tgt_vocab_size: int
    precision: Precision | None  # what training ran in; None: not recorded (format 1)
    step: int | None  # optimizer steps behind the weights; None: not recorded
    src_tokenizer: str | None = None  # Tokenizer.fingerprint() of the run's tokenizers;
    tgt_tokenizer: str | None = None  # None: not recorded (format 1)
    dev: dict[str, float] = field(default_factory=dict)  # the last validation's scores
    averaged_steps: tuple[int, ...] = ()  # the steps `attnmt average` averaged; () if none
    quantization: str | None = None  # "int8-dynamic": an int8 copy (models/quantized.py)
    format: int = FORMAT  # the layout the file was read from

    @property
    def family(self) -> str:
        """The model family (``model.arch``)."""
        return self.config.model.arch

    @classmethod
    def of_run(
        cls,
        config: Config,
        src_tok: Tokenizer,
        tgt_tok: Tokenizer,
        dtype: torch.dtype | None,
        step: int | None,
        dev: dict[str, float] | None = None,
    ) -> CheckpointHeader:
        """The header of a run's model: vocabulary sizes and fingerprints from its
        tokenizers, the precision from its autocast dtype (None: fp32)."""
        return cls(
            config=config,
            src_vocab_size=src_tok.vocab_size,
            tgt_vocab_size=tgt_tok.vocab_size,
            precision=precision_name(dtype),
            step=step,
            src_tokenizer=src_tok.fingerprint(),
            tgt_tokenizer=tgt_tok.fingerprint(),
            dev=dict(dev or {}),
        )

    def check_tokenizers(self, src_tok: Tokenizer, tgt_tok: Tokenizer, where: Path) -> None:
        """Raise when the tokenizers in `where` are not the ones the model was trained
        with (a checkpoint of format 1 recorded none, and passes)."""
        for side, recorded, tok in (
            ("source", self.src_tokenizer, src_tok),
            ("target", self.tgt_tokenizer, tgt_tok),
        ):
            if recorded is not None and recorded != tok.fingerprint():
                raise UserError(
                    f"{where}: the {side} tokenizer is not the one this checkpoint was "
                    "trained with (was the tokenizer directory replaced?)"
                )


@dataclass
class TrainingState:
    """What a step checkpoint adds, so that training resumes exactly where it stopped."""

    optimizer: dict[str, Any]  # optimizer.state_dict()
    schedule: dict[str, Any]  # LRSchedule.state_dict()
    sampler: dict[str, int]  # the position in the data
    progress: dict[str, Any]  # the loop's books (attnmt.train.progress.Progress as a dict)
    rng: dict[str, Any]  # random states: torch, cuda, and each rank's


@dataclass
class Checkpoint:
    """A model's weights with their header, and what resuming needs (step checkpoints)."""

    header: CheckpointHeader
    model: dict[str, Tensor]  # the state dict
    training: TrainingState | None = None


def save_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Atomically write `checkpoint` (format `FORMAT`)."""
    header = {
        **_fields(checkpoint.header),
        "format": FORMAT,
        "config": checkpoint.header.config.to_dict(),
        "family": checkpoint.header.family,  # for readers that do not rebuild the config
        "averaged_steps": list(checkpoint.header.averaged_steps),
    }
    training = checkpoint.training
    payload = {
        "format": FORMAT,
        "header": header,
        "model": checkpoint.model,
        "training": _fields(training) if training is not None else None,
    }
    atomic_write(path, lambda f: torch.save(payload, f))


def _fields(instance: CheckpointHeader | TrainingState) -> dict[str, Any]:
    """A dataclass's fields as a dict, the values as they are (``asdict`` would deep-copy
    the optimizer's tensors)."""
    return {item.name: getattr(instance, item.name) for item in fields(instance)}


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint of either format without running pickled code; one-line errors
    for bad files."""
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch's own reader of int8 (quantised) tensors
            warnings.filterwarnings("ignore", "TypedStorage is deprecated")
            warnings.filterwarnings("ignore", ".*quantized tensor creation functions")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt, truncated or not a checkpoint at all
        raise UserError(
            f"{path}: not a readable attnmt checkpoint ({type(exc).__name__})"
        ) from None
    version = payload.get("format") if isinstance(payload, dict) else None
    if version not in (1, FORMAT):
        raise UserError(f"{path}: not an attnmt checkpoint (format 1 or {FORMAT} expected)")
    try:
        return _from_format_1(payload) if version == 1 else _from_payload(payload)
    except (KeyError, TypeError, AttributeError):
        raise UserError(f"{path}: not an attnmt checkpoint (parts are missing)") from None


def _from_payload(payload: dict[str, Any]) -> Checkpoint:
    """A checkpoint from the dict :func:`save_checkpoint` wrote."""
    stored = dict(payload["header"])
    stored.pop("family")  # the config's model.arch
    header = CheckpointHeader(
        **{
            **stored,
            "config": _config(stored["config"]),
            "averaged_steps": tuple(stored["averaged_steps"]),
        }
    )
    training = payload["training"]
    return Checkpoint(header, payload["model"], TrainingState(**training) if training else None)


def _from_format_1(payload: dict[str, Any]) -> Checkpoint:
    """A checkpoint from the flat dict of earlier versions: the model payload (config,
    vocabulary sizes, weights, ``precision`` from some version on), with ``step`` and
    ``dev`` in best.pt, ``step`` and ``averaged`` (the files) in averaged.pt, and the
    training state beside them in step checkpoints."""
    progress = payload.get("progress")
    step = progress["step"] if isinstance(progress, dict) else payload.get("step")
    averaged = (STEP_PATTERN.search(str(name)) for name in payload.get("averaged", []))
    header = CheckpointHeader(
        config=_config(payload["config"]),
        src_vocab_size=payload["src_vocab_size"],
        tgt_vocab_size=payload["tgt_vocab_size"],
        precision=payload.get("precision"),
        step=step,
        dev=payload.get("dev") or {},
        averaged_steps=tuple(int(match.group(1)) for match in averaged if match),
        format=1,
    )
    training = None
    if all(key in payload for key in TRAINING_KEYS):
        training = TrainingState(**{key: payload[key] for key in TRAINING_KEYS})
    return Checkpoint(header, payload["model"], training)


def _config(stored: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(stored)
    except Exception:
        raise ConfigError("checkpoint holds a config this attnmt version cannot read") from None


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
    """`best`, `last`, `averaged` (written by ``attnmt average``), `int8` (written by
    ``attnmt export --int8``) or a path; falls back from best to the newest step
    checkpoint."""
    if not run_dir.is_dir():
        raise UserError(f"run directory not found: {run_dir}")
    if which not in WHICH:
        return Path(which)
    made_by = {"averaged": (AVERAGED, "attnmt average"), "int8": (INT8, "attnmt export --int8")}
    if which in made_by:
        name, command = made_by[which]
        if not (run_dir / "checkpoints" / name).is_file():
            raise UserError(f"{run_dir}: no {which} checkpoint; make one with: {command} {run_dir}")
        return run_dir / "checkpoints" / name
    best = run_dir / "checkpoints" / "best.pt"
    steps = step_checkpoints(run_dir)
    if which == "best" and best.is_file():
        return best
    if steps:
        return steps[-1]
    if best.is_file():
        return best
    raise UserError(f"{run_dir}: no checkpoint yet (is it a finished attnmt run directory?)")


def average_checkpoints(paths: Sequence[Path]) -> Checkpoint:
    """A model checkpoint whose weights are the element-wise mean of the checkpoints'
    weights (Vaswani et al. 2017, 6.1, averaged the last 5 or 20), for any model family.

    The checkpoints must hold the same model (config ``model`` section, vocabulary sizes
    and tokenizers); the sums are kept in float64 and each mean is cast back to its
    tensor's dtype. Tensors that are not floating point (none in attnmt's families) must
    be equal. The header is the last checkpoint's (config, precision, step), with
    ``averaged_steps`` naming the steps averaged and no dev scores (the mean was not
    validated); there is no training state.
    """
    if not paths:
        raise UserError("no checkpoints to average")
    first = load_checkpoint(paths[0])
    sums = {name: _float64_copy(value) for name, value in first.model.items()}
    last, steps = first, [_step_of(first, paths[0])]
    for path in paths[1:]:
        checkpoint = load_checkpoint(path)
        if (
            not _same_model(checkpoint.header, first.header)
            or checkpoint.model.keys() != sums.keys()
        ):
            raise UserError(
                f"cannot average {path} with {paths[0]}: they hold different models "
                "(average checkpoints of one run)"
            )
        for name, value in checkpoint.model.items():
            if value.is_floating_point():
                sums[name] += value.to(torch.float64)
            elif not torch.equal(value, sums[name]):
                raise UserError(f"cannot average {path}: its {name} differs and is not a float")
        last = checkpoint
        steps.append(_step_of(checkpoint, path))
    count = len(paths)
    model = {
        name: (total / count).to(first.model[name].dtype) if total.is_floating_point() else total
        for name, total in sums.items()
    }
    averaged_steps = tuple(step for step in steps if step is not None)
    return Checkpoint(replace(last.header, dev={}, averaged_steps=averaged_steps), model)


def _same_model(one: CheckpointHeader, other: CheckpointHeader) -> bool:
    """Whether two headers describe the same model: architecture, vocabularies, tokenizers."""
    keys = ("src_vocab_size", "tgt_vocab_size", "src_tokenizer", "tgt_tokenizer")
    same = all(getattr(one, key) == getattr(other, key) for key in keys)
    return same and one.config.model == other.config.model


def _step_of(checkpoint: Checkpoint, path: Path) -> int | None:
    """The step a checkpoint was written at: its header's, else its file name's."""
    if checkpoint.header.step is not None:
        return checkpoint.header.step
    match = STEP_PATTERN.search(path.name)
    return int(match.group(1)) if match else None


def _float64_copy(value: Tensor) -> Tensor:
    """A float64 copy of a floating tensor (never the tensor itself: tied weights share
    one), or a copy of any other."""
    if value.is_floating_point():
        return value.to(torch.float64, copy=True)
    return value.clone()


def model_from_checkpoint(
    checkpoint: Checkpoint, device: str | torch.device = "cpu"
) -> TrainableModel:
    """Rebuild the model a checkpoint describes (in eval mode) and load its weights; an
    int8 checkpoint's model is quantised first and runs on the CPU only."""
    header = checkpoint.header
    model = build_model(header.config.model, header.src_vocab_size, header.tgt_vocab_size)
    if header.quantization is None:
        model.load_state_dict(checkpoint.model)
    elif header.quantization == QUANTIZATION:
        if torch.device(device).type != "cpu":
            raise UserError(f"int8 models run on the CPU only (got device {device})")
        load_int8_state_dict(cast(nn.Module, quantize_int8(model)), checkpoint.model)
    else:
        raise UserError(f"unknown quantization {header.quantization!r} in the checkpoint")
    model.to(device)
    model.train(False)
    return model


def int8_checkpoint(checkpoint: Checkpoint) -> Checkpoint:
    """An int8 copy of a model checkpoint (:func:`attnmt.models.quantized.quantize_int8`):
    the same header, marked quantised, and no training state."""
    if checkpoint.header.quantization is not None:
        raise UserError("the checkpoint is int8 already; export from best, last or averaged")
    model = quantize_int8(model_from_checkpoint(checkpoint))
    header = replace(checkpoint.header, quantization=QUANTIZATION)
    return Checkpoint(header, int8_state_dict(cast(nn.Module, model)))


def load_model(
    run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu"
) -> tuple[TrainableModel, Config]:
    """The trained model of a run directory (in eval mode) and the config it was trained with."""
    checkpoint = load_checkpoint(find_model_checkpoint(Path(run_dir), which))
    return model_from_checkpoint(checkpoint, device), checkpoint.header.config
