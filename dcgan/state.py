"""The training state: networks, optimizers, noise and the batch sampler, built for one process.

`setup(cfg)` builds a `GAN` on this process's device and rank; `dcgan.train` steps it and
`dcgan.checkpoint` saves and restores it. Its own module, so that those two import it and not
each other.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel

from dcgan.augment import Augment, compose
from dcgan.config import TrainConfig
from dcgan.data import ImageSet, Splits, load_splits, to_float
from dcgan.distributed import broadcast_module, check_device, dist_info
from dcgan.models import build_models


class BatchSampler:
    """Batches from a resident uint8 tensor: this rank's shard, reshuffled every epoch."""

    def __init__(self, images: torch.Tensor, batch_size: int, rank: int, world: int, seed: int, device: torch.device):
        self.images = images[rank::world].to(device)  # (n, C, H, W) uint8, on the training device
        self.batch_size, self.device = batch_size, device
        assert len(self.images) >= batch_size, f"shard of {len(self.images)} images < batch_size {batch_size}"
        self.gen = torch.Generator().manual_seed(seed * 1000 + rank)
        self.perm, self.pos = self._new_perm(), 0

    def _new_perm(self) -> torch.Tensor:
        return torch.randperm(len(self.images), generator=self.gen).to(self.device)

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > len(self.perm):  # drop the ragged end, as drop_last does
            self.perm, self.pos = self._new_perm(), 0
        idx = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return to_float(self.images[idx])  # (B, C, H, W) in [-1, 1]

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state(), "perm": self.perm.cpu(), "pos": self.pos}

    def load_state_dict(self, s: dict) -> None:
        self.gen.set_state(s["gen"])
        self.perm, self.pos = s["perm"].to(self.device), s["pos"]


class StreamSampler:
    """Batches streamed from disk through a DataLoader, for folders too large to hold.
    Resuming restarts the epoch (the order is not checkpointed)."""

    def __init__(self, stream: torch.utils.data.Dataset, cfg: TrainConfig, rank: int, world: int, device: torch.device):
        self.sampler = torch.utils.data.DistributedSampler(stream, world, rank, shuffle=True, seed=cfg.seed, drop_last=True)
        self.loader = torch.utils.data.DataLoader(
            stream, cfg.batch_size, sampler=self.sampler, num_workers=cfg.data_workers, drop_last=True,
            pin_memory=device.type == "cuda", persistent_workers=cfg.data_workers > 0)
        self.device, self.epoch, self.it = device, 0, iter(())

    def next(self) -> torch.Tensor:
        try:
            x, _ = next(self.it)
        except StopIteration:
            self.sampler.set_epoch(self.epoch)
            self.epoch += 1
            self.it = iter(self.loader)
            x, _ = next(self.it)
        return to_float(x.to(self.device, non_blocking=True))

    def state_dict(self) -> dict:
        return {"epoch": self.epoch}

    def load_state_dict(self, s: dict) -> None:
        self.epoch = s["epoch"]


def make_sampler(train: ImageSet, cfg: TrainConfig, rank: int, world: int, device: torch.device):
    if train.resident:
        return BatchSampler(train.images, cfg.batch_size, rank, world, cfg.seed, device)
    return StreamSampler(train.stream, cfg, rank, world, device)


# --- the state ------------------------------------------------------------------------------------


@dataclass
class GAN:
    """Everything that changes during training; `state_dict` is the checkpoint."""

    cfg: TrainConfig
    g: nn.Module
    d: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    noise: torch.Generator  # draws z, the gradient penalty's mixing weights and the augmentations
    sampler: Any
    device: torch.device
    world: int = 1
    step: int = 0
    sums: dict = field(default_factory=dict)  # running sums of the logged losses since the last evaluation
    n_summed: int = 0  # generator updates in `sums`
    augment: Optional[Augment] = None  # what D sees real and generated images through (cfg.augment); None: as they are
    g_ema: Optional[AveragedModel] = None  # G's weights averaged over the updates (cfg.ema); None: off
    ema_begun: bool = False  # g_ema has made its first update (a copy of G): the next need not ask the device

    def g_eval(self) -> nn.Module:
        """The generator that is sampled, scored and saved for retraining: the average when cfg.ema is set."""
        return self.g_ema.module if self.g_ema is not None else unwrap(self.g)

    def z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cfg.latent_dim, generator=self.noise, device=self.noise.device).to(self.device)

    def d_logits(self, x: torch.Tensor) -> torch.Tensor:
        """D's logits for images `x`, seen through the run's augmentation (none by default)."""
        return self.d(self.augment(x, self.noise) if self.augment is not None else x)

    def sum_losses(self, logged: dict[str, torch.Tensor]) -> None:
        """Add one update's losses to `sums`, in place (the tensors outlive the evaluations that read
        and zero them, as a replayed CUDA graph's additions need: dcgan.graph)."""
        for key, value in logged.items():
            if key in self.sums:
                self.sums[key].add_(value.float())
            else:
                self.sums[key] = value.float().clone()

    def autocast(self):
        if self.cfg.precision == "bf16":  # (a captured step keeps no cast weights: PyTorch's notes on graphs)
            return torch.autocast(self.device.type, dtype=torch.bfloat16, cache_enabled=not self.cfg.cuda_graph)
        return contextlib.nullcontext()


def ema_weight(n: torch.Tensor, decay) -> torch.Tensor:
    """The share of the model that the moving average's update after `n` others takes (ema_average):
    1 - min(decay, (1 + n) / (10 + n)); `decay` a float, or a tensor of one per member of a pack."""
    return 1 - torch.clamp((1 + n) / (10 + n), max=decay)


def ema_average(decay: float):
    """AveragedModel's multi_avg_fn for `decay`, ramped up over the first updates (as in Karras et
    al.'s code): the update after t others keeps min(decay, (1 + t) / (10 + t)) of the average, so
    that a short run averages about its last tenth and not its random initial weights. Float
    buffers (BatchNorm's running statistics) are averaged alike; the int count of batches is G's.
    Foreach ops, and the weight kept on the device (no sync with it): one update costs a few
    kernels, not four per tensor."""

    def average(avgs: list[torch.Tensor], news: list[torch.Tensor], n: torch.Tensor) -> None:
        if not avgs[0].is_floating_point():
            torch._foreach_copy_(avgs, news)
            return
        weight = ema_weight(n, decay)  # (on n's device)
        diffs = torch._foreach_sub(news, avgs)
        torch._foreach_mul_(diffs, weight.to(avgs[0].dtype))
        torch._foreach_add_(avgs, diffs)

    return average


def apply_hyperparameters(gan: GAN, cfg: Optional[TrainConfig] = None) -> None:
    """Train on with `cfg` (default: gan.cfg), whose SCHEDULABLE values may differ from those the
    optimizers hold: Adam's rates and betas set in place (its moments kept), and the D:G ratio read
    from gan.cfg at the next update. Called after every restore, since an optimizer's state_dict
    brings back the rates it was saved with (population-based training restores a member from
    another's checkpoint with new values), and at each change of the config's schedule."""
    if cfg is not None:
        gan.cfg = cfg
    for opt, lr in ((gan.opt_g, gan.cfg.lr_g), (gan.opt_d, gan.cfg.lr_d)):
        for group in opt.param_groups:
            if isinstance(group["lr"], torch.Tensor):  # a captured step's (make_capturable): filled in place
                group["lr"].fill_(lr)
                for beta, value in zip(group["betas"], (gan.cfg.beta1, gan.cfg.beta2)):
                    beta.fill_(value)
            else:
                group["lr"] = lr
                group["betas"] = (gan.cfg.beta1, gan.cfg.beta2)


def make_capturable(opt: torch.optim.Optimizer, device: torch.device) -> None:
    """An Adam whose step a CUDA graph can capture: `capturable`, its step counts on the device, and
    its rates and betas one-element tensors there, which apply_hyperparameters fills in place (a graph
    replays the float it was captured with)."""
    for group in opt.param_groups:
        group["capturable"] = True
        if not isinstance(group["lr"], torch.Tensor):
            group["lr"] = torch.tensor(float(group["lr"]), device=device)
        group["betas"] = tuple(b if isinstance(b, torch.Tensor) else torch.tensor(float(b), device=device)
                               for b in group["betas"])
    for state in opt.state.values():
        if "step" in state:
            state["step"] = state["step"].to(device)


def optimizer_state(opt: torch.optim.Optimizer) -> dict:
    """opt.state_dict() in the checkpoint's one format, whether or not `opt` was made capturable:
    rates and betas as floats, not capturable, step counts on the CPU (what a plain Adam saves)."""
    saved = opt.state_dict()
    for group in saved["param_groups"]:
        group["lr"], group["betas"] = float(group["lr"]), tuple(float(b) for b in group["betas"])
        group["capturable"] = False
    saved["state"] = {i: {**s, "step": s["step"].cpu()} if "step" in s else s for i, s in saved["state"].items()}
    return saved


def average_in_place(avg: AveragedModel, model: nn.Module) -> None:
    """AveragedModel.update_parameters (use_buffers, a multi_avg_fn) once it has averaged (its count
    above 0), without asking the host whether it has: a CUDA graph captures it."""
    groups: dict[tuple, tuple[list, list]] = {}
    for mine, theirs in zip((*avg.module.parameters(), *avg.module.buffers()), (*model.parameters(), *model.buffers())):
        pair = groups.setdefault((mine.device, mine.dtype), ([], []))
        pair[0].append(mine.detach())
        pair[1].append(theirs.detach())
    for (device, _), (mine, theirs) in groups.items():
        avg.multi_avg_fn(mine, theirs, avg.n_averaged.to(device))
    avg.n_averaged += 1


def unwrap(m: nn.Module) -> nn.Module:
    return getattr(m, "_orig_mod", m)  # torch.compile wraps the module


def setup(cfg: TrainConfig, splits: Optional[Splits] = None) -> GAN:
    """Models, optimizers, samplers and RNGs for `cfg` on this process's device and rank."""
    rank, world = dist_info()
    device = check_device(cfg)
    splits = splits or load_splits(cfg)
    torch.manual_seed(cfg.seed)
    g, d = build_models(cfg, splits.channels)
    g, d = g.to(device), d.to(device)
    if cfg.channels_last:
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    broadcast_module(g, world)
    broadcast_module(d, world)
    g_ema = AveragedModel(g, device, multi_avg_fn=ema_average(cfg.ema), use_buffers=True) if cfg.ema else None
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    if cfg.compile:
        g, d = torch.compile(g), torch.compile(d)
    noise = torch.Generator(device=device).manual_seed(cfg.seed * 7 + rank)
    sampler = make_sampler(splits.train, cfg, rank, world, device)
    return GAN(cfg, g, d, opt_g, opt_d, noise, sampler, device, world, augment=compose(cfg.augment), g_ema=g_ema)
