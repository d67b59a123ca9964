import pytest
import torch

from dcgan.augment import AUGMENTS, CUTOUT_RATIO, compose, cutout, policy, translation
from dcgan.config import ConfigError, TrainConfig
from dcgan.train import setup, train_step


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(b: int = 16, c: int = 1, side: int = 16) -> torch.Tensor:
    return torch.rand(b, c, side, side, generator=_gen(123)) * 2 - 1  # (B, C, H, W) in [-1, 1]


def _shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x (C, H, W) moved by (dy, dx): out[i, j] = x[i + dy, j + dx], zero where that is outside."""
    _, h, w = x.shape
    out = torch.zeros_like(x)
    ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
    out[:, ys, xs] = x[:, ys.start + dy : ys.stop + dy, xs.start + dx : xs.stop + dx]
    return out


def test_translation_moves_each_image_by_at_most_an_eighth_of_its_side():
    x = _images(b=64, side=16)
    y = translation(x, _gen())
    shifts = []
    for xi, yi in zip(x, y):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(_shifted(xi, dy, dx), yi)]
        assert len(found) == 1, "not a shift of at most 2 px (1/8 of 16) with zero padding"
        shifts.append(found[0])
    assert len(set(shifts)) > 10  # each image its own draw, not one shift for the batch


def test_cutout_zeroes_one_square_of_half_the_side_and_keeps_the_rest():
    x = _images(b=64, c=3, side=16) + 3  # no pixel is 0 before the cut
    y = cutout(x, _gen())
    side = int(16 * CUTOUT_RATIO + 0.5)
    for xi, yi in zip(x, y):
        cut = (yi == 0).all(dim=0)  # (H, W), the same pixels in every channel
        assert torch.equal(yi[:, ~cut], xi[:, ~cut]) and (yi == 0).sum() == 3 * cut.sum()
        rows, cols = cut.any(dim=1).nonzero(), cut.any(dim=0).nonzero()
        assert cut.sum() == len(rows) * len(cols)  # a rectangle: the square, clipped at the border
        assert 0 < len(rows) <= side and 0 < len(cols) <= side


def test_color_keeps_a_grey_image_grey_and_moves_its_brightness():
    x = _images(b=32, c=3, side=8)
    x = x[:, :1].expand(-1, 3, -1, -1)  # grey in three channels
    y = compose("color")(x, _gen())
    assert torch.allclose(y[:, 0], y[:, 1]) and torch.allclose(y[:, 0], y[:, 2])
    assert (y.mean(dim=(1, 2, 3)) - x.mean(dim=(1, 2, 3))).abs().max() > 0.1


@pytest.mark.parametrize("spec", list(AUGMENTS) + ["color,translation,cutout"])
def test_augmentation_is_differentiable_and_reproducible(spec):
    x = _images().requires_grad_(True)
    augment = compose(spec)
    y = augment(x, _gen(1))
    assert y.shape == x.shape
    y.pow(2).sum().backward()  # G's gradient reaches the images through the transforms
    assert x.grad is not None and x.grad.abs().sum() > 0
    same, other = augment(x.detach(), _gen(1)), augment(x.detach(), _gen(2))
    assert torch.equal(same, y.detach()) and not torch.equal(other, y.detach())


def test_the_policy_is_parsed_in_one_order_and_unknown_names_are_refused():
    assert policy("") == [] and policy("cutout, translation") == ["translation", "cutout"] and compose("") is None
    with pytest.raises(ValueError, match="unknown augment 'flip'; known: color, translation, cutout"):
        policy("translation,flip")
    with pytest.raises(ConfigError, match="unknown augment 'flip'"):
        TrainConfig(augment="flip")
    assert TrainConfig(augment="cutout, translation").augment == "translation,cutout"
    assert TrainConfig(augment="cutout, translation") == TrainConfig(augment="translation,cutout")


TINY = dict(dataset="digits", image_size=8, ngf=8, ndf=8, latent_dim=8, batch_size=16, device="cpu")


def test_d_sees_augmented_images_only_when_asked():
    plain, augmented = setup(TrainConfig(**TINY)), setup(TrainConfig(**TINY, augment="translation,cutout"))
    x = _images(b=4, side=8)
    assert torch.equal(plain.d_logits(x), plain.d(x))
    assert not torch.equal(augmented.d_logits(x), augmented.d(x))
    # without augmentation D's view draws nothing from the run's generator (z's stream is as it was)
    for gan, draws in ((plain, False), (augmented, True)):
        before = gan.noise.get_state()
        gan.d_logits(x)
        assert torch.equal(gan.noise.get_state(), before) != draws
