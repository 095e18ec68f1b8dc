"""An ONNX export (``attnmt export RUN --onnx DIR``) run on onnxruntime, behind the model
interface of :mod:`attnmt.models.interface`, so that greedy, beam and sampling search,
the Translator, evaluation, the chatbot and the server decode it unchanged.

An export directory holds

    encoder.onnx       src (B, S), src_lengths (B,) -> memory.* and state.*
    decoder_step.onnx  tokens (B,), memory.*, state.* -> log_probs (B, V),
                       attention (B, S) (models with attention), next_state.*
    tokenizer/         the run's tokenizers, as ``attnmt train`` wrote them
    manifest.json      "format": "attnmt-onnx", the special ids, every input and output
                       with its shape, the batch axis of each memory and state tensor,
                       the opset, the run's config and the source commit

The memory and state tensors are the model's own :class:`EncoderMemory` and
:class:`DecoderState` fields, flattened in order (an RNN's ``state.hidden`` (L, B, H),
a Transformer's ``state.cache.0.keys`` (B, heads, t, d), ``state.step`` a scalar, ...).
The encoder also returns the initial state, so that ``init_state`` runs no graph.
``index_select`` selects every tensor along the batch axis the manifest names, as the
model's own memory and state do to follow beams.

    model = OnnxModel(Manifest.read(Path("exports/transformer")))
    memory = model.encode(src, src_lengths)
    log_probs, attention, state = model.step(tokens, memory, model.init_state(memory))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from attnmt.errors import UserError

FORMAT = "attnmt-onnx"
VERSION = 1  # the manifest layout this module reads and the exporter writes
MANIFEST = "manifest.json"
ENCODER_FILE = "encoder.onnx"
STEP_FILE = "decoder_step.onnx"
TOKENIZER_DIR = "tokenizer"
MEMORY = "memory."  # name prefixes of the flattened memory, state, and the step's new state
STATE = "state."
NEXT_STATE = "next_state."
INSTALL_HINT = "pip install 'attnmt[onnx]'"


def is_onnx_export(path: str | Path) -> bool:
    """Whether `path` is a directory with an attnmt ONNX manifest."""
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        return False
    try:
        return bool(json.loads(manifest.read_text(encoding="utf-8")).get("format") == FORMAT)
    except (ValueError, AttributeError, OSError):
        return False


@dataclass(frozen=True)
class TensorSpec:
    """One memory or state tensor: its name, and the axis that is the batch (None: the
    same for every sentence, as the step counter)."""

    name: str
    batch_axis: int | None


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` says about an export, checked once on reading."""

    directory: Path
    special_ids: dict[str, int]  # pad, unk, bos, eos
    tgt_vocab_size: int
    has_attention: bool
    max_src_len: int | None
    memory: tuple[TensorSpec, ...]  # the encoder's outputs memory.* and state.*, in order
    state: tuple[TensorSpec, ...]  # state.*: what the step takes and returns as next_state.*
    config: dict[str, Any]  # the run's resolved config
    raw: dict[str, Any]  # the whole manifest

    @classmethod
    def read(cls, directory: str | Path) -> Manifest:
        directory = Path(directory)
        path = directory / MANIFEST
        if not path.is_file():
            raise UserError(f"{directory} is not an ONNX export: {MANIFEST} is missing")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise UserError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise UserError(f"{path}: not an attnmt ONNX manifest (format is not {FORMAT!r})")
        if raw.get("version") != VERSION:
            raise UserError(
                f"{path}: manifest version {raw.get('version')} is not {VERSION}, the one "
                "this attnmt reads; export the run again with this version"
            )
        for name in (raw["encoder"]["file"], raw["decoder_step"]["file"]):
            if not (directory / name).is_file():
                raise UserError(f"{directory}: {name} is missing")
        try:
            return cls(
                directory=directory,
                special_ids={key: int(value) for key, value in raw["special_ids"].items()},
                tgt_vocab_size=int(raw["tgt_vocab_size"]),
                has_attention=bool(raw["has_attention"]),
                max_src_len=raw["max_src_len"],
                memory=_specs(raw["memory"]),
                state=_specs(raw["state"]),
                config=raw["config"],
                raw=raw,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{path}: corrupt manifest ({err!r})") from None

    def file(self, graph: str) -> Path:
        """The path of ``encoder`` or ``decoder_step``."""
        return self.directory / str(self.raw[graph]["file"])


def _specs(entries: list[dict[str, Any]]) -> tuple[TensorSpec, ...]:
    return tuple(TensorSpec(str(entry["name"]), entry["batch_axis"]) for entry in entries)


def _select(
    tensors: dict[str, Tensor], axes: dict[str, int | None], index: Tensor
) -> dict[str, Tensor]:
    """Every tensor's rows `index` along its batch axis (one without a batch axis as is)."""
    selected = {}
    for name, tensor in tensors.items():
        axis = axes[name]
        selected[name] = tensor if axis is None else tensor.index_select(axis, index)
    return selected


@dataclass(frozen=True)
class OnnxMemory:
    """The encoder's outputs: the memory the step reads, and the initial state."""

    tensors: dict[str, Tensor]
    axes: dict[str, int | None]

    @property
    def src_mask(self) -> Tensor:
        return self.tensors[MEMORY + "src_mask"]  # (B, S) bool

    def index_select(self, index: Tensor) -> OnnxMemory:
        return OnnxMemory(_select(self.tensors, self.axes, index), self.axes)


@dataclass(frozen=True)
class OnnxState:
    """The decoder state between steps: the state.* tensors."""

    tensors: dict[str, Tensor]
    axes: dict[str, int | None]

    def index_select(self, index: Tensor) -> OnnxState:
        return OnnxState(_select(self.tensors, self.axes, index), self.axes)


def onnxruntime() -> Any:
    """The onnxruntime module, or a one-line UserError saying what to install."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError(f"ONNX exports need onnxruntime: {INSTALL_HINT}") from None
    return onnxruntime


class OnnxModel:
    """An export's two onnxruntime sessions behind :class:`Seq2SeqModel`.

    It runs on the CPU in float32, with as many threads as torch uses
    (``torch.get_num_threads()``). Teacher forcing (``forward``) steps through the target
    with the step graph, so the log-probabilities it returns as logits are those search
    sees; ``attention_maps`` is empty: the export keeps the default map (the mean over
    heads of the last layer's cross-attention), not every head.
    """

    training = False

    def __init__(self, manifest: Manifest) -> None:
        ort = onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.manifest = manifest
        self.encoder = ort.InferenceSession(
            str(manifest.file("encoder")), options, providers=providers
        )
        self.decoder_step = ort.InferenceSession(
            str(manifest.file("decoder_step")), options, providers=providers
        )
        self._step_inputs = [node.name for node in self.decoder_step.get_inputs()]
        self._step_outputs = [node.name for node in self.decoder_step.get_outputs()]
        self._axes = {spec.name: spec.batch_axis for spec in manifest.memory}
        ids = manifest.special_ids
        self.pad_id, self.bos_id, self.eos_id = ids["pad"], ids["bos"], ids["eos"]

    @property
    def tgt_vocab_size(self) -> int:
        return self.manifest.tgt_vocab_size

    @property
    def has_attention(self) -> bool:
        return self.manifest.has_attention

    @property
    def max_src_len(self) -> int | None:
        return self.manifest.max_src_len

    def train(self, mode: bool = True) -> OnnxModel:
        if mode:
            raise UserError("an ONNX export cannot be trained; train the PyTorch run")
        return self

    def eval(self) -> OnnxModel:
        return self

    def encode(self, src: Tensor, src_lengths: Tensor) -> OnnxMemory:
        """Run encoder.onnx on src (B, S) and src_lengths (B,)."""
        feeds = {"src": _array(src.long()), "src_lengths": _array(src_lengths.long())}
        # only what the step reads, the first state and the mask: beams select fewer rows
        names = [
            spec.name
            for spec in self.manifest.memory
            if spec.name in self._step_inputs
            or spec.name.startswith(STATE)
            or spec.name == MEMORY + "src_mask"
        ]
        outputs = self.encoder.run(names, feeds)
        tensors = {
            name: torch.from_numpy(value) for name, value in zip(names, outputs, strict=True)
        }
        return OnnxMemory(tensors, self._axes)

    def init_state(self, enc: OnnxMemory) -> OnnxState:
        names = [spec.name for spec in self.manifest.state]
        return OnnxState({name: enc.tensors[name] for name in names}, self._axes)

    def step(
        self, tokens: Tensor, enc: OnnxMemory, state: OnnxState, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None, OnnxState]:
        """Run decoder_step.onnx: tokens (B,) -> log_probs (B, V), attention (B, S) or
        None, the next state."""
        given = {"tokens": tokens.long(), **enc.tensors, **state.tensors}
        feeds = {name: _array(given[name]) for name in self._step_inputs}
        outputs = dict(zip(self._step_outputs, self.decoder_step.run(None, feeds), strict=True))
        log_probs = torch.from_numpy(outputs["log_probs"])
        attention = None
        if need_weights and "attention" in outputs:
            attention = torch.from_numpy(outputs["attention"])
        next_state = {
            STATE + name[len(NEXT_STATE) :]: torch.from_numpy(value)
            for name, value in outputs.items()
            if name.startswith(NEXT_STATE)
        }
        return log_probs, attention, OnnxState(next_state, state.axes)

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, need_weights: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing, one step per target position: log-probabilities (B, T, V)
        (normalised logits) and the default attention map (B, T, S)."""
        memory = self.encode(src, src_lengths)
        state = self.init_state(memory)
        log_probs, weights = [], []
        for t in range(tgt_in.size(1)):
            step_log_probs, attention, state = self.step(tgt_in[:, t], memory, state, need_weights)
            log_probs.append(step_log_probs)
            if attention is not None:
                weights.append(attention)
        stacked = torch.stack(weights, dim=1) if weights else None  # (B, T, S)
        return torch.stack(log_probs, dim=1), stacked

    __call__ = forward

    def attention_maps(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> dict[str, Tensor]:
        """Empty: an export keeps the default map only (see the class docstring)."""
        return {}


def _array(tensor: Tensor) -> np.ndarray:
    return tensor.detach().cpu().contiguous().numpy()
