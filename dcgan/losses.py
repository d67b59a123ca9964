"""GAN losses as one table: name -> (d_loss(real_logits, fake_logits), g_loss(fake_logits)).

All are pure functions of D's logits (softplus, never Sigmoid + BCELoss). WGAN-GP adds a
gradient penalty, the one term that needs D and the images: `gradient_penalty` says so.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


class Loss(NamedTuple):
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor], Tensor]
    needs_gradient_penalty: bool = False


# BCE: D maximises log D(x) + log(1 - D(G(z))); -log(sigmoid(l)) = softplus(-l).
def _bce_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


# Non-saturating G: maximise log D(G(z)), i.e. G's target label is "real".
def _bce_g(fake: Tensor) -> Tensor:
    return F.softplus(-fake).mean()


# WGAN: D (the critic) maximises E[D(x)] - E[D(G(z))]; G maximises E[D(G(z))].
def _wgan_d(real: Tensor, fake: Tensor) -> Tensor:
    return fake.mean() - real.mean()


def _wgan_g(fake: Tensor) -> Tensor:
    return -fake.mean()


# Hinge (Lim & Ye 2017; Miyato et al. 2018): D minimises E[relu(1 - D(x))] + E[relu(1 + D(G(z)))].
def _hinge_d(real: Tensor, fake: Tensor) -> Tensor:
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


# Least squares (Mao et al. 2017), a-b-c = 0-1-1: D pulls real to 1, fake to 0; G pulls fake to 1.
def _lsgan_d(real: Tensor, fake: Tensor) -> Tensor:
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake**2).mean()


def _lsgan_g(fake: Tensor) -> Tensor:
    return 0.5 * ((fake - 1.0) ** 2).mean()


LOSSES: dict[str, Loss] = {
    "bce": Loss(_bce_d, _bce_g),
    "wgan-gp": Loss(_wgan_d, _wgan_g, needs_gradient_penalty=True),
    "hinge": Loss(_hinge_d, _wgan_g),
    "lsgan": Loss(_lsgan_d, _lsgan_g),
}


def gradient_penalty(d: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat uniformly between real and fake (Gulrajani et al. 2017).

    Needs D itself, not just logits: the gradient is taken through D with create_graph, so that the
    penalty's own gradient reaches D's weights."""
    gen_device = generator.device if generator is not None else real.device
    alpha = torch.rand(real.shape[0], 1, 1, 1, generator=generator, device=gen_device).to(real.device, real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()
