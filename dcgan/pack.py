"""A pack: K members of one architecture trained as one model in one process (horizontal fusion, as HFTA
does: Wang et al., MLSys 2021): a small DCGAN's many tiny kernels become K times fewer, wider ones.

Each member is a `GAN` of its own (`dcgan.state.setup`), which keeps its config, its noise, its data
order and its augmentation; the pack holds the packed networks and optimisers and trains every member
one generator update per `step()`, with the same draws in the same order as `dcgan.train.train_step`
alone. `export()` writes the members' weights, optimiser states and moving averages back into their
own GANs, in today's checkpoint format (`dcgan.checkpoint.save_checkpoint` saves one as it is);
`load(k, gan)` puts a member back in (a restore, or an exploit's copy).

Packed: every convolution grouped (K groups), every parameter and buffer the K members' tensors
stacked along dim 0 (a member's block of each), BatchNorm's channels per member, a wgan-gp D's
GroupNorm(1, C) as GroupNorm(K, K*C). A member with a smaller latent has its z and its first
layer's rows padded with zeros: its padded weights get zero gradients and stay zero. Adam's rates and
betas are per-member tensors; a member that does not step in a D update (fewer D steps per G step:
its D updates are the last of the pack's) neither draws nor updates, and the BatchNorm statistics
that update's forward passes wrote for it are put back; so does one out for good (`out`: diverged).
Members may differ in rates, betas, the D:G ratio, the latent size, the loss and the augmentation;
not in image size, widths, D's normalisation or batch size (`pack_key`).
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import torch
import torch.nn as nn

from dcgan import keys
from dcgan.config import TrainConfig
from dcgan.losses import LOSSES
from dcgan.models import Discriminator, Generator
from dcgan.pack_adam import PackedAdam, block
from dcgan.state import GAN, ema_weight, unwrap


def pack_key(cfg: TrainConfig) -> tuple:
    """What members of one pack share: the data, the networks' shapes (but the latent size), D's
    normalisation, the batch, whether G is averaged, the device and the precision."""
    return (cfg.dataset, cfg.image_size, cfg.ngf, cfg.ndf, cfg.loss == "wgan-gp", cfg.batch_size, cfg.ema > 0,
            cfg.device, cfg.precision)


# --- the packed networks --------------------------------------------------------------------------


def _grouped(layer: nn.Module, k: int, in_rows: int | None = None) -> nn.Module:
    """`layer` of one member as the layer of a pack of k (its parameters uninitialised)."""
    if isinstance(layer, nn.ConvTranspose2d):
        cin = in_rows or layer.in_channels
        return nn.ConvTranspose2d(k * cin, k * layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
                                  groups=k, bias=False)
    if isinstance(layer, nn.Conv2d):
        return nn.Conv2d(k * layer.in_channels, k * layer.out_channels, layer.kernel_size, layer.stride,
                         layer.padding, groups=k, bias=False)
    if isinstance(layer, nn.BatchNorm2d):
        return nn.BatchNorm2d(k * layer.num_features, layer.eps, layer.momentum)
    if isinstance(layer, nn.GroupNorm):
        assert layer.num_groups == 1, layer
        return nn.GroupNorm(k, k * layer.num_channels, layer.eps)
    if isinstance(layer, (nn.ReLU, nn.LeakyReLU, nn.Tanh)):
        return layer
    raise TypeError(f"no packed form of {type(layer).__name__}")


class PackedGenerator(nn.Module):
    """z (B, K*L) -> images (B, K*C, S, S): member k's z in columns k*L..k*L+L_k, its images in
    channels k*C..(k+1)*C. L is the pack's largest latent size."""

    def __init__(self, members: Sequence[Generator]):
        super().__init__()
        self.k, self.latent_dim = len(members), max(g.latent_dim for g in members)
        layers = list(members[0].main)
        self.main = nn.Sequential(*(_grouped(layer, self.k, self.latent_dim if i == 0 else None)
                                    for i, layer in enumerate(layers)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], -1, 1, 1))


class PackedDiscriminator(nn.Module):
    """images (B, K*C, S, S) -> logits (B, K)."""

    def __init__(self, members: Sequence[Discriminator]):
        super().__init__()
        self.k = len(members)
        self.main = nn.Sequential(*(_grouped(layer, self.k) for layer in members[0].main))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(x.shape[0], self.k)


def _float_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and float buffers by name (BatchNorm's batch count, an int, is kept per member apart)."""
    return {name: t for name, t in [*module.named_parameters(), *module.named_buffers()] if t.is_floating_point()}


def copy_in(packed: nn.Module, k: int, member: nn.Module) -> None:
    """Member k's weights and BatchNorm statistics into the pack (padded rows zeroed)."""
    n, mine = packed.k, _float_tensors(member)
    with torch.no_grad():
        for name, t in _float_tensors(packed).items():
            share = t.shape[0] // n
            t[k * share : (k + 1) * share].zero_()
            block(t, k, n, mine[name].shape[0]).copy_(mine[name])


def copy_out(packed: nn.Module, k: int, member: nn.Module) -> None:
    theirs = _float_tensors(packed)
    with torch.no_grad():
        for name, t in _float_tensors(member).items():
            t.copy_(block(theirs[name], k, packed.k, t.shape[0]))


# --- the pack -------------------------------------------------------------------------------------


class Pack:
    """K members (GANs of one `pack_key`) trained as one model; see the module docstring."""

    def __init__(self, members: list[GAN]):
        if len({pack_key(m.cfg) for m in members}) != 1:
            raise ValueError("the members of a pack share their data, image size, widths, D's normalisation, batch "
                             "and whether G is averaged (pack_key)")
        if any(m.world != 1 or m.cfg.precision != "fp32" or m.cfg.compile for m in members):
            raise ValueError("a pack trains in one process, in fp32, uncompiled")
        self.members, self.n = list(members), len(members)
        self.g = PackedGenerator([unwrap(m.g) for m in members]).to(members[0].device)
        self.d = PackedDiscriminator([unwrap(m.d) for m in members]).to(members[0].device)
        self.g_ema = PackedGenerator([unwrap(m.g) for m in members]).to(members[0].device) \
            if members[0].g_ema is not None else None
        self.ema_n = torch.zeros(self.n, dtype=torch.int64, device=members[0].device)  # the averages' counts
        self.decay = torch.zeros(self.n, device=members[0].device)  # and decays
        self.opt_g = PackedAdam(list(self.g.parameters()), self.n)
        self.opt_d = PackedAdam(list(self.d.parameters()), self.n)
        self.batches = {"g": [0] * self.n, "d": [0] * self.n}  # BatchNorm's batch counts, per member
        self.out: set[int] = set()  # members that no longer train (diverged): no draws, no updates
        for k, gan in enumerate(members):
            self.load(k, gan)

    # -- members in and out

    def load(self, k: int, gan: GAN) -> None:
        """Member k becomes `gan`'s state: weights, Adam's moments and steps, its rates and betas (from
        gan.cfg, as apply_hyperparameters sets them), the moving average, the batch counts. A member of
        another pack_key, or a larger latent than the pack's, belongs in another pack."""
        if pack_key(gan.cfg) != pack_key(self.members[k].cfg) or gan.cfg.latent_dim > self.g.latent_dim:
            raise ValueError(f"a member of key {pack_key(gan.cfg)} and latent {gan.cfg.latent_dim} does not fit "
                             f"this pack (latent up to {self.g.latent_dim})")
        self.members[k] = gan
        g, d = unwrap(gan.g), unwrap(gan.d)
        copy_in(self.g, k, g)
        copy_in(self.d, k, d)
        self.opt_g.copy_in(k, gan.opt_g, list(g.parameters()))
        self.opt_d.copy_in(k, gan.opt_d, list(d.parameters()))
        self.opt_g.set_rates(k, gan.cfg.lr_g, (gan.cfg.beta1, gan.cfg.beta2))
        self.opt_d.set_rates(k, gan.cfg.lr_d, (gan.cfg.beta1, gan.cfg.beta2))
        if self.g_ema is not None:
            copy_in(self.g_ema, k, gan.g_ema.module)
            self.ema_n[k], self.decay[k] = int(gan.g_ema.n_averaged), gan.cfg.ema
        self.batches["g"][k], self.batches["d"][k] = _batch_count(g), _batch_count(d)

    def export(self) -> None:
        """Every member's state into its own GAN, ready for `save_checkpoint` or to train alone."""
        for k, gan in enumerate(self.members):
            g, d = unwrap(gan.g), unwrap(gan.d)
            copy_out(self.g, k, g)
            copy_out(self.d, k, d)
            self.opt_g.copy_out(k, gan.opt_g, list(g.parameters()))
            self.opt_d.copy_out(k, gan.opt_d, list(d.parameters()))
            if self.g_ema is not None:
                copy_out(self.g_ema, k, gan.g_ema.module)
                gan.g_ema.n_averaged.fill_(self.ema_n[k])
                _set_batch_count(gan.g_ema.module, self.batches["g"][k])
            _set_batch_count(g, self.batches["g"][k])
            _set_batch_count(d, self.batches["d"][k])

    # -- one generator update of every member

    def _z(self, on: list[bool]) -> torch.Tensor:
        b, width = self.members[0].cfg.batch_size, self.g.latent_dim
        z = torch.zeros(b, self.n, width, device=self.members[0].device)
        for k, gan in enumerate(self.members):
            if on[k]:
                z[:, k, : gan.cfg.latent_dim] = gan.z(b)
        return z.view(b, self.n * width)

    def _seen(self, images: torch.Tensor, on: list[bool]) -> torch.Tensor:
        """Each member's images through its own augmentation, drawn from its own noise."""
        parts = images.chunk(self.n, dim=1)
        return torch.cat([gan.augment(x, gan.noise) if on[k] and gan.augment is not None else x
                          for k, (gan, x) in enumerate(zip(self.members, parts))], dim=1)

    def step(self) -> list[torch.Tensor]:
        """One generator update of every member, as `dcgan.train.train_step` does alone (its D updates
        last in the pack's); each member's losses summed into its own `sums`. Returns each member's
        diverged flag, as train_step does."""
        ratios = [0 if k in self.out else gan.cfg.d_steps_per_g for k, gan in enumerate(self.members)]
        rounds = max(ratios)
        if not rounds:
            raise ValueError("every member of the pack sits out")
        out = _KeepStatistics(self, [r > 0 for r in ratios], count=False)  # the members out, put back at the end
        for i in range(rounds):
            on = [r > 0 and i >= rounds - r for r in ratios]
            keep = _KeepStatistics(self, on, save=i < rounds - 1)  # (G's graph of the last round is kept)
            batches = {k: gan.sampler.next() for k, gan in enumerate(self.members) if on[k]}
            blank = torch.zeros_like(next(iter(batches.values())))
            real = torch.cat([batches.get(k, blank) for k in range(self.n)], dim=1)
            with contextlib.nullcontext() if i == rounds - 1 else torch.no_grad():
                fake = self.g(self._z(on))
            logged = self._d_step(real, fake, on)
            keep.restore()
        on = [r > 0 for r in ratios]
        logged = [row | g_row for row, g_row in zip(logged, self._g_step(fake, on))]
        if self.g_ema is not None:
            self._update_average(on)
        out.restore()
        return [_logged(gan, row) if trains else torch.zeros((), dtype=torch.bool, device=gan.device)
                for gan, row, trains in zip(self.members, logged, on)]

    def _d_step(self, real: torch.Tensor, fake: torch.Tensor, on: list[bool]) -> list[dict]:
        self.opt_d.zero_grad()
        real_logits, fake_logits = self.d(self._seen(real, on)), self.d(self._seen(fake.detach(), on))
        total, rows = 0.0, []
        gp = [k for k, gan in enumerate(self.members) if on[k] and LOSSES[gan.cfg.loss].needs_gradient_penalty]
        penalties = self._penalties(real, fake, gp) if gp else {}
        for k, gan in enumerate(self.members):
            loss = LOSSES[gan.cfg.loss].d_loss(real_logits[:, k], fake_logits[:, k])
            if k in penalties:
                loss = loss + gan.cfg.gp_weight * penalties[k]
            if on[k]:
                total = total + loss
            rows.append({keys.D_LOSS: loss.detach(), keys.D_REAL: real_logits[:, k].detach().mean(),
                         keys.D_FAKE: fake_logits[:, k].detach().mean()})
        total.backward()
        self.opt_d.step(on)
        return rows

    def _penalties(self, real: torch.Tensor, fake: torch.Tensor, which: list[int]) -> dict[int, torch.Tensor]:
        """dcgan.losses.gradient_penalty of each member in `which`, from one pass of the packed D: a
        member's logits depend on its own channels only, so the gradient's blocks are the members'."""
        b, parts = real.shape[0], []
        for k, (gan, r, f) in enumerate(zip(self.members, real.chunk(self.n, 1), fake.chunk(self.n, 1))):
            if k in which:
                gen = gan.noise
                alpha = torch.rand(b, 1, 1, 1, generator=gen, device=gen.device).to(r.device, r.dtype)
                parts.append(alpha * r.detach() + (1 - alpha) * f.detach())
            else:
                parts.append(torch.zeros_like(r))
        x_hat = torch.cat(parts, dim=1).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.d(self._seen(x_hat, [k in which for k in range(self.n)])).sum(), x_hat,
                                      create_graph=True)
        return {k: ((g.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()
                for k, g in enumerate(grad.chunk(self.n, dim=1)) if k in which}

    def _g_step(self, fake: torch.Tensor, on: list[bool]) -> list[dict]:
        self.opt_g.zero_grad()
        logits = self.d(self._seen(fake, on))
        for k in range(self.n):
            self.batches["d"][k] += on[k]
        losses = [LOSSES[gan.cfg.loss].g_loss(logits[:, k]) for k, gan in enumerate(self.members)]
        sum(loss for loss, trains in zip(losses, on) if trains).backward()
        self.opt_d.zero_grad()  # D's gradients of G's loss are not used (alone: zeroed by the next D update)
        self.opt_g.step(on)
        return [{keys.G_LOSS: loss.detach()} for loss in losses]

    @torch.no_grad()
    def _update_average(self, on: list[bool]) -> None:
        """dcgan.state.ema_average (AveragedModel's update) for each member that trains, with its own
        count and decay: the first update copies G."""
        n, trains = self.ema_n, self.opt_g.mask(on)  # (on the device: no copy from the host)
        weight = ema_weight(n, self.decay)
        first = (n == 0).view(self.n, 1)
        for avg, new in zip(_float_tensors(self.g_ema).values(), _float_tensors(self.g).values()):
            av, nv = avg.view(self.n, -1), new.view(self.n, -1)
            mixed = av + (nv - av) * weight.to(av.dtype).view(self.n, 1)
            av.copy_(torch.where(trains.view(self.n, 1), torch.where(first, nv, mixed), av))
        self.ema_n += trains


def _logged(gan: GAN, row: dict) -> torch.Tensor:
    """A member's update counted and its losses summed, as train_step does; whether it diverged."""
    gan.sum_losses(row)
    gan.n_summed, gan.step = gan.n_summed + 1, gan.step + 1
    losses = torch.stack([row[keys.D_LOSS].float(), row[keys.G_LOSS].float()])
    return ~torch.isfinite(losses).all() | (losses.abs() > gan.cfg.max_abs_loss).any()


def _batch_count(module: nn.Module) -> int:
    counts = [int(m.num_batches_tracked) for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    return counts[0] if counts else 0


def _set_batch_count(module: nn.Module, count: int) -> None:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.num_batches_tracked.fill_(count)


class _KeepStatistics:
    """The BatchNorm statistics of the members that sit out an update, put back after it (`save`), and
    the batch counts of those that take part, counted (`count`)."""

    def __init__(self, pack: Pack, on: list[bool], count: bool = True, save: bool = True):
        self.pack, self.on, self.count = pack, on, count
        self.saved = [] if all(on) or not save else [(t, t.clone()) for net in (pack.g, pack.d) for t in net.buffers()
                                         if t.is_floating_point()]

    def restore(self) -> None:
        n = self.pack.n
        with torch.no_grad():
            for t, before in self.saved:
                share = t.shape[0] // n
                for k, on in enumerate(self.on):
                    if not on:
                        t[k * share : (k + 1) * share].copy_(before[k * share : (k + 1) * share])
        for k, on in enumerate(self.on):
            if on and self.count:
                self.pack.batches["g"][k] += 1  # G made its fake batch
                self.pack.batches["d"][k] += 2  # D saw the real and the fake
