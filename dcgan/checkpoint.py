"""Checkpoints: G, D, both optimizers, the step, every rank's RNG and sampler state, and the config.

A checkpoint is a folder `step_XXXXXXX/` holding `state.pt`, `config.json` and `samples.png`,
written whole or not at all, so a run (or a Ray trial) resumes from any of them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import torch
import torch.distributed as dist
import torch.nn as nn

if TYPE_CHECKING:
    from dcgan.train import GAN


def gather_rng(gan: "GAN") -> list:
    """Every rank's noise and sampler state, gathered so rank 0 can save them (a collective)."""
    mine = {"noise": gan.noise.get_state(), "sampler": gan.sampler.state_dict()}
    if gan.world == 1:
        return [mine]
    everyone: list = [None] * gan.world
    dist.all_gather_object(everyone, mine)
    return everyone


def save_checkpoint(gan: "GAN", ckpt_dir: Path, rng: list, grid_png: Optional[Path]) -> None:
    """G, D, both optimizers, the step, every rank's RNG and sampler state, and the config.
    Written to a temporary folder, then renamed: a checkpoint is whole or absent."""
    tmp = ckpt_dir.with_name(ckpt_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save({
        "step": gan.step,
        "g": unwrap(gan.g).state_dict(),
        "d": unwrap(gan.d).state_dict(),
        "opt_g": gan.opt_g.state_dict(),
        "opt_d": gan.opt_d.state_dict(),
        "rng": rng,
        "world": gan.world,
        "torch_rng": torch.get_rng_state(),
    }, tmp / "state.pt")
    gan.cfg.to_json(tmp / "config.json")
    if grid_png is not None and grid_png.exists():
        shutil.copy(grid_png, tmp / "samples.png")
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    tmp.rename(ckpt_dir)


def load_checkpoint(gan: "GAN", ckpt_dir: Path, rank: int) -> None:
    state = torch.load(Path(ckpt_dir) / "state.pt", map_location="cpu", weights_only=False)
    unwrap(gan.g).load_state_dict(state["g"])
    unwrap(gan.d).load_state_dict(state["d"])
    gan.opt_g.load_state_dict(state["opt_g"])
    gan.opt_d.load_state_dict(state["opt_d"])
    gan.step = state["step"]
    if state["world"] == gan.world:  # the same world size continues every rank's streams exactly
        gan.noise.set_state(state["rng"][rank]["noise"])
        gan.sampler.load_state_dict(state["rng"][rank]["sampler"])
    else:  # a different world size: fresh streams, seeded by the step, so the run still continues
        gan.noise.manual_seed(gan.cfg.seed * 7 + gan.step * 1000 + rank)
    torch.set_rng_state(state["torch_rng"])


def unwrap(m: nn.Module) -> nn.Module:
    return getattr(m, "_orig_mod", m)  # torch.compile wraps the module


def latest_checkpoint(out_dir: Path) -> Optional[Path]:
    found = sorted((out_dir / "checkpoints").glob("step_*[0-9]")) if out_dir else []
    return found[-1] if found else None


def prune_checkpoints(out_dir: Path, keep: int) -> None:
    for old in sorted((out_dir / "checkpoints").glob("step_*[0-9]"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
