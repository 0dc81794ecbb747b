"""Training across processes: ``torchrun`` and PyTorch's DistributedDataParallel.

Under ``torchrun --nproc_per_node=N`` (or a multi-node rendezvous), ``WORLD_SIZE`` and
``RANK`` are set in every process; :func:`join` then starts the process group (gloo on the
CPU, NCCL on CUDA, one GPU per local rank). :func:`snfseq.training.fit_loop` shards every
global batch across the ranks, averages gradients through DDP, reduces the training and
validation losses, and lets only rank 0 write checkpoints and show progress. Nothing here is
needed in a single process: there :func:`join` returns rank 0 of 1 and the helpers are
identities.

Example:
    >>> ranks = join(torch.device("cpu"))  # no torchrun here: one process
    >>> ranks.rank, ranks.world, ranks.main
    (0, 1, True)
    >>> summed([1.5, 2.0], ranks)
    [1.5, 2.0]
"""

from __future__ import annotations

__all__ = ["Ranks", "device_for", "gathered", "join", "leave", "summed"]

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """Where this process stands: its ``rank`` among ``world`` processes.

    ``started_here`` says whether :func:`join` started the process group (and
    :func:`leave` should end it).
    """

    rank: int = 0
    world: int = 1
    started_here: bool = False

    @property
    def main(self) -> bool:
        """Rank 0: the process that writes checkpoints and logs."""
        return self.rank == 0


def _world_from_environment() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def device_for(device: str | torch.device) -> torch.device:
    """The device of this process: under torchrun, a bare ``"cuda"`` becomes
    ``cuda:LOCAL_RANK`` (one GPU per process)."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None and _world_from_environment() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def join(device: torch.device) -> Ranks:
    """Joins the process group when launched by torchrun (``WORLD_SIZE > 1``), or reports
    the one already started; a single process is rank 0 of 1."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size(), False)
    if _world_from_environment() <= 1:
        return Ranks()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Ranks(dist.get_rank(), dist.get_world_size(), True)


def leave(ranks: Ranks) -> None:
    """Ends the process group if :func:`join` started it."""
    if ranks.started_here and dist.is_initialized():
        dist.destroy_process_group()


def summed(values: list[float], ranks: Ranks, device: torch.device | None = None) -> list[float]:
    """The sums of ``values`` over all ranks (in float64; one collective call)."""
    if ranks.world == 1:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def gathered(value: Any, ranks: Ranks) -> list[Any]:
    """Every rank's ``value`` (any picklable object), in rank order."""
    if ranks.world == 1:
        return [value]
    values: list[Any] = [None] * ranks.world
    dist.all_gather_object(values, value)
    return values
