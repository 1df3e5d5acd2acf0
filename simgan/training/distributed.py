"""Data-parallel training with `torch.distributed` (DDP), one process per device, started by `torchrun`.

The pieces the refiner trainer needs and nothing more (what NVlabs StyleGAN2-ADA's training loop does with
plain torch.distributed; no wrapper library):

    setup(device)          join the process group torchrun describes in the environment (WORLD_SIZE, RANK,
                           LOCAL_RANK, MASTER_ADDR/PORT): NCCL when the device is CUDA, gloo otherwise; returns the
                           rank's device (cuda:LOCAL_RANK on a GPU node). A world of one is left alone: no group.
    World                  rank and world size as the trainer sees them (`World.current()`).
    mean_across(tensor)    all-reduce a tensor to its mean over the ranks (metrics windows).
    any_across(flag)       True on every rank when one rank's flag is set (an interrupt at a step boundary).
    check_consistency(m)   every parameter and buffer of `m` equal to rank 0's (before a checkpoint is written).
    gather(tensor)         every rank's tensor (sizes may differ), in rank order, on every rank.
    rank_slice(count, w)   the rows of a global batch this rank computes.

References: PyTorch "Getting started with DistributedDataParallel" and "torchrun (Elastic Launch)";
StyleGAN2-ADA `torch_utils/misc.py: check_ddp_consistency`.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: rank in [0, size); rank 0 writes."""

    rank: int = 0
    size: int = 1

    @property
    def writer(self) -> bool:
        """Only rank 0 writes checkpoints, metrics and progress."""
        return self.rank == 0

    @classmethod
    def current(cls) -> World:
        """The initialised process group's rank and size; a single process when there is none."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()


def launched_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: str | torch.device, timeout_s: float = 600.0) -> str:
    """Join torchrun's process group when it describes more than one process; return this rank's device.

    device: the configured device ("cpu", "cuda", "cuda:N"). Under torchrun with CUDA each rank takes
    cuda:LOCAL_RANK (one process per GPU, the PyTorch DDP recipe) and the backend is NCCL; on the CPU it is gloo.
    A world of one (no torchrun, or `--nproc_per_node=1`) creates no group: the single-process path, unchanged.
    """
    device = torch.device(device)
    if launched_size() <= 1:
        return str(device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return str(device)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _collective_device() -> torch.device:
    """Where collectives' tensors must live: the current GPU under NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def mean_across(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` over the ranks (a float tensor on the tensor's device)."""
    buffer = tensor.detach().float().to(_collective_device()).clone()
    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
    return (buffer / dist.get_world_size()).to(tensor.device)


def any_across(flag: bool) -> bool:
    """True on every rank when `flag` is True on at least one."""
    buffer = torch.tensor([1 if flag else 0], dtype=torch.int32, device=_collective_device())
    dist.all_reduce(buffer, op=dist.ReduceOp.MAX)
    return bool(buffer.item())


def gather(tensor: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's `tensor` (same trailing shape and dtype, any first dimension), in rank order, on the CPU."""
    device = _collective_device()
    local = tensor.detach().to(device).contiguous()
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], dtype=torch.int64, device=device))
    longest = max(int(size.item()) for size in sizes)
    padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: local.shape[0]] = local
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return [part[: int(size.item())].cpu() for part, size in zip(parts, sizes)]


class InconsistentReplicas(RuntimeError):
    """Ranks hold different weights: data-parallel training has diverged (a bug, never rounding)."""


def check_consistency(module: torch.nn.Module, what: str) -> None:
    """Every parameter and buffer of `module` bit-equal to rank 0's, or InconsistentReplicas naming the first
    that differs (StyleGAN2-ADA checks the same before each snapshot)."""
    device = _collective_device()
    for name, value in [*module.named_parameters(), *module.named_buffers()]:
        ours = value.detach().to(device)
        theirs = ours.clone()
        dist.broadcast(theirs, src=0)
        if not any_across(not torch.equal(ours, theirs)):
            continue
        raise InconsistentReplicas(f"{what}.{name} differs between ranks: the data-parallel replicas diverged")


def rank_slice(count: int, world: World) -> slice:
    """The rows of a global batch of `count` that rank `world.rank` computes: count/W consecutive rows."""
    if count % world.size:
        raise ValueError(f"a global batch of {count} does not split into {world.size} equal per-rank batches")
    per_rank = count // world.size
    return slice(world.rank * per_rank, (world.rank + 1) * per_rank)
