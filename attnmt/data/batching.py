"""Batches: :class:`BatchSampler` groups sentences of similar length into batches that fit
a token budget, and :func:`make_batch` pads them into a :class:`Batch` of tensors
(batch-first)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from attnmt.data.corpus import TokenizedCorpus
from attnmt.errors import UserError
from attnmt.special import BOS_ID, EOS_ID, PAD_ID


@dataclass
class Batch:
    """A padded batch of sentence pairs; every tensor is batch-first and PAD_ID padded."""

    src: Tensor  # (B, S) source ids
    src_lengths: Tensor  # (B,) real source lengths
    tgt_in: Tensor  # (B, T) decoder input: BOS y_1 ... y_n
    tgt_out: Tensor  # (B, T) decoder target: y_1 ... y_n EOS
    indices: Tensor  # (B,) positions in the corpus, to restore the original order

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on `device` (indices stay where they are, for bookkeeping)."""
        return Batch(
            src=self.src.to(device, non_blocking=True),
            src_lengths=self.src_lengths.to(device, non_blocking=True),
            tgt_in=self.tgt_in.to(device, non_blocking=True),
            tgt_out=self.tgt_out.to(device, non_blocking=True),
            indices=self.indices,
        )

    @property
    def n_tgt_tokens(self) -> int:
        """Real target tokens to predict (y and EOS, no padding): the loss normaliser."""
        return int((self.tgt_out != PAD_ID).sum())


def make_batch(corpus: TokenizedCorpus, indices: Sequence[int]) -> Batch:
    """Pad the pairs at `indices` into a :class:`Batch`.

    S is the longest source (at least 1, so an empty source is one padding column) and T
    the longest target plus one, for BOS at the front of tgt_in and EOS at the end of
    tgt_out.
    """
    index = np.asarray(indices, dtype=np.int64)  # (B,)
    src_lengths = corpus.src_lengths[index]  # (B,)
    tgt_lengths = corpus.tgt_lengths[index]  # (B,)
    batch = len(index)
    src = np.full((batch, max(1, int(src_lengths.max(initial=0)))), PAD_ID, np.int64)  # (B, S)
    width = int(tgt_lengths.max(initial=0)) + 1
    tgt_in = np.full((batch, width), PAD_ID, np.int64)  # (B, T)
    tgt_out = np.full((batch, width), PAD_ID, np.int64)  # (B, T)
    for row, i in enumerate(index):
        src_ids, tgt_ids = corpus.src(i), corpus.tgt(i)
        src[row, : len(src_ids)] = src_ids
        tgt_in[row, 0] = BOS_ID
        tgt_in[row, 1 : len(tgt_ids) + 1] = tgt_ids
        tgt_out[row, : len(tgt_ids)] = tgt_ids
        tgt_out[row, len(tgt_ids)] = EOS_ID
    return Batch(
        src=torch.from_numpy(src),
        src_lengths=torch.from_numpy(src_lengths.astype(np.int64)),
        tgt_in=torch.from_numpy(tgt_in),
        tgt_out=torch.from_numpy(tgt_out),
        indices=torch.from_numpy(index),
    )


class BatchSampler:
    """Token-budget batches of similar-length sentences, in a resumable order.

    The padded cost of a batch is ``B * max(S, T + 1)``: its size times the longest source
    or decoder sequence in it (``T + 1`` counts BOS/EOS). Each batch costs at most
    `batch_tokens`, except that a single sentence longer than the budget forms a batch of
    its own.

    Every epoch the sentences are sorted by length, so a batch holds sentences of about
    one length and padding is small. With `shuffle`, sentences of equal length are
    ordered randomly before the sort and the batches are then visited in random order,
    both drawn from ``(seed, epoch)``; without it the order is fixed, shortest first.
    Batch boundaries depend only on the sorted lengths, so every epoch has the same
    number of batches.

    Data-parallel training (`world_size` processes) shares each epoch out: every rank
    draws the same epoch order from ``(seed, epoch)`` and takes every `world_size`-th
    batch starting at its `rank`, so the ranks' shards are disjoint and together cover
    every sentence exactly once. The number of batches is made a multiple of
    `world_size` (by halving the batches with the most sentences), so every rank takes
    the same number of steps per epoch and no rank waits for another at the epoch's end.

    The sampler remembers where it is: ``state_dict()`` after a batch is taken, loaded
    into a new sampler, continues with exactly the next batch.
    """

    def __init__(
        self,
        src_lengths: np.ndarray,
        tgt_lengths: np.ndarray,
        batch_tokens: int,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size} processes")
        src_lengths, tgt_lengths = np.asarray(src_lengths), np.asarray(tgt_lengths)
        if src_lengths.shape != tgt_lengths.shape:
            raise ValueError("src_lengths and tgt_lengths differ in shape")
        # Padded width each sentence needs; at least 1 because make_batch pads S to >= 1.
        self.widths = np.maximum(np.maximum(src_lengths, 1), tgt_lengths + 1).astype(np.int64)
        self.batch_tokens = batch_tokens
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.position = 0  # batches of the current epoch this rank already handed out
        bounds = _pack(np.sort(self.widths, kind="stable"), batch_tokens)
        self._bounds = _split_to_multiple(bounds, world_size)

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        return (len(self._bounds) - 1) // self.world_size

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        """All ranks' batches of `epoch`, in the order they are visited."""
        bounds = zip(self._bounds[:-1], self._bounds[1:], strict=True)
        if not self.shuffle:
            order = np.argsort(self.widths, kind="stable")
            return [order[a:b] for a, b in bounds]
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.widths))  # random order among equal widths ...
        order = order[np.argsort(self.widths[order], kind="stable")]  # ... kept by the sort
        batches = [order[a:b] for a, b in bounds]
        return [batches[k] for k in rng.permutation(len(batches))]

    def shard(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches of `epoch`: every world_size-th, starting at rank."""
        return self._epoch_batches(epoch)[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        """The rest of the current epoch; when it is exhausted, `epoch` advances."""
        batches = self.shard(self.epoch)
        while self.position < len(batches):
            batch = batches[self.position]
            self.position += 1  # count it before yielding: a state saved now resumes after it
            yield batch.tolist()
        self.epoch += 1
        self.position = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue from `state`. A state saved with another number of processes resumes
        at the same fraction of the epoch (batch boundaries may differ slightly)."""
        epoch, position = int(state["epoch"]), int(state["position"])
        saved_world = int(state.get("world_size", 1))
        batches = position * saved_world  # batches of the epoch taken by all ranks together
        # Its epoch had about as many batches as ours (exactly as many for the same world).
        if not 0 <= batches < len(self._bounds) - 1 + saved_world:
            raise UserError(
                f"batch sampler state is at batch {position}, but an epoch has {len(self)} "
                "batches; the training data or data.* settings changed since the checkpoint"
            )
        self.epoch, self.position = epoch, min(batches // self.world_size, len(self))


def _pack(sorted_widths: np.ndarray, batch_tokens: int) -> list[int]:
    """Boundaries [0, b_1, ..., n] of greedy batches over ascending widths.

    A batch starting at i and ending at j (inclusive) costs ``(j - i + 1) * width[j]``,
    which grows with j, so the largest j within budget is found by bisection.
    """
    widths = sorted_widths.tolist()
    bounds = [0]
    while bounds[-1] < len(widths):
        bounds.append(_batch_end(widths, bounds[-1], batch_tokens))
    return bounds


def _batch_end(widths: list[int], start: int, batch_tokens: int) -> int:
    """One past the last sentence of the batch that starts at `start`."""
    size = bisect_right(
        range(start, len(widths)), batch_tokens, key=lambda j: (j - start + 1) * widths[j]
    )
    return start + max(size, 1)  # an over-long sentence still gets a batch of its own


def _split_to_multiple(bounds: list[int], world_size: int) -> list[int]:
    """Halve the batches with the most sentences until the number of batches divides by
    `world_size` (a half costs at most what the whole did, so the budget still holds)."""
    bounds = list(bounds)
    while (len(bounds) - 1) % world_size:
        sizes = np.diff(bounds)
        largest = int(np.argmax(sizes))
        if sizes[largest] < 2:
            raise UserError(
                f"cannot share {len(bounds) - 1} one-sentence batches evenly among "
                f"{world_size} processes; raise train.batch_tokens or use fewer processes"
            )
        bounds.insert(largest + 1, bounds[largest] + int(sizes[largest]) // 2)
    return bounds
