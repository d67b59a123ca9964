"""Mode-collapse diagnostics in a feature space: nearest-neighbour metrics, class histograms and
one verdict.

All distances are Euclidean between feature rows, computed in float64 in row chunks (so that
10,000 x 10,000 never sits in memory at once, and each block is reduced while it is in cache).

- precision / recall: Kynkäänniemi et al. 2019, k=3. density / coverage: Naeem et al. 2020, k=5.
  They follow the reference code (`prdc.compute_prdc`): a sample's radius is the distance to its
  k-th nearest neighbour in its own set, and "inside" is a strict `<`.
- duplicate_rate: the share of generated samples whose nearest other generated sample is closer
  than `tau`, where tau is the DUPLICATE_QUANTILE (1%) quantile of the nearest-neighbour
  distances within an equally large set of real training samples. So real data scores about
  0.01 by construction, and a generator that piles its samples on few points scores high.
- memorization: median over generated samples of the distance to the nearest training sample,
  divided by the same median for held-out real samples. About 1 for a generator that
  generalises as well as fresh data; near 0 for one that copies its training set;
  MEMORIZATION_THRESHOLD flags it.
- class_coverage: the share of classes that receive at least CLASS_COVERED_SHARE (a quarter) of
  their share in the data, classes predicted by the classifier. A quarter, not "one sample",
  because a 98%-accurate classifier scatters a single-class generator's samples over a few
  other classes. class_kl: KL(generated class histogram || data class histogram).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from dcgan import keys

K_PR = 3  # precision/recall, Kynkäänniemi et al. 2019
K_DC = 5  # density/coverage, Naeem et al. 2020
DUPLICATE_QUANTILE = 0.01
MEMORIZATION_THRESHOLD = 0.5  # memorization below this: the generator copies training images
CLASS_COVERED_SHARE = 0.25
MIN_SAMPLES_PER_CLASS = 10  # fewer generated samples per class: class metrics too noisy for the verdict
ROW_CHUNK = 256  # rows of a distance block: 256 x 10,000 float64 (20 MB) stays in cache; 1024 was 30% slower


def _dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (A, B) between float64 rows."""
    return torch.cdist(a, b)


def _f64(x: torch.Tensor) -> torch.Tensor:
    assert x.dim() == 2, x.shape
    return x.detach().to("cpu", torch.float64)


def knn_radii(x: torch.Tensor, ks: tuple[int, ...]) -> dict[int, torch.Tensor]:
    """For each row of x (N, D): the distance to its k-th nearest other row, for each k in ks.
    As prdc: the k+1 smallest distances include the row itself at 0."""
    x = _f64(x)
    top = max(ks) + 1
    assert x.shape[0] >= top, f"need more than {max(ks)} samples for k-NN radii, got {x.shape[0]}"
    parts = [_dist(chunk, x).topk(top, dim=1, largest=False).values for chunk in x.split(ROW_CHUNK)]
    near = torch.cat(parts)  # (N, top), ascending
    return {k: near[:, k] for k in ks}


def nearest_distance(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """For each row of x: the distance to the nearest row of ref."""
    x, ref = _f64(x), _f64(ref)
    return torch.cat([_dist(chunk, ref).min(dim=1).values for chunk in x.split(ROW_CHUNK)])


@dataclass
class RealNeighbours:
    """What the real side of the k-NN metrics needs, computed once per evaluator."""

    features: torch.Tensor  # (M, D) float64, a fixed sample of the training split
    radius_pr: torch.Tensor  # (M,) k=3 radii
    radius_dc: torch.Tensor  # (M,) k=5 radii
    duplicate_tau: float

    @classmethod
    def of(cls, real: torch.Tensor) -> "RealNeighbours":
        radii = knn_radii(real, (1, K_PR, K_DC))
        tau = float(torch.quantile(radii[1], DUPLICATE_QUANTILE))
        return cls(_f64(real), radii[K_PR], radii[K_DC], tau)


def prdc(real: RealNeighbours, fake: torch.Tensor, fake_radius_pr: Optional[torch.Tensor] = None) -> dict[str, float]:
    """precision, recall (k=3), density, coverage (k=5) of `fake` (N, D) against `real`."""
    fake = _f64(fake)
    if fake_radius_pr is None:
        fake_radius_pr = knn_radii(fake, (K_PR,))[K_PR]
    in_real_ball = torch.zeros(fake.shape[0], dtype=torch.bool)
    density_count = torch.zeros(fake.shape[0], dtype=torch.float64)
    recalled, covered = [], []
    for rows, r_pr, r_dc in zip(real.features.split(ROW_CHUNK), real.radius_pr.split(ROW_CHUNK),
                                real.radius_dc.split(ROW_CHUNK)):
        d = _dist(rows, fake)  # (chunk, N)
        in_real_ball |= (d < r_pr[:, None]).any(0)
        density_count += (d < r_dc[:, None]).sum(0)
        recalled.append((d < fake_radius_pr[None, :]).any(1))
        covered.append(d.min(1).values < r_dc)
    return {
        keys.PRECISION: in_real_ball.double().mean().item(),
        keys.RECALL: torch.cat(recalled).double().mean().item(),
        keys.DENSITY: (density_count / K_DC).mean().item(),
        keys.COVERAGE: torch.cat(covered).double().mean().item(),
    }


def duplicate_rate(fake_nn1: torch.Tensor, tau: float) -> float:
    """Share of generated samples with another generated sample closer than tau."""
    return (fake_nn1 < tau).double().mean().item()


def memorization(fake_to_train: torch.Tensor, heldout_median: Optional[float]) -> Optional[float]:
    """median(generated -> nearest training) / median(held-out real -> nearest training)."""
    if heldout_median is None or heldout_median <= 0:
        return None
    return float(fake_to_train.median()) / heldout_median


# --- classes --------------------------------------------------------------------------------------


def histogram(labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """Class shares (K,) of int64 labels, summing to 1."""
    assert labels.dtype == torch.int64 and labels.dim() == 1, (labels.dtype, labels.shape)
    counts = torch.bincount(labels.cpu(), minlength=num_classes)[:num_classes].double()
    return (counts / counts.sum().clamp(min=1)).numpy()


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p || q) in nats; 0 log 0 = 0; a class that q lacks is floored at 1e-12."""
    mask = p > 0
    return float(np.sum(p[mask] * (np.log(p[mask]) - np.log(np.maximum(q[mask], 1e-12)))))


def class_metrics(fake_labels: torch.Tensor, data_hist: np.ndarray) -> dict[str, float]:
    """class_coverage and class_kl of predicted labels against the data's class shares."""
    hist = histogram(fake_labels, len(data_hist))
    covered = hist >= CLASS_COVERED_SHARE * data_hist
    present = data_hist > 0
    return {keys.CLASS_COVERAGE: float(covered[present].mean()), keys.CLASS_KL: kl_divergence(hist, data_hist)}


def stacked_modes(fake_labels: torch.Tensor, num_modes: int = 1000) -> dict[str, float]:
    """PacGAN's Stacked MNIST score: modes with at least one sample, and KL to uniform."""
    hist = histogram(fake_labels, num_modes)
    return {keys.MODES: float((hist > 0).sum()), keys.MODES_KL: kl_divergence(hist, np.full(num_modes, 1.0 / num_modes))}


# --- the verdict ----------------------------------------------------------------------------------

# Never learned: samples in few real neighbourhoods (density, about 1 for real data; precision is
# less reliable here: in the small digits feature space uniform noise reaches 0.35), and hardly a
# real image within reach of a sample (recall).
NOT_LEARNED_DENSITY = 0.25
NOT_LEARNED_RECALL = 0.05
COLLAPSED_CLASS_COVERAGE = 0.3  # at most 3 of 10 classes
PARTIAL_CLASS_COVERAGE = 0.9
PARTIAL_CLASS_KL = 0.25
COLLAPSED_DUPLICATES = 0.5
PARTIAL_DUPLICATES = 0.1
COLLAPSED_RECALL = 0.05
PARTIAL_RECALL = 0.3


def collapse_verdict(m: dict, class_info_reliable: bool) -> str:
    """ok | partial | collapsed | not_learned, from the diagnostics in `m`.

    not_learned: density < 0.25 and recall < 0.05: the samples are nowhere near the data (noise, a
               blank or a constant image): the generator never learned, which is another failure
               than collapse, fixed another way (a learning rate that is too low, a discriminator
               that wins from the start); a collapsed generator's few modes are real-looking, so
               its density stays high (0.86 to 0.97 for one real class of digits or MNIST);
    collapsed: class_coverage <= 0.3, or duplicate_rate >= 0.5, or recall < 0.05: real-looking
               samples of few modes;
    partial:   class_coverage < 0.9, or class_kl > 0.25, or duplicate_rate >= 0.1, or recall < 0.3;
    ok otherwise. Class terms count only when the classes are reliable (labelled data and at least
    MIN_SAMPLES_PER_CLASS generated samples per class). The thresholds are checked by the planted
    cases in tests/dcgan/metrics/test_metrics_planted.py (held-out real: ok; one class: collapsed; half the
    classes: partial; noise and a constant image: not_learned)."""
    cc = m.get(keys.CLASS_COVERAGE) if class_info_reliable else None
    kl = m.get(keys.CLASS_KL) if class_info_reliable else None
    dup, recall, density = m[keys.DUPLICATE_RATE], m[keys.RECALL], m[keys.DENSITY]
    if density < NOT_LEARNED_DENSITY and recall < NOT_LEARNED_RECALL:
        return keys.NOT_LEARNED
    if (cc is not None and cc <= COLLAPSED_CLASS_COVERAGE) or dup >= COLLAPSED_DUPLICATES or recall < COLLAPSED_RECALL:
        return keys.COLLAPSED
    if (cc is not None and cc < PARTIAL_CLASS_COVERAGE) or (kl is not None and kl > PARTIAL_CLASS_KL) \
            or dup >= PARTIAL_DUPLICATES or recall < PARTIAL_RECALL:
        return keys.PARTIAL
    return keys.OK
