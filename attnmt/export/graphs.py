"""The two graphs an ONNX export traces, written over the model interface alone:

    EncoderGraph:  src (B, S), src_lengths (B,) -> memory.*, state.*
                   (model.encode, then model.init_state)
    StepGraph:     tokens (B,), memory.*, state.* -> log_probs (B, V), attention (B, S),
                   next_state.*                                       (model.step)

A graph's inputs and outputs are tensors, so the family's memory and state objects
(dataclasses, tuples, :class:`attnmt.nn.scores.Keys`) are flattened into named tensors
in field order (:func:`flatten`) and rebuilt from them inside the step
(:func:`unflatten`). An int field (the state's step counter t) becomes an int64 scalar,
so the graph computes positions from it instead of keeping the value it was traced at.

Which axis of each tensor is the batch, the source length or the decoded length is
found by probing the model (:func:`probe_axes`): encode batches of two sizes and two
lengths, step once, and see which sizes move. No family is named here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from attnmt.models.interface import Seq2SeqModel
from attnmt.runtime.onnx import MEMORY, NEXT_STATE, STATE
from attnmt.special import BOS_ID, EOS_ID, PAD_ID

Named = list[tuple[str, Tensor]]
BATCH, SRC_LEN, STEPS = "batch", "src_len", "steps"  # the dynamic axes' names


def flatten(value: Any, prefix: str) -> Named:
    """The tensors of a memory or state object, named by their path of fields:
    ``state.hidden``, ``memory.keys.keys``, ``state.cache.0.values``; None is left out
    and an int becomes an int64 scalar."""
    if isinstance(value, Tensor):
        return [(prefix, value)]
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int):
        return [(prefix, torch.tensor(value, dtype=torch.long))]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    elif isinstance(value, tuple):
        names = getattr(value, "_fields", None) or [str(i) for i in range(len(value))]
        fields = list(zip(names, value, strict=True))
    else:
        raise TypeError(f"cannot export a {type(value).__name__} in the model's memory or state")
    return [item for name, field in fields for item in flatten(field, f"{prefix}.{name}")]


def unflatten(template: Any, tensors: Iterator[Tensor]) -> Any:
    """The object of `template`'s structure with its tensors (and ints) taken in order
    from `tensors`: the inverse of :func:`flatten`."""
    if isinstance(template, Tensor):
        return next(tensors)
    if isinstance(template, bool) or template is None:
        return template
    if isinstance(template, int):
        return next(tensors)
    if dataclasses.is_dataclass(template) and not isinstance(template, type):
        values = {
            f.name: unflatten(getattr(template, f.name), tensors)
            for f in dataclasses.fields(template)
        }
        return type(template)(**values)
    items = [unflatten(item, tensors) for item in template]
    return type(template)(*items) if hasattr(template, "_fields") else tuple(items)


class EncoderGraph(nn.Module):
    """model.encode and model.init_state as one graph: memory.* then state.*."""

    def __init__(self, model: Seq2SeqModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, ...]:
        memory = self.model.encode(src, src_lengths)
        state = self.model.init_state(memory)
        return tuple(t for _, t in flatten(memory, MEMORY[:-1]) + flatten(state, STATE[:-1]))


class StepGraph(nn.Module):
    """model.step over flat tensors: tokens, memory.*, state.* in; log_probs, attention
    (with attention), next_state.* out. The templates give the objects' structure."""

    def __init__(self, model: Seq2SeqModel, memory: Any, state: Any) -> None:
        super().__init__()
        self.model = model
        self.memory_template, self.state_template = memory, state
        self.memory_count = len(flatten(memory, ""))

    def forward(self, tokens: Tensor, *flat: Tensor) -> tuple[Tensor, ...]:
        memory = unflatten(self.memory_template, iter(flat[: self.memory_count]))
        state = unflatten(self.state_template, iter(flat[self.memory_count :]))
        log_probs, attention, state = self.model.step(tokens, memory, state)
        weights = () if attention is None else (attention,)
        return (log_probs, *weights, *(t for _, t in flatten(state, STATE[:-1])))


def example_batch(lengths: Sequence[int], vocab_size: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A padded batch of random real tokens (no special ids) of the given lengths."""
    generator = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths)), PAD_ID, dtype=torch.long)
    low = max(PAD_ID, BOS_ID, EOS_ID) + 1
    for row, length in enumerate(lengths):
        src[row, :length] = torch.randint(
            low, max(vocab_size, low + 1), (length,), generator=generator
        )
    return src, torch.tensor(list(lengths), dtype=torch.long)


def first_tokens(batch: int) -> Tensor:
    return torch.full((batch,), BOS_ID, dtype=torch.long)


def _moved(one: Named, other: Named) -> dict[str, list[int]]:
    """The axes of each named tensor whose size differs between two probes."""
    moved = {}
    for (name, a), (other_name, b) in zip(one, other, strict=True):
        if name != other_name or a.dim() != b.dim():
            raise TypeError(f"the model's {name} changes structure with the batch")
        moved[name] = [axis for axis in range(a.dim()) if a.size(axis) != b.size(axis)]
    return moved


def _encoded(model: Seq2SeqModel, lengths: Sequence[int]) -> Named:
    memory = model.encode(*example_batch(lengths, model.tgt_vocab_size))
    state = model.init_state(memory)
    return flatten(memory, MEMORY[:-1]) + flatten(state, STATE[:-1])


def probe_axes(model: Seq2SeqModel) -> dict[str, dict[int, str]]:
    """For every memory and state tensor, its dynamic axes: {axis: batch | src_len |
    steps}. The batch axis moves with the number of sentences, src_len with the source
    length, steps with the number of decoding steps taken (a key/value cache)."""
    base = _encoded(model, [4, 3])
    more = _moved(base, _encoded(model, [4, 3, 2]))
    longer = _moved(base, _encoded(model, [5, 3]))
    memory = model.encode(*example_batch([4, 3], model.tgt_vocab_size))
    state = model.init_state(memory)
    stepped = model.step(first_tokens(2), memory, state)[2]
    state_names = [name for name, _ in flatten(state, STATE[:-1])]
    grown = _moved(flatten(state, STATE[:-1]), flatten(stepped, STATE[:-1]))
    axes: dict[str, dict[int, str]] = {}
    for name, _ in base:
        found = {axis: BATCH for axis in more[name]}
        found |= {axis: SRC_LEN for axis in longer[name]}
        if name in state_names:
            found |= {axis: STEPS for axis in grown[name]}
        if list(found.values()).count(BATCH) > 1:
            raise TypeError(f"the model's {name} has more than one batch axis")
        axes[name] = found
    return axes


def step_output_names(state: Named, has_attention: bool) -> list[str]:
    """log_probs, attention (with attention), next_state.*."""
    renamed = [NEXT_STATE + name[len(STATE) :] for name, _ in state]
    return ["log_probs", *(["attention"] if has_attention else []), *renamed]
