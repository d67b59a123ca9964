"""The GPU fast path's options, on CPU: the same results as the plain path within a tolerance,
or one clear refusal where an option cannot apply here."""

from __future__ import annotations

import pytest
import torch

from dcgan.config import ConfigError, TrainConfig
from dcgan.distributed import bf16_supported, check_compile, check_device
from dcgan.state import setup, unwrap
from dcgan.train import main as train_main
from dcgan.train import train_step

BASE = TrainConfig(image_size=8, ngf=8, ndf=8, batch_size=16, steps=3, eval_every=3, device="cpu")


def three_steps(**options) -> tuple[torch.Tensor, dict[str, float]]:
    """G's images of fixed noise, and the mean losses, after three steps of BASE with `options`."""
    gan = setup(BASE.replace(**options))
    for _ in range(3):
        train_step(gan)
    g = unwrap(gan.g).eval()
    with torch.no_grad():
        images = g(torch.randn(16, BASE.latent_dim, generator=torch.Generator().manual_seed(1)))
    return images, {k: float(v) / 3 for k, v in gan.sums.items()}


@pytest.fixture(scope="module")
def plain():
    return three_steps()


@pytest.mark.parametrize("options, tolerance", [
    ({"channels_last": True}, 1e-5),  # the same arithmetic in another memory order
    ({"compile": True}, 1e-5),  # inductor's fused kernels, fp32
    ({"precision": "bf16"}, 0.02),  # bf16 keeps 8 bits of mantissa: about 2 significant digits
])
def test_option_gives_the_plain_results(plain, options, tolerance):
    images, losses = three_steps(**options)
    ref_images, ref_losses = plain
    assert (images - ref_images).abs().max().item() <= tolerance
    for k, v in ref_losses.items():
        assert losses[k] == pytest.approx(v, rel=tolerance, abs=tolerance), k
    if options.get("precision") == "bf16":  # and it did run in bf16: not bit-identical
        assert not torch.equal(images, ref_images)


def test_compile_with_channels_last_is_refused_on_a_gpu_only():
    both = BASE.replace(compile=True, channels_last=True)
    with pytest.raises(ConfigError, match="set one of them"):
        check_compile(both, torch.device("cuda"))
    check_compile(both, torch.device("cpu"))  # runs on CPU, and gives the plain results:
    images, _ = three_steps(compile=True, channels_last=True)
    assert (images - three_steps()[0]).abs().max().item() <= 1e-5


def test_bf16_is_supported_on_cpu():
    assert bf16_supported(torch.device("cpu"))
    assert check_device(BASE.replace(precision="bf16")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_a_missing_gpu_is_refused_with_one_line(tmp_path, capsys):
    with pytest.raises(ConfigError, match="no CUDA GPU; use device=auto or device=cpu"):
        check_device(BASE.replace(device="cuda"))
    assert train_main(["--set", "device=cuda", "--set", "image_size=8", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no CUDA GPU" in err[0]
    assert not (tmp_path / "run").exists()
