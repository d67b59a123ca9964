"""The Fréchet distance between two Gaussians, the number behind FID.

    FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

Why the eigenvalue route rather than `scipy.linalg.sqrtm(S1 @ S2)`: S1 S2 is not symmetric,
so sqrtm works on a general matrix, can return complex parts and loses accuracy when the
covariances are near-singular (as they are when N is close to the feature dimension).
tr((S1 S2)^(1/2)) equals the sum of square roots of the eigenvalues of the symmetric PSD matrix
S1^(1/2) S2 S1^(1/2), which `eigh` computes stably; tiny negative eigenvalues from rounding are
clipped to zero.
"""

from __future__ import annotations

import numpy as np


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric PSD matrix."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^(1/2)) for symmetric PSD S1, S2."""
    root1 = _sqrt_psd(sigma1)
    m = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(eig, 0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    assert mu1.shape == mu2.shape == (d,) and sigma1.shape == sigma2.shape == (d, d), (mu1.shape, sigma1.shape)
    assert np.all(np.isfinite(sigma1)) and np.all(np.isfinite(sigma2)), "non-finite covariance"
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt_product(sigma1, sigma2)
    return max(float(value), 0.0)  # rounding can leave -1e-12 for identical inputs
