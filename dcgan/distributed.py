"""torch.distributed helpers for the training loop: who am I, which device, and gradient averaging.

Everything here is a no-op without a process group, so the loop runs the same on one process."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.nn as nn

from dcgan.config import ConfigError, TrainConfig


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


def check_device(cfg: TrainConfig) -> torch.device:
    """The device `cfg` runs on; ConfigError, naming the fix, where it or a fast-path option
    cannot apply here."""
    device = resolve_device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={cfg.device}, but this machine has no CUDA GPU; use device=auto or device=cpu")
    check_compile(cfg, device)
    if cfg.cuda_graph and device.type != "cuda":
        raise ConfigError(f"cuda_graph=true replays the step on a CUDA GPU, and this run is on {device.type}; "
                          "drop it or use a GPU")
    if cfg.precision == "bf16" and not bf16_supported(device):
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
        raise ConfigError(f"precision=bf16 needs bf16 arithmetic, which {name} lacks (a GPU needs Ampere or newer); "
                          "use precision=fp32")
    return device


def check_compile(cfg: TrainConfig, device: torch.device) -> None:
    """compile with channels_last on a GPU: inductor's convolution backward fails its own stride
    check (AssertionError in the first step; seen with torch 2.11 on an H100, fp32 and bf16,
    32 and 64 px). On CPU the pair runs and matches the plain path."""
    if device.type == "cuda" and cfg.compile and cfg.channels_last:
        raise ConfigError("compile=true with channels_last=true fails in torch.compile's convolution backward on a GPU; "
                          "set one of them")


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast: on every CPU torch runs on; on a GPU with native bf16 (not emulated)."""
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return False


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


def rank0_decides(flag: bool, world: int, device: torch.device) -> bool:
    """Rank 0's `flag` on every rank (a collective: every rank must call it)."""
    if world == 1:
        return flag
    t = torch.tensor(int(flag), dtype=torch.uint8, device=device)
    dist.broadcast(t, 0)
    return bool(t)
