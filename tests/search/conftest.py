"""One local Ray for every search test (two Ray instances on one machine stall the second
trial's placement group; see DESIGN.md), with the dashboard on, and tiny configs."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_session():
    """A 2-CPU local Ray shared by the whole test session; search.run reuses it."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=True, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def fid_available() -> bool:
    """Whether dcgan.metrics gives an FID yet (another package; the search works without it)."""
    from dcgan.config import TrainConfig
    from dcgan.data import load_splits
    from dcgan.metrics import build_evaluator
    import torch

    cfg = TrainConfig(image_size=8, ngf=8, ndf=8, eval_samples=200)
    return build_evaluator(cfg, load_splits(cfg), torch.device("cpu")) is not None


@pytest.fixture(scope="session")
def needs_fid():
    if not fid_available():
        pytest.skip("dcgan.metrics.build_evaluator gives no FID yet")
