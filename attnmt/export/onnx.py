"""``attnmt export RUN --onnx DIR``: a run's model as two ONNX graphs, its tokenizers and
a manifest, for onnxruntime (:class:`attnmt.runtime.onnx.OnnxModel`) or for a program
with no torch at all (examples/onnx_translate.py).

    encoder.onnx       src (B, S), src_lengths (B,) -> memory.*, state.* (the first state)
    decoder_step.onnx  tokens (B,), memory.*, state.* -> log_probs (B, V), attention
                       (B, S), next_state.*
    tokenizer/         copied from the run
    manifest.json      see :mod:`attnmt.runtime.onnx`

The graphs are traced with ``torch.onnx.export(dynamo=False)``, the TorchScript
exporter: the torch.export-based default cannot trace the RNN encoder's packed
sequences (``pack_padded_sequence`` with data-dependent lengths), which the TorchScript
exporter turns into ONNX's GRU/LSTM/RNN with ``sequence_lens``, the same semantics.
Batch, source length and decoded length are dynamic axes (:func:`probe_axes` finds
them). Before anything is written, the graphs are run on a batch of another size and
length than the one traced and compared with the PyTorch model, step by step; a model
whose graphs disagree is refused in one line. The directory appears whole or not at all
(written beside it, then renamed).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from attnmt import __version__
from attnmt.errors import UserError
from attnmt.export.graphs import (
    BATCH,
    SRC_LEN,
    EncoderGraph,
    StepGraph,
    example_batch,
    first_tokens,
    flatten,
    probe_axes,
    step_output_names,
)
from attnmt.files import write_text_atomic
from attnmt.io.run import Run
from attnmt.models.interface import Seq2SeqModel
from attnmt.models.modes import evaluating
from attnmt.runtime.onnx import (
    ENCODER_FILE,
    FORMAT,
    MANIFEST,
    MEMORY,
    STATE,
    STEP_FILE,
    TOKENIZER_DIR,
    VERSION,
    Manifest,
    OnnxModel,
    is_onnx_export,
    onnxruntime,
)
from attnmt.special import BOS_ID, EOS_ID, PAD_ID, UNK_ID

OPSET = 17  # LayerNormalization is an ONNX op from 17; onnxruntime >= 1.17 runs it
TRACE_LENGTHS = (7, 5, 2)  # the batch the graphs are traced on: B = 3, S = 7
CHECK_LENGTHS = (9, 4, 6, 1)  # and the one they are checked on: another B and S
CHECK_STEPS = 4
# what the TorchScript exporter says of every packed RNN, though ONNX's RNN operators
# with sequence_lens give the shapes (the check after export runs them on a new shape)
PACKED_SHAPE_NOTE = "The shape inference of prim::Pa"
TOLERANCE = 1e-4  # |log p| difference allowed between onnxruntime and torch (fp32)


def export_onnx(run_dir: Path, out_dir: Path, which: str = "best") -> Path:
    """Export `run_dir`'s `which` checkpoint into `out_dir` (created, or replacing an
    earlier export there); returns `out_dir`."""
    _check_target(out_dir)
    onnxruntime()  # checked before the work: it runs the graphs to check them
    if which == "int8":
        raise UserError(
            "an int8 checkpoint cannot be exported to ONNX (its quantised layers have no "
            "ONNX form here); export the fp32 one: --which best, last or averaged"
        )
    run = Run.load(run_dir, which, device="cpu")
    if not isinstance(run.model, torch.nn.Module):
        raise UserError(f"{run_dir} is an ONNX export already; export the run it came from")
    model = run.model.to(torch.float32)  # fp32 graphs, whatever training ran in
    staging = out_dir.parent / f".{out_dir.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        staging.mkdir(parents=True)
        with evaluating(model), torch.no_grad():
            layout = _export_graphs(model, staging)
        shutil.copytree(run_dir / TOKENIZER_DIR, staging / TOKENIZER_DIR)
        manifest = _manifest(run, which, layout, staging)
        write_text_atomic(staging / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        with evaluating(model), torch.no_grad():
            _check_graphs(model, Manifest.read(staging))
        _replace(staging, out_dir)
    except OSError as err:
        raise UserError(f"cannot write {out_dir}: {err.strerror or err}") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _check_target(out_dir: Path) -> None:
    """DIR may be new, an empty directory, or an earlier export (replaced)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file; --onnx needs a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not is_onnx_export(out_dir):
        raise UserError(
            f"{out_dir} exists and is not an ONNX export; choose a new or empty directory"
        )


def _export_graphs(model: Seq2SeqModel, directory: Path) -> dict[str, Any]:
    """Trace both graphs into `directory`; returns the names and dynamic axes."""
    axes = probe_axes(model)
    src, src_lengths = example_batch(TRACE_LENGTHS, model.tgt_vocab_size)
    memory = model.encode(src, src_lengths)
    state = model.init_state(memory)
    encoded = flatten(memory, MEMORY[:-1]) + flatten(state, STATE[:-1])
    names = [name for name, _ in encoded]
    _trace(
        EncoderGraph(model),
        (src, src_lengths),
        directory / ENCODER_FILE,
        ["src", "src_lengths"],
        names,
        {"src": {0: BATCH, 1: SRC_LEN}, "src_lengths": {0: BATCH}} | axes,
    )
    # trace the step after two steps, so that no dynamic size is 0 or 1 when traced
    tokens = first_tokens(len(TRACE_LENGTHS))
    for _ in range(2):
        _, _, state = model.step(tokens, memory, state)
        tokens = tokens + 5
    state_flat = flatten(state, STATE[:-1])
    memory_flat = flatten(memory, MEMORY[:-1])
    outputs = step_output_names(state_flat, model.has_attention)
    step_axes = {"tokens": {0: BATCH}, "log_probs": {0: BATCH}, "attention": {0: BATCH, 1: SRC_LEN}}
    step_axes |= axes | {
        out: axes[name]
        for out, (name, _) in zip(outputs[-len(state_flat) :], state_flat, strict=True)
    }
    _trace(
        StepGraph(model, memory, state),
        (tokens, *(t for _, t in memory_flat + state_flat)),
        directory / STEP_FILE,
        ["tokens", *(name for name, _ in memory_flat + state_flat)],
        outputs,
        step_axes,
    )
    return {
        "memory": [{"name": name, "batch_axis": _batch_axis(axes[name])} for name in names],
        "state": [{"name": name, "batch_axis": _batch_axis(axes[name])} for name, _ in state_flat],
        "axes": {
            name: {str(axis): label for axis, label in found.items()}
            for name, found in axes.items()
        },
    }


def _batch_axis(found: dict[int, str]) -> int | None:
    return next((axis for axis, label in found.items() if label == BATCH), None)


def _trace(
    graph: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    used = set(input_names) | set(output_names)
    with warnings.catch_warnings(), _without_native_notes(PACKED_SHAPE_NOTE):
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation, tracer notes
        try:
            torch.onnx.export(
                graph,
                args,
                str(path),
                input_names=input_names,
                output_names=output_names,
                dynamic_axes={name: axes for name, axes in dynamic_axes.items() if name in used},
                opset_version=OPSET,
                dynamo=False,
            )
        except Exception as err:  # the exporter's errors have no common type
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"cannot export this model to ONNX: {reason}") from None


@contextlib.contextmanager
def _without_native_notes(note: str) -> Iterator[None]:
    """Pass on what is written to file descriptor 2 meanwhile (torch's C++ side writes
    there, past Python's warnings), less the lines that contain `note`."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if note not in line))


def _io(session: Any) -> dict[str, list[dict[str, Any]]]:
    """The graph's inputs and outputs as onnxruntime reads them: name, type, shape."""

    def describe(nodes: Any) -> list[dict[str, Any]]:
        return [{"name": n.name, "type": n.type, "shape": list(n.shape)} for n in nodes]

    return {"inputs": describe(session.get_inputs()), "outputs": describe(session.get_outputs())}


def _manifest(run: Run, which: str, layout: dict[str, Any], directory: Path) -> dict[str, Any]:
    model = run.model
    sessions = {
        file: onnxruntime().InferenceSession(
            str(directory / file), providers=["CPUExecutionProvider"]
        )
        for file in (ENCODER_FILE, STEP_FILE)
    }
    return {
        "format": FORMAT,
        "version": VERSION,
        "opset": OPSET,
        "exported_by": {"attnmt": __version__, "torch": torch.__version__, "commit": _commit()},
        "run": {"directory": str(run.run_dir), "which": which, "family": run.config.model.arch},
        "special_ids": {"pad": PAD_ID, "unk": UNK_ID, "bos": BOS_ID, "eos": EOS_ID},
        "tgt_vocab_size": model.tgt_vocab_size,
        "src_vocab_size": run.src_tok.vocab_size,
        "has_attention": model.has_attention,
        "max_src_len": model.max_src_len,
        "tokenizer": {"directory": TOKENIZER_DIR, "kind": run.src_tok.kind},
        "encoder": {"file": ENCODER_FILE, **_io(sessions[ENCODER_FILE])},
        "decoder_step": {"file": STEP_FILE, **_io(sessions[STEP_FILE])},
        "memory": layout["memory"],
        "state": layout["state"],
        "dynamic_axes": layout["axes"],
        "config": run.config.model_dump(mode="json"),
    }


def _commit() -> str | None:
    """The commit of the attnmt source that exported (None outside a git checkout);
    "+dirty" marks uncommitted changes to tracked files."""
    source = Path(__file__).resolve().parents[2]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=10
        )
        if head.returncode == 0:
            dirty = subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=source,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            return head.stdout.strip() + ("+dirty" if dirty else "")
    return None


def _check_graphs(model: Seq2SeqModel, manifest: Manifest) -> None:
    """Refuse the export unless onnxruntime gives the model's log-probabilities and
    attention, within TOLERANCE, on a batch of another size and length than traced."""
    exported = OnnxModel(manifest)
    src, src_lengths = example_batch(CHECK_LENGTHS, model.tgt_vocab_size, seed=1)
    memory, onnx_memory = model.encode(src, src_lengths), exported.encode(src, src_lengths)
    state, onnx_state = model.init_state(memory), exported.init_state(onnx_memory)
    tokens = first_tokens(len(CHECK_LENGTHS))
    for step in range(CHECK_STEPS):
        log_probs, attention, state = model.step(tokens, memory, state)
        onnx_log_probs, onnx_attention, onnx_state = exported.step(tokens, onnx_memory, onnx_state)
        pairs: list[tuple[str, Tensor, Tensor | None]] = [
            ("log-probabilities", log_probs, onnx_log_probs)
        ]
        if attention is not None:
            pairs.append(("attention", attention, onnx_attention))
        for what, ours, theirs in pairs:
            if theirs is None or ours.shape != theirs.shape:
                raise UserError(
                    f"cannot export this model to ONNX: the graph's {what} at step {step} "
                    f"have another shape than the model's"
                )
            gap = (ours.float() - theirs.float()).abs().max().item()
            if not gap <= TOLERANCE:
                raise UserError(
                    f"cannot export this model to ONNX: the graph's {what} differ from the "
                    f"model's by {gap:.2g} at step {step} on a batch of another shape"
                )
        tokens = log_probs.argmax(-1)


def _replace(staging: Path, out_dir: Path) -> None:
    """Move the finished export to `out_dir`: rename over an empty directory, or swap
    with an earlier export (which is then deleted)."""
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
    os.replace(out_dir, old / "export")
    os.replace(staging, out_dir)
    shutil.rmtree(old, ignore_errors=True)
