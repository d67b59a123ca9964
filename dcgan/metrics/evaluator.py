"""One evaluation of a generator: fixed noise -> images -> features -> statistics -> metrics.

`build_evaluator(splits, device, n_samples)` does the expensive, once-only part (the extractor, the
real features and statistics, the real k-NN radii) and returns an `Evaluator`: built from the
data, the feature extractor and the sample count alone, as torch-fidelity's metrics are, so it
scores any generator or any set of images with no run configuration. Each call on a generator
draws `n_samples` latent vectors from the same seeded noise, with G in eval mode, so successive
evaluations of one run, and runs with the same seed, differ only by G.

Under torch.distributed each rank generates and featurises its own slice of the noise; the FID
statistics are all-reduced and the features all-gathered, so every rank returns the same dict,
equal (to float64 rounding) to the single-process one.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.distributed as dist
import torch.nn as nn

from dcgan import keys
from dcgan.data import Splits, to_uint8
from dcgan.distributed import dist_info
from dcgan.metrics import diagnostics
from dcgan.metrics.features import Reference, build_extractor, build_reference
from dcgan.metrics.fid import frechet_distance
from dcgan.metrics.stats import FeatureStats, feature_stats

EVAL_NOISE_OFFSET = 104729  # the evaluation noise must differ from the training noise and the grid's
GEN_BATCH = 500
MEMO_SIZE = 4  # real sides kept in memory per process
_REFERENCES: dict[tuple, tuple[Splits, Reference]] = {}


def eval_noise(n: int, latent_dim: int, seed: int = 0) -> torch.Tensor:
    """The fixed evaluation noise (n, latent_dim), the same on every rank and call."""
    gen = torch.Generator().manual_seed(seed + EVAL_NOISE_OFFSET)
    return torch.randn(n, latent_dim, generator=gen)


@torch.no_grad()
def generate(g: nn.Module, z: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (N, C, H, W) images of G(z), G in eval mode (its mode restored after)."""
    was_training = g.training
    g.eval()
    try:
        out = [to_uint8(g(chunk.to(device))).cpu() for chunk in z.split(GEN_BATCH)]
    finally:
        g.train(was_training)
    return torch.cat(out)


def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows, in rank order (rows may differ in number)."""
    rank, world = dist_info()
    if world == 1:
        return x
    dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    n = torch.tensor([x.shape[0]], device=dev)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    top = int(max(s.item() for s in sizes))
    padded = torch.zeros((top, *x.shape[1:]), dtype=x.dtype, device=dev)
    padded[: x.shape[0]] = x.to(dev)
    parts = [torch.zeros_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())].cpu() for p, s in zip(parts, sizes)])


def score(ref: Reference, features: torch.Tensor, labels: Optional[torch.Tensor],
          stats: Optional[FeatureStats] = None) -> dict:
    """Every metric of a generated feature set (N, D) against the reference. `stats`: the FID
    statistics if already accumulated (and all-reduced); else computed from `features`."""
    assert features.dim() == 2 and features.shape[1] == ref.mu.shape[0], (features.shape, ref.mu.shape)
    stats = stats or feature_stats(features)
    mu, sigma = stats.mean_cov()
    fake_radii = diagnostics.knn_radii(features, (1, diagnostics.K_PR))
    real = ref.neighbours(len(features))
    out = {
        keys.FID: frechet_distance(mu, sigma, ref.mu, ref.sigma),
        keys.EXTRACTOR: ref.extractor.name,
        keys.N: int(stats.count),
        keys.REFERENCE: ref.name,
        **diagnostics.prdc(real, features, fake_radii[diagnostics.K_PR]),
        keys.CLASS_COVERAGE: None,
        keys.CLASS_KL: None,
        keys.DUPLICATE_RATE: diagnostics.duplicate_rate(fake_radii[1], real.duplicate_tau),
        keys.MEMORIZATION: diagnostics.memorization(diagnostics.nearest_distance(features, ref.train_features),
                                                    ref.heldout_median),
    }
    reliable = False
    if labels is not None and ref.class_shares is not None:
        out |= diagnostics.class_metrics(labels, ref.class_shares)
        reliable = len(labels) >= diagnostics.MIN_SAMPLES_PER_CLASS * len(ref.class_shares)
    if ref.extractor.stacked and labels is not None:
        out |= diagnostics.stacked_modes(labels, ref.extractor.num_classes)
    out[keys.COLLAPSE] = diagnostics.collapse_verdict(out, reliable)
    return out


def score_images(ref: Reference, images: torch.Tensor) -> dict:
    """Score a set of uint8 images (N, C, H, W) in one process (the CLI's and the tests' path)."""
    features, labels = ref.extractor(images)
    return score(ref, features, labels)


class Evaluator:
    """`evaluator(G) -> dict` with exactly `keys.KEYS` (stacked-mnist adds `keys.STACKED_KEYS`),
    and `evaluator.score_images(uint8 images) -> dict` for images from anywhere."""

    def __init__(self, reference: Reference, n_samples: int, device: torch.device, seed: int = 0):
        self.reference, self.n_samples, self.device, self.seed = reference, n_samples, torch.device(device), seed

    def __call__(self, g: nn.Module) -> dict:
        rank, world = dist_info()
        z = eval_noise(self.n_samples, g.latent_dim, self.seed)
        lo, hi = rank * len(z) // world, (rank + 1) * len(z) // world
        images = generate(g, z[lo:hi], self.device)  # this rank's slice
        feats, labels = self.reference.extractor(images)
        stats = feature_stats(feats).all_reduce()
        all_feats = gather_rows(feats)
        all_labels = gather_rows(labels) if labels is not None else None
        return score(self.reference, all_feats, all_labels, stats)

    def score_images(self, images: torch.Tensor) -> dict:
        return score_images(self.reference, images)


def build_evaluator(splits: Splits, device: torch.device | str, n_samples: int, *, extractor: str = "auto",
                    inception_weights: Optional[str] = None, seed: int = 0) -> Evaluator:
    """The evaluator of generators of `splits`'s data that scores `n_samples` images at a time.
    Builds (or loads from the cache) the extractor and the real side now, rank 0 first under
    torch.distributed so that one process trains the classifier."""
    rank, world = dist_info()
    device = torch.device(device)
    if world > 1 and rank != 0:
        dist.barrier()  # wait for rank 0 to fill the cache
    key = (id(splits), str(device), extractor, inception_weights, n_samples)
    if key not in _REFERENCES:  # once per process: a process that runs trial after trial builds it once
        ext = build_extractor(splits, device, extractor, inception_weights)
        while len(_REFERENCES) >= MEMO_SIZE:
            del _REFERENCES[next(iter(_REFERENCES))]
        _REFERENCES[key] = (splits, build_reference(splits, ext, n_samples))  # splits held: its id stays unique
    if world > 1 and rank == 0:
        dist.barrier()
    return Evaluator(_REFERENCES[key][1], n_samples, device, seed)
