"""Data-parallel training under torchrun: one process per device, one model replica each.

torchrun starts N copies of ``python -m attnmt train CFG`` and tells each who it is
through the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT).
:func:`init_distributed` reads it and joins the process group: gloo on the CPU, NCCL on
CUDA, chosen from the device. Without torchrun (no WORLD_SIZE, or 1) nothing is set up
and every helper below is a no-op that returns its input, so the trainer has one code
path for one process and for many.

Each rank trains on its own shard of every epoch's batches
(:class:`attnmt.data.batching.BatchSampler` with `rank` and `world_size`); DDP
(:func:`wrap_ddp`) averages the gradients during ``backward()``. The helpers here are
what else the ranks must agree on: the token count that normalises the loss, rank 0's
clock and its validation results, and when to stop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

# How long a rank waits at a collective before giving up. Rank 0 may spend this long
# alone: learning the tokenizers and tokenising a large corpus while the others wait.
TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class World:
    """Where this process stands among the training processes."""

    rank: int = 0  # 0 .. size - 1; rank 0 validates and writes every file
    size: int = 1  # number of processes (world size)
    local_rank: int = 0  # rank on this machine: which GPU to use

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """RANK, WORLD_SIZE and LOCAL_RANK as torchrun sets them (a single process otherwise)."""
    return World(
        rank=int(os.environ.get("RANK", "0")),
        size=int(os.environ.get("WORLD_SIZE", "1")),
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )


def device_for(world: World, device: torch.device) -> torch.device:
    """Under torchrun each rank of a machine takes its own GPU: cuda:LOCAL_RANK."""
    if device.type == "cuda" and world.distributed:
        return torch.device("cuda", world.local_rank)
    return device


def init_distributed(device: torch.device) -> World:
    """Join the process group torchrun describes; the backend follows the device.

    NCCL runs collectives on the GPU and needs every rank on its own CUDA device; gloo
    runs them on the CPU. Calling this again in an initialised process only returns
    the world.
    """
    world = world_from_env()
    if not world.distributed or dist.is_initialized():
        return world
    if device.type == "cuda":
        torch.cuda.set_device(world.local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, timeout=TIMEOUT)
    return world


def shutdown() -> None:
    """Leave the process group (at the end of a run), if one was joined."""
    if dist.is_initialized():
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_initialized() and dist.get_world_size() > 1


def _device() -> torch.device:
    """Where collective tensors must live: the GPU for NCCL, the CPU for gloo."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    """Wait until every rank gets here."""
    if _active():
        dist.barrier()


def all_reduce_sum(values: list[float]) -> list[float]:
    """Elementwise sums of `values` over all ranks (float64, so token counts stay exact)."""
    if not _active():
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=_device())
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def broadcast_value(value: float) -> float:
    """Rank 0's `value`, on every rank."""
    if not _active():
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=_device())
    dist.broadcast(tensor, src=0)
    return float(tensor.item())


def broadcast_object(value: Any) -> Any:
    """Rank 0's picklable `value`, on every rank (the others may pass anything)."""
    if not _active():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order, on every rank (`[value]` in one process)."""
    if not _active():
        return [value]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `module` when there are several ranks.

    DDP copies rank 0's parameters to every rank at construction and averages the
    gradients over the ranks during ``backward()``. ``static_graph``: a model uses the
    same parameters at every step (whatever the batch's shape), which DDP then learns in
    the first step; so a variant that leaves some parameters out (a bridge, a score's
    weights) works without searching the autograd graph for them at every step.
    """
    if not _active():
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, static_graph=True)


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """A seed for rank `rank`'s dropout, distinct per rank and per resumed step."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


def restore_rng(rng: dict[str, Any], world: World, seed: int, step: int) -> None:
    """Continue the random streams a checkpoint saved.

    `rng` holds rank 0's state ("torch", "cuda") and, from a run of several processes,
    every rank's ("ranks"). The same number of processes continues each rank's stream;
    one process continues rank 0's; another number starts fresh streams for ranks above
    0, still reproducible from the seed and the step.
    """
    ranks = rng.get("ranks") or []
    if world.distributed and len(ranks) == world.size:
        mine = ranks[world.rank]
        torch.set_rng_state(mine["torch"].cpu())
        if torch.cuda.is_available() and "cuda" in mine:
            torch.cuda.set_rng_state(mine["cuda"].cpu())
    elif world.is_main:
        torch.set_rng_state(rng["torch"].cpu())
        if torch.cuda.is_available() and rng.get("cuda"):
            torch.cuda.set_rng_state_all([state.cpu() for state in rng["cuda"]])
    else:
        torch.manual_seed(rank_seed(seed, world.rank, step))
