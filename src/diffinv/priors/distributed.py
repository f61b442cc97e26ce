"""Process-group plumbing for multi-process training (``torchrun``, DistributedDataParallel).

``torchrun --nproc_per_node=N -m diffinv.cli train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` then joins the process
group (``nccl`` with one GPU per local rank when CUDA is available and the device is
CUDA, else ``gloo`` on the CPU).  Without those variables everything runs in one process
and the collective helpers are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["World", "setup", "all_reduce_sum", "barrier", "cleanup"]


@dataclass
class World:
    """This process's place: ``rank`` of ``world_size``, its ``device``, and whether it
    started the process group (and so must destroy it)."""

    rank: int
    world_size: int
    device: torch.device
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs and writes files."""
        return self.rank == 0


def setup(device: str | torch.device | None = None) -> World:
    """Join the ``torchrun`` process group if there is one; pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", local % max(torch.cuda.device_count(), 1))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank,
                                world_size=world_size)
        owns = True
    if dist.is_initialized():
        rank, world_size = dist.get_rank(), dist.get_world_size()
    return World(rank, world_size, dev, owns)


def all_reduce_sum(t: torch.Tensor, world: World) -> torch.Tensor:
    """Sum ``t`` over ranks (in place on a copy on the collective's device); CPU result."""
    if world.world_size == 1:
        return t
    buf = t.to(world.device)
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return buf.cpu()


def barrier(world: World) -> None:
    """Wait for every rank (no-op in one process)."""
    if world.world_size > 1:
        dist.barrier()


def cleanup(world: World) -> None:
    """Destroy the process group if :func:`setup` created it."""
    if world.owns_group and dist.is_initialized():
        dist.destroy_process_group()
