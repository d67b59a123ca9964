import pytest
import torch
import torch.nn as nn

from dcgan.config import TrainConfig
from dcgan.models import Discriminator, Generator, build_models, init_weights


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64, 128, 256])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes(size, channels):
    ngf = ndf = 4 if size >= 128 else 8  # narrow: shapes do not depend on width
    g = Generator(16, channels, size, ngf)
    d = Discriminator(channels, size, ndf)
    x = g(torch.randn(2, 16))
    assert x.shape == (2, channels, size, size)
    assert x.abs().max() <= 1  # tanh output
    assert d(x).shape == (2,)


def _layers(m: nn.Module) -> list[nn.Module]:
    return [l for l in m.main if not isinstance(l, nn.Sequential)]


@pytest.mark.parametrize("size", [16, 28, 64])
def test_paper_rules(size):
    g, d = build_models(TrainConfig(image_size=size, ngf=8, ndf=8), channels=3)
    gl, dl = _layers(g), _layers(d)
    # no pooling, strided convolutions only
    assert not any(isinstance(l, (nn.MaxPool2d, nn.AvgPool2d)) for l in gl + dl)
    # G: every ConvTranspose but the last is followed by BatchNorm then ReLU; the output is tanh, no BN
    convs = [i for i, l in enumerate(gl) if isinstance(l, nn.ConvTranspose2d)]
    for i in convs[:-1]:
        assert isinstance(gl[i + 1], nn.BatchNorm2d) and isinstance(gl[i + 2], nn.ReLU)
    assert isinstance(gl[convs[-1] + 1], nn.Tanh) and len(gl) == convs[-1] + 2
    # D: no BN after the input conv, BN after the others, LeakyReLU(0.2) throughout, logit output
    convs = [i for i, l in enumerate(dl) if isinstance(l, nn.Conv2d)]
    assert isinstance(dl[1], nn.LeakyReLU) and dl[1].negative_slope == 0.2
    for i in convs[1:-1]:
        assert isinstance(dl[i + 1], nn.BatchNorm2d) and isinstance(dl[i + 2], nn.LeakyReLU)
        assert dl[i + 2].negative_slope == 0.2
    assert convs[-1] == len(dl) - 1  # the last layer is the conv that gives the logit: no sigmoid
    assert all(l.stride == (2, 2) for l in (dl[i] for i in convs[:-1]))


def test_wgan_gp_discriminator_has_no_batchnorm():
    _, d = build_models(TrainConfig(image_size=32, ndf=8, loss="wgan-gp"), channels=1)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    assert any(isinstance(m, nn.GroupNorm) and m.num_groups == 1 for m in d.modules())  # layer norm


def test_dcgan_init_statistics():
    g, d = build_models(TrainConfig(image_size=64, ngf=32, ndf=32), channels=3)
    ws = torch.cat([m.weight.flatten() for m in list(g.modules()) + list(d.modules())
                    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))])
    assert abs(ws.mean()) < 1e-3 and abs(ws.std() - 0.02) < 1e-3
    bn = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn.mean() - 1) < 0.01 and abs(bn.std() - 0.02) < 0.01
    assert all((m.bias == 0).all() for m in g.modules() if isinstance(m, nn.BatchNorm2d))


def test_kaiming_init_differs():
    d = Discriminator(1, 32, 32)
    init_weights(d, "kaiming")
    conv = d.main[0]
    fan_in = conv.weight[0].numel()
    expected = (2 / (1 + 0.2**2) / fan_in) ** 0.5
    assert abs(conv.weight.std() - expected) / expected < 0.1


def test_wide_models_cap_at_8x():
    g = Generator(100, 3, 256, 64)
    assert g.main[0].out_channels == 64 * 8
