"""One local Ray for every search test (two Ray instances on one machine stall the second
trial's placement group; see DESIGN.md), with the dashboard on, and tiny configs."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    """A 2-CPU local Ray shared by the whole test session; search.run reuses it.

    The metrics cache is a fresh folder of the session, set before Ray starts so that every
    Ray worker (they inherit the raylet's environment) trains and reads the same classifier,
    and nothing is left in the user's ~/.cache."""
    import ray

    saved = {k: os.environ.get(k) for k in ("DCGAN_CACHE", "DCGAN_NO_DOWNLOAD")}
    os.environ["DCGAN_CACHE"] = str(tmp_path_factory.mktemp("search-cache"))
    os.environ["DCGAN_NO_DOWNLOAD"] = "1"
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=True, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
