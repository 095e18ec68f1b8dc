"""Training the compared configs, each in its own process, and what was measured doing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnmt.compare.tasks import Task
from attnmt.config import (
    Config,
    ConfigError,
    build_config,
    read_yaml,
    save_config,
    without_other_family,
)
from attnmt.errors import UserError
from attnmt.files import write_text_atomic
from attnmt.io.checkpoint import (
    step_checkpoints,
)

CONFIG_SUFFIXES = (".yaml", ".yml")


TRAINING_RECORD = "compare.json"  # what compare measured while training a run


@dataclass
class RunInput:
    """One thing to compare: a config to train (or reuse), or a finished run directory."""

    name: str  # the column name in the report
    run_dir: Path
    config_path: Path | None = None  # None: a run directory, read as is


def resolve_inputs(arguments: Sequence[str], out: Path) -> list[RunInput]:
    """Sort the command-line arguments into configs and run directories.

    A config's run goes to ``<out>/runs/<stem>``; a run directory keeps its place.
    Names must be unique, so two configs with one stem are an error.
    """
    if not arguments:
        raise UserError("give at least one YAML config or run directory to compare")
    inputs: list[RunInput] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_file() and path.suffix in CONFIG_SUFFIXES:
            inputs.append(RunInput(path.stem, out / "runs" / path.stem, path))
        elif path.is_dir():
            inputs.append(RunInput(path.resolve().name, path))
        else:
            raise UserError(f"{argument}: neither a YAML config (.yaml) nor a run directory")
    names = [item.name for item in inputs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UserError(f"two inputs share the name {duplicates[0]!r}; rename one of them")
    return inputs


def resolved_config(
    config_path: Path, task: Task, run_dir: Path, seed: int, minutes: float
) -> Config:
    """Task defaults, then the preset, then the forced keys (data, seed, budget, run_dir).

    The preset's own data section, if any, is dropped: the task's replaces it whole. The
    task's model defaults reach only the keys of the preset's family (``model.arch``): the
    synthetic task's RNN sizes do not apply to a Transformer preset.
    """
    forced = {
        "run_dir": str(run_dir),
        "data": task.data,
        "train": {"seed": seed, "max_minutes": minutes},
    }
    preset = {key: value for key, value in read_yaml(config_path).items() if key != "data"}
    arch = (preset.get("model") or {}).get("arch", "rnn")
    defaults = dict(task.defaults)
    if isinstance(defaults.get("model"), dict):
        defaults["model"] = without_other_family(defaults["model"], arch)
    layers = [
        (f"the {task.name} task", defaults),
        (str(config_path), preset),
        ("compare", forced),
    ]
    return build_config(layers)


def is_finished(run_dir: Path) -> bool:
    """A finished run has its best model saved."""
    return (run_dir / "checkpoints" / "best.pt").is_file()


@dataclass
class TrainingRecord:
    """What compare measures about a training process it ran."""

    peak_memory_mb: float  # ru_maxrss of the training process (interpreter and torch included)
    process_wall_s: float  # the process's wall time, start-up and tokenizer training included
    resumed: bool  # continued an interrupted run


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_differences(run_dir: Path, config: Config) -> list[str]:
    """Keys whose value in the run's saved config.yaml differs from `config`."""
    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        return []
    try:
        saved = _flatten(Config.model_validate(read_yaml(saved_path)).to_dict())
    except (ConfigError, ValueError):
        return ["(unreadable config.yaml)"]
    wanted = _flatten(config.to_dict())
    return sorted(key for key in wanted if saved.get(key) != wanted[key])


def _peak_mb(usage: Any) -> float:
    """ru_maxrss in MB: Linux reports KiB, macOS bytes."""
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return float(usage.ru_maxrss) / scale


def train_subprocess(config: Config, log_path: Path) -> TrainingRecord:
    """Train `config` in a fresh ``python -m attnmt.cli train`` process; resume a run that
    was interrupted (checkpoints but no best model). Output goes to `log_path`."""
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.yaml"
    resumed = bool(step_checkpoints(run_dir))
    if not resumed:
        save_config(config, config_path)
    command = [sys.executable, "-m", "attnmt.cli", "train", str(config_path), "--no-progress"]
    if resumed:
        command.append("--resume")
    start = time.perf_counter()
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _, status, usage = os.wait4(process.pid, 0)  # this child's own resource usage
        except KeyboardInterrupt:
            process.wait()  # it got the Ctrl-C too; it saves a checkpoint and exits
            raise
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        lines = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        last = lines[-1] if lines else "no output"
        raise UserError(
            f"training {run_dir} failed (exit {process.returncode}): {last} [log: {log_path}]"
        )
    record = TrainingRecord(_peak_mb(usage), wall, resumed)
    write_text_atomic(run_dir / TRAINING_RECORD, json.dumps(record.__dict__, indent=2) + "\n")
    return record


def read_training_record(run_dir: Path) -> TrainingRecord | None:
    path = run_dir / TRAINING_RECORD
    try:
        return TrainingRecord(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
