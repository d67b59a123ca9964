"""The DCGAN generator and discriminator (Radford et al. 2015), for 8 to 256 px, grey or RGB.

The paper's rules: strided convolutions, no pooling; BatchNorm in both networks except at the
generator's output and the discriminator's input; ReLU in G with a tanh output; LeakyReLU(0.2)
in D. D returns one logit per image.

Sizes: a 4x4 (7x7 for 28 px) seed is doubled by stride-2 layers up to the image size. Channel
widths double per layer going down in resolution (ngf*1 at the top, ngf*2, ...), capped at
8x so that the 128 and 256 px models stay at the paper's widest layer (ngf*8) instead of
growing to 16x and 32x.

For wgan-gp, D has no BatchNorm: the gradient penalty is a per-sample quantity, and batch
statistics couple the samples. D uses layer norm instead (GroupNorm with one group normalises
each sample over (C, H, W)), as Gulrajani et al. 2017 recommend.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from dcgan.config import TrainConfig

MAX_WIDTH_MULT = 8


def _plan(image_size: int) -> tuple[int, int]:
    """(seed resolution, number of stride-2 layers) for an image size."""
    base = 7 if image_size == 28 else 4
    n_up = int(round(math.log2(image_size // base)))
    assert base * 2**n_up == image_size, image_size
    return base, n_up


def _mult(i: int) -> int:
    return min(2**i, MAX_WIDTH_MULT)


class Generator(nn.Module):
    """z (B, latent_dim) -> images (B, C, S, S) in [-1, 1]."""

    def __init__(self, latent_dim: int, channels: int, image_size: int, ngf: int = 64):
        super().__init__()
        base, n_up = _plan(image_size)
        self.latent_dim = latent_dim
        widths = [ngf * _mult(i) for i in reversed(range(n_up))]  # e.g. 64 px: 512, 256, 128, 64
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, widths[0], base, 1, 0, bias=False),  # (B, w0, base, base)
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(True),
        ]
        for w_in, w_out in zip(widths, widths[1:]):  # each doubles H and W
            layers += [nn.ConvTranspose2d(w_in, w_out, 4, 2, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1, bias=False), nn.Tanh()]  # no BN at output
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.view(z.shape[0], self.latent_dim, 1, 1))


class Discriminator(nn.Module):
    """images (B, C, S, S) -> logits (B,). `norm`: "batch" (the paper) or "layer" (for wgan-gp)."""

    def __init__(self, channels: int, image_size: int, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        assert norm in ("batch", "layer"), norm
        base, n_down = _plan(image_size)
        widths = [ndf * _mult(i) for i in range(n_down)]  # e.g. 64 px: 64, 128, 256, 512
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for w_in, w_out in zip(widths, widths[1:]):  # each halves H and W
            norm_layer = nn.BatchNorm2d(w_out) if norm == "batch" else nn.GroupNorm(1, w_out)
            layers += [nn.Conv2d(w_in, w_out, 4, 2, 1, bias=False), norm_layer, nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(widths[-1], 1, base, 1, 0, bias=False)]  # (B, 1, 1, 1)
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).view(-1)


def init_weights(module: nn.Module, scheme: str = "dcgan") -> None:
    """dcgan: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0 (the paper's init).
    kaiming: He-normal conv weights for (leaky) ReLU, norm scales 1."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            if scheme == "dcgan":
                nn.init.normal_(m.weight, 0.0, 0.02)
            else:
                nn.init.kaiming_normal_(m.weight, a=0.2, nonlinearity="leaky_relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            if scheme == "dcgan":
                nn.init.normal_(m.weight, 1.0, 0.02)
            else:
                nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_models(cfg: TrainConfig, channels: int) -> tuple[Generator, Discriminator]:
    g = Generator(cfg.latent_dim, channels, cfg.image_size, cfg.ngf)
    d = Discriminator(channels, cfg.image_size, cfg.ndf, norm="layer" if cfg.loss == "wgan-gp" else "batch")
    init_weights(g, cfg.init)
    init_weights(d, cfg.init)
    return g, d
