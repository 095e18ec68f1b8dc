"""int8 models: dynamic quantisation of a trained model, for decoding on the CPU.

Dynamic quantisation (Jacob et al. 2018; PyTorch's ``quantize_dynamic``) stores a
layer's weight W as 8-bit integers with one scale s and zero point z per tensor,

    W ≈ s · (W_q - z),   W_q ∈ [-128, 127],

and at run time quantises each input x on the fly from its own range, multiplies in
int8 with int32 accumulation (fbgemm on x86) and returns fp32. Nothing is calibrated
ahead: any trained run can be quantised. What becomes int8 here:

- every ``nn.Linear``: attention projections and scores, the RNN decoders' readouts
  (W_o, W_c), the bridge, the Transformer's attention and feed-forward layers, and the
  output layer W_out (the largest matrix of an RNN model);
- the recurrent layers, GRU and LSTM (``DynamicQuantizedGRU``/``LSTM``): their
  input-to-hidden and hidden-to-hidden matrices are int8 and each step's matmuls run
  in int8, which measured several times faster than fp32 per decoder step on this
  machine's x86 CPU;
- the token embeddings, source and target (``QuantizedEmbedding``, 8 bits per entry
  with a float scale and offset per row; a lookup dequantises the rows it reads).

What stays fp32, and why:

- the plain ``rnn`` (tanh) recurrent layer: PyTorch has no dynamically quantised tanh
  RNN;
- layers whose weight is read as a tensor rather than called: the concat score's v_a
  (a vector of A numbers that :mod:`attnmt.nn.additive` multiplies in one fused
  function) and learned position vectors (rows sliced by position); both are small;
- layer norms, biases, and every activation, state, attention weight and softmax:
  dynamic quantisation stores weights in int8 only, so attention maps are computed
  and returned in fp32 exactly as before;
- with ``tie_embeddings`` the output layer and the target embedding become two int8
  copies of the one fp32 matrix (a quantised output layer cannot lend its weights to a
  lookup).

The route is ``torch.ao.quantization.quantize_dynamic``, which torch marks deprecated in
favour of torchao; torchao's CPU int8 (``Int8DynamicActivationInt8WeightConfig``)
measured far slower than fbgemm's kernels on this CPU and quantises no RNN, so attnmt
keeps the fbgemm modules, which torch 2.13 still ships (see docs/deploying.md). torch
also warns that its quantised dtypes will go in a future release; attnmt pins torch, and
silences these two warnings where it quantises and loads.

int8 weights are CPU-only: an int8 model decodes on the CPU, in fp32 activations.

A quantised GRU/LSTM keeps its weights in packed script objects that
``torch.load(weights_only=True)`` refuses, so :func:`int8_state_dict` stores each
recurrent layer's quantised weights and biases as plain (quantised) tensors and
:func:`load_int8_state_dict` packs them again.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from typing import Any, TypeVar, cast

import torch
from torch import Tensor, nn
from torch.ao.nn.quantized import Embedding as QuantizedEmbedding
from torch.ao.nn.quantized.dynamic.modules.rnn import RNNBase as QuantizedRNN
from torch.ao.quantization import (
    QConfig,
    default_dynamic_qconfig,
    float_qparams_weight_only_qconfig,
    quantize_dynamic,
)

from attnmt.nn.positions import LearnedPositions
from attnmt.nn.scores import ConcatScore

QUANTIZATION = "int8-dynamic"
"""What a checkpoint header records for a model quantised by :func:`quantize_int8`."""

READ_AS_TENSORS: dict[type[nn.Module], tuple[str, ...]] = {
    ConcatScore: ("v_a",),  # v_aᵀ tanh(...) reads v_a.weight as a vector
    LearnedPositions: ("table",),  # PE(pos) slices the table's rows
}
"""Children whose weight their parent reads as a tensor: they stay fp32."""

RNN_WEIGHT_KEY = "_int8_rnn."
"""The state-dict key infix under which a quantised RNN's weights and biases are kept."""


Model = TypeVar("Model")


def quantize_int8(model: Model) -> Model:
    """`model` (an fp32 ``nn.Module``) with int8 weights as the module docstring
    describes, on the CPU: changed in place and returned, in eval mode."""
    module = cast(nn.Module, model)
    module.to("cpu").train(False)
    spec = quantization_spec(module)
    with warnings.catch_warnings():  # torch.ao.quantization's deprecation (docstring)
        warnings.simplefilter("ignore")
        _plain_recurrent_layers(module, spec)
        quantize_dynamic(module, spec, inplace=True)
    for name, layer in list(module.named_modules()):
        if isinstance(layer, QuantizedEmbedding):
            parent, _, child = name.rpartition(".")
            setattr(module.get_submodule(parent), child, ContiguousLookup(layer))
    return model


class ContiguousLookup(nn.Module):
    """A quantised embedding that takes indices of any layout: its lookup reads only
    contiguous indices, and a decoder step's tokens may be a column of the search's
    paths. (B, ...) ids -> (B, ..., E) fp32 vectors."""

    def __init__(self, embedding: QuantizedEmbedding) -> None:
        super().__init__()
        self.embedding = embedding

    def forward(self, indices: Tensor) -> Tensor:
        result: Tensor = self.embedding(indices.contiguous())
        return result


def quantization_spec(model: nn.Module) -> dict[str, QConfig]:
    """The name of every submodule to quantise, with how: linear and recurrent layers
    int8 per tensor, embeddings int8 per row."""
    kept = {
        f"{name}.{child}" if name else child
        for name, module in model.named_modules()
        for kind, children in READ_AS_TENSORS.items()
        if isinstance(module, kind)
        for child in children
    }
    spec: dict[str, QConfig] = {}
    for name, module in model.named_modules():
        if name in kept:
            continue
        if isinstance(module, nn.Linear | nn.GRU | nn.LSTM):
            spec[name] = default_dynamic_qconfig
        elif isinstance(module, nn.Embedding):
            spec[name] = float_qparams_weight_only_qconfig
    return spec


def _plain_recurrent_layers(model: nn.Module, spec: dict[str, QConfig]) -> None:
    """Swap each GRU/LSTM subclass (attnmt's standard-strides layers, nn/rnn.py) for the
    torch class with the same weights: the quantised modules are built only from
    exactly ``nn.GRU``/``nn.LSTM``. The strides fix matters under bf16 autocast, which
    an int8 model does not use."""
    for name in [n for n, m in model.named_modules() if n in spec]:
        module = model.get_submodule(name)
        base = nn.GRU if isinstance(module, nn.GRU) else nn.LSTM
        if not isinstance(module, nn.GRU | nn.LSTM) or type(module) is base:
            continue
        plain = base(
            module.input_size,
            module.hidden_size,
            num_layers=module.num_layers,
            bias=module.bias,
            batch_first=module.batch_first,
            dropout=module.dropout,
            bidirectional=module.bidirectional,
        )
        plain.load_state_dict(module.state_dict())
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, plain)


def int8_state_dict(model: nn.Module) -> dict[str, Any]:
    """The state of a :func:`quantize_int8` model as tensors (and dtypes) only, readable
    with ``torch.load(weights_only=True)``: each quantised GRU/LSTM's packed weights are
    replaced by its quantised weights and fp32 biases under ``RNN_WEIGHT_KEY``."""
    recurrent = _recurrent(model)
    with warnings.catch_warnings():  # torch's deprecation of quantised dtypes (docstring)
        warnings.simplefilter("ignore")
        state = {k: _owned(v) for k, v in model.state_dict().items() if not _packed(k, recurrent)}
    for name, module in recurrent.items():
        parts = module._weight_bias()  # {"weight": {...}, "bias": {...}}
        for kind in ("weight", "bias"):
            for key, value in parts[kind].items():
                state[f"{name}.{RNN_WEIGHT_KEY}{key}"] = value
    return state


def _owned(value: Any) -> Any:
    """A quantised embedding's weight in memory of its own: the tensor its state dict
    gives shares memory with the module's packed rows and is garbage once the module
    is freed. Requantising its values with its own per-row scales and offsets copies it
    exactly; any other value is returned as it is."""
    if not isinstance(value, Tensor) or not value.is_quantized:
        return value
    if value.qscheme() != torch.per_channel_affine_float_qparams:
        return value
    return torch.quantize_per_channel(
        value.dequantize(),
        value.q_per_channel_scales().clone(),
        value.q_per_channel_zero_points().clone(),
        value.q_per_channel_axis(),
        value.dtype,
    )


def load_int8_state_dict(model: nn.Module, state: dict[str, Any]) -> None:
    """Load what :func:`int8_state_dict` gave into a freshly quantised model of the same
    config (strict: a missing or unexpected key raises)."""
    rest = dict(state)
    recurrent = _recurrent(model)
    for name, module in recurrent.items():
        prefix = f"{name}.{RNN_WEIGHT_KEY}"
        own = {key[len(prefix) :]: rest.pop(key) for key in list(rest) if key.startswith(prefix)}
        module.set_weight_bias(own)  # packs them again
    own_state = model.state_dict()
    merged = OrderedDict(rest)
    merged.update((k, v) for k, v in own_state.items() if _packed(k, recurrent))
    # the modules' state versions (a file's dict has lost them): quantised layers read
    # an unversioned state as the old layout
    merged._metadata = own_state._metadata  # type: ignore[attr-defined]
    model.load_state_dict(merged)


def _recurrent(model: nn.Module) -> dict[str, QuantizedRNN]:
    """The quantised GRU/LSTM layers of a model, by name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, QuantizedRNN)}


def _packed(key: str, recurrent: dict[str, QuantizedRNN]) -> bool:
    """Whether a state-dict key is a quantised RNN's packed weights (a script object)."""
    return any(key.startswith(f"{name}._all_weight_values.") for name in recurrent)
