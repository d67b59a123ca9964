"""Feature statistics: the mean and covariance of a feature set, the input of FID.

Accumulated in float64 as three sums (count, sum of features, sum of outer products), which
add up across batches and across DDP ranks: the result does not depend on the batch size or
on the world size, up to float64 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from dcgan.distributed import dist_info


@dataclass
class FeatureStats:
    """Running sums over feature rows; `mean_cov()` turns them into (mu, sigma)."""

    count: int
    total: torch.Tensor  # (D,) float64
    outer: torch.Tensor  # (D, D) float64

    @classmethod
    def empty(cls, dim: int) -> "FeatureStats":
        return cls(0, torch.zeros(dim, dtype=torch.float64), torch.zeros(dim, dim, dtype=torch.float64))

    def update(self, features: torch.Tensor) -> "FeatureStats":
        """Add a batch of rows (B, D)."""
        assert features.dim() == 2 and features.shape[1] == self.total.shape[0], features.shape
        x = features.detach().to("cpu", torch.float64)
        self.count += x.shape[0]
        self.total += x.sum(0)
        self.outer += x.T @ x
        return self

    def all_reduce(self) -> "FeatureStats":
        """Sum the three sums over DDP ranks (a no-op without a process group)."""
        if dist_info()[1] == 1:
            return self
        flat = torch.cat([torch.tensor([float(self.count)], dtype=torch.float64), self.total, self.outer.reshape(-1)])
        if dist.get_backend() == "nccl":
            flat = flat.cuda()
        dist.all_reduce(flat)
        flat = flat.cpu()
        d = self.total.shape[0]
        self.count = int(round(flat[0].item()))
        self.total, self.outer = flat[1 : 1 + d].clone(), flat[1 + d :].reshape(d, d).clone()
        return self

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """(mu (D,), sigma (D, D)) in float64; sigma is the unbiased sample covariance."""
        assert self.count >= 2, f"need at least 2 feature rows for a covariance, got {self.count}"
        mu = self.total / self.count
        sigma = (self.outer - self.count * torch.outer(mu, mu)) / (self.count - 1)
        sigma = (sigma + sigma.T) / 2  # exactly symmetric, whatever the rounding
        return mu.numpy(), sigma.numpy()


def feature_stats(features: torch.Tensor, batch_size: int = 4096) -> FeatureStats:
    """Statistics of one feature matrix (N, D), accumulated in batches (not all-reduced)."""
    stats = FeatureStats.empty(features.shape[1])
    for chunk in features.split(batch_size):
        stats.update(chunk)
    return stats
