"""Inception-v3 pool3 features (2048-d), the standard FID feature space for RGB data.

Taken from torch-fidelity (`FeatureExtractorInceptionV3`). Why that library: its network is
the TensorFlow FID graph ported exactly, including TF1's bilinear resize to 299 px, so its FIDs
match the original TTUR code; pytorch-fid and torchmetrics use the same converted weights (and
torchmetrics wraps this very class); unlike pytorch-fid it takes a weights path directly, so an
offline machine can point at a file and nothing downloads behind our back.

Weights, first match wins: an explicit path argument; `$DCGAN_INCEPTION_WEIGHTS`; a copy in
the cache (`<cache>/inception/`); else a download there, unless downloads are disabled
(`allow_download=False`, or `DCGAN_NO_DOWNLOAD=1`). Tests never download.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch

from dcgan.files import atomic_write
from dcgan.metrics import cache

NAME = "inception-v3-pool3"
WEIGHTS_ENV = "DCGAN_INCEPTION_WEIGHTS"
NO_DOWNLOAD_ENV = "DCGAN_NO_DOWNLOAD"
WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's name for the TF FID weights
FEATURE_DIM = 2048


class MissingWeights(RuntimeError):
    """No Inception weights could be found or fetched; the message says how to provide them."""


def _missing(why: str) -> MissingWeights:
    return MissingWeights(
        f"Inception-v3 FID weights not available ({why}); download {WEIGHTS_FILE} (torch-fidelity's "
        f"converted TF FID weights) where there is a network and set {WEIGHTS_ENV}=/path/to/{WEIGHTS_FILE}, "
        f"or pass the path explicitly, or use a labelled grey dataset with the classifier extractor")


def resolve_weights(path: Optional[str | Path] = None, allow_download: Optional[bool] = None) -> Path:
    """The weights file to load, downloading it into the cache only if that is allowed."""
    explicit = path or os.environ.get(WEIGHTS_ENV)
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise _missing(f"no file at {p}")
        return p
    cached = cache.cache_root() / "inception" / WEIGHTS_FILE
    if cached.is_file():
        return cached
    if allow_download is None:
        allow_download = os.environ.get(NO_DOWNLOAD_ENV, "") in ("", "0")
    if not allow_download:
        raise _missing(f"none at {cached} and downloads are disabled")
    return _download(cached)


def _download(target: Path) -> Path:
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    try:
        atomic_write(target, lambda tmp: torch.hub.download_url_to_file(URL_INCEPTION_V3, tmp, progress=False))
    except Exception as e:  # no network, a proxy, a full disk: the user's fix is the same
        raise _missing(f"download failed: {type(e).__name__}: {str(e)[:100]}") from None
    return target


def load_inception(path: Optional[str | Path] = None, allow_download: Optional[bool] = None,
                   device: torch.device = torch.device("cpu")) -> torch.nn.Module:
    """The pool3 extractor, eval mode, no gradients: uint8 (B, 3, H, W) -> ((B, 2048),)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    weights = resolve_weights(path, allow_download)
    try:
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
    except (RuntimeError, KeyError, EOFError, OSError) as e:  # a truncated or wrong file
        raise _missing(f"{weights} is not a loadable Inception state_dict: {str(e)[:100]}") from None
    return net.to(device).eval()


@torch.no_grad()
def inception_features(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """uint8 (N, C, H, W), C in {1, 3} -> float32 (N, 2048); grey images are repeated to RGB."""
    assert images.dtype == torch.uint8 and images.dim() == 4 and images.shape[1] in (1, 3), (images.dtype, images.shape)
    device = next(net.parameters()).device
    out = []
    for chunk in images.split(batch_size):
        x = chunk.to(device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        out.append(net(x)[0].float().cpu())
    return torch.cat(out) if out else torch.empty(0, FEATURE_DIM)
