"""Everything distributed, in one place: init from torchrun's environment, rank helpers, the split
of a global batch, gradient averaging and metric reductions.

Data parallelism is done by averaging gradients with ``all_reduce`` after each backward, not with
the ``DistributedDataParallel`` wrapper: a GAN step runs D twice (real, then detached fake, as
separate BatchNorm batches, like the seeds) before one backward, which the DDP wrapper's reducer
does not allow without changing the BatchNorm semantics. The result is the same synchronous data
parallelism: every rank holds identical weights and applies the same averaged gradient.

BatchNorm: by default each rank normalises with the statistics of its own part of the batch (as
DDP does); ``train.sync_bn=true`` converts the BatchNorm layers to ``SyncBatchNorm`` so the
statistics are those of the global batch (exactly a single-process step, at some communication
cost). Everything else in ganforge is written as if single-process; with one process every helper
here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .errors import GanforgeError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_INFO = DistInfo()


def init_from_env(device_name: str = "auto") -> tuple[DistInfo, torch.device | None]:
    """Join the process group that torchrun describes (``WORLD_SIZE`` > 1), once.

    Returns the rank info and, under torchrun with CUDA, the device of this rank's local GPU.
    """
    global _INFO
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _INFO, None
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda and local >= torch.cuda.device_count():
        raise GanforgeError(
            f"torchrun started local rank {local}, but this machine has "
            f"{torch.cuda.device_count()} CUDA device(s): use --nproc-per-node="
            f"{torch.cuda.device_count()} (one process per GPU), or train.device=cpu for gloo "
            "processes on the CPU")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    _INFO = DistInfo(rank, world, local)
    device = None
    if use_cuda:
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    return _INFO, device


def info() -> DistInfo:
    return _INFO


def is_main() -> bool:
    return _INFO.is_main


def shard(global_batch: torch.Tensor) -> tuple[slice, float]:
    """This rank's contiguous part of a global batch, and the weight that makes the average of the
    ranks' mean-loss gradients equal the gradient of the global mean (uneven last batches)."""
    n = len(global_batch)
    if not _INFO.enabled:
        return slice(0, n), 1.0
    per = -(-n // _INFO.world_size)  # ceil
    lo = min(_INFO.rank * per, n)
    hi = min(lo + per, n)
    return slice(lo, hi), (hi - lo) * _INFO.world_size / n


def average_gradients(module: nn.Module, weight: float = 1.0) -> None:
    """All-reduce the gradients of ``module`` to ``sum_r weight_r * grad_r / world``."""
    if not _INFO.enabled:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    if weight != 1.0:
        flat.mul_(weight)
    dist.all_reduce(flat)
    flat.div_(_INFO.world_size)
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset:offset + n].view_as(g))
        offset += n


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if _INFO.enabled:
        dist.all_reduce(t)
    return t


def agree(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any rank (decisions that time or signals make
    differently per rank, such as "checkpoint now", must be taken together)."""
    if not _INFO.enabled:
        return flag
    device = (torch.device("cuda", torch.cuda.current_device())
              if dist.get_backend() == "nccl" else torch.device("cpu"))
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier() -> None:
    if _INFO.enabled:
        dist.barrier()


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    if not _INFO.enabled:
        return module
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


def shutdown() -> None:
    global _INFO
    if dist.is_initialized():
        dist.destroy_process_group()
    _INFO = DistInfo()
