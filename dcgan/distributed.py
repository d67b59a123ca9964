"""torch.distributed helpers for the training loop: who am I, which device, and gradient averaging.

Everything here is a no-op without a process group, so the loop runs the same on one process."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.nn as nn


def dist_info() -> tuple[int, int]:
    """(rank, world size); (0, 1) without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def resolve_device(name: str) -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    return torch.device("cpu")


def average_gradients(module: nn.Module, world: int) -> None:
    """All-reduce the gradients of `module` (one flat buffer) and divide by the world size.

    Why not DistributedDataParallel: DDP expects one forward per backward, but a GAN step calls
    D on the real and the fake batch separately (the paper's BatchNorm sees them as separate
    batches), and WGAN-GP calls it a third time inside the penalty. Averaging the gradients
    after the backward is what DDP does, without that constraint."""
    if world == 1:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_module(module: nn.Module, world: int) -> None:
    """Rank 0's parameters and buffers (BatchNorm statistics) to every rank."""
    if world == 1:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, 0)


def any_rank(flag: torch.Tensor, world: int) -> bool:
    """True if `flag` is set on any rank (a collective: every rank must call it)."""
    if world > 1:
        flag = flag.to(torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag)
