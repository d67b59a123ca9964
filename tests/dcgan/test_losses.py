import pytest
import torch
import torch.nn as nn

from dcgan.losses import LOSSES, gradient_penalty


@pytest.mark.parametrize("name", list(LOSSES))
def test_d_loss_falls_as_d_separates(name):
    d_loss = LOSSES[name].d_loss
    # real logits rise and fake logits fall, up to LSGAN's targets (real 1, fake 0)
    losses = [float(d_loss(torch.full((8,), s), torch.full((8,), 1.0 - s))) for s in (-1.0, -0.5, 0.0, 0.5, 1.0)]
    assert all(a > b for a, b in zip(losses, losses[1:])), losses


@pytest.mark.parametrize("name", list(LOSSES))
def test_g_loss_falls_as_d_calls_fakes_real(name):
    # the labels = 0 pitfall would make G's loss rise here
    g_loss = LOSSES[name].g_loss
    losses = [float(g_loss(torch.full((8,), m))) for m in (-3.0, -1.0, 0.0, 0.5, 1.0)]
    assert all(a > b for a, b in zip(losses, losses[1:])), losses


def test_bce_matches_binary_cross_entropy():
    real, fake = torch.randn(16), torch.randn(16)
    bce = nn.functional.binary_cross_entropy_with_logits
    expected = bce(real, torch.ones(16)) + bce(fake, torch.zeros(16))
    assert torch.allclose(LOSSES["bce"].d_loss(real, fake), expected, atol=1e-6)
    assert torch.allclose(LOSSES["bce"].g_loss(fake), bce(fake, torch.ones(16)), atol=1e-6)  # target "real"


def test_only_wgan_gp_needs_the_penalty():
    assert [n for n, l in LOSSES.items() if l.needs_gradient_penalty] == ["wgan-gp"]


class _Linear(nn.Module):
    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return x.flatten(1) @ self.w


def test_gradient_penalty_matches_its_formula():
    # for D(x) = w.x the gradient is w everywhere: GP = (||w|| - 1)^2
    w = torch.randn(1 * 4 * 4)
    real, fake = torch.randn(5, 1, 4, 4), torch.randn(5, 1, 4, 4)
    gp = gradient_penalty(_Linear(w), real, fake)
    assert torch.allclose(gp, (w.norm() - 1) ** 2, atol=1e-5)
    gp_unit = gradient_penalty(_Linear(w / w.norm()), real, fake)
    assert float(gp_unit.detach()) < 1e-10


def test_gradient_penalty_on_a_nonlinear_d_and_reaches_weights():
    torch.manual_seed(0)
    d = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1))
    real, fake = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    gen = torch.Generator().manual_seed(1)
    gp = gradient_penalty(lambda x: d(x).view(-1), real, fake, gen)
    alpha = torch.rand(3, 1, 1, 1, generator=torch.Generator().manual_seed(1))
    expected = 0.0
    for i in range(3):
        x = (alpha[i] * real[i] + (1 - alpha[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(d(x).sum(), x)
        expected += (g.norm() - 1) ** 2 / 3
    assert torch.allclose(gp, expected, atol=1e-6)
    gp.backward()
    assert d[1].weight.grad is not None and d[1].weight.grad.abs().sum() > 0
