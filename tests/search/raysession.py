"""The session's Ray for the search tests (tests/search/conftest.py starts it): how it starts, and
how a test gets all its CPUs back."""

from __future__ import annotations


def start_session_ray() -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=True, log_to_driver=False)


def every_cpu_free(when: str) -> None:
    """Wait a minute at most for the session Ray's CPUs to be free; else start it again, with a
    warning (Ray can keep a CPU for good: search.cluster.settle). Also where a test resumes a search
    whose driver it killed: Ray frees the killed job's actors, and under load was seen to keep a CPU
    of theirs."""
    import warnings

    import ray

    from search.cluster import cpus_held

    if not ray.is_initialized():
        return
    if held := cpus_held(60):
        warnings.warn(f"{held:g} of the session Ray's {ray.cluster_resources().get('CPU', 0):g} CPUs still held a "
                      f"minute {when}; Ray started again")
        ray.shutdown()
        start_session_ray()


def kill_search_at(ray_session, args: list[str], exp, step: int) -> None:
    """Run `python -m search.run ARGS` on the session Ray, SIGKILL its driver once a trial of
    experiment folder `exp` has a row at `step` or later (5 minutes at most), and wait for the
    session's CPUs (every_cpu_free)."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    driver = subprocess.Popen([sys.executable, "-m", "search.run", *args], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not any(
                any(json.loads(x)["step"] >= step for x in f.read_text().splitlines() if x.strip())
                for f in exp.glob("trials/*/results.jsonl")):
            time.sleep(0.2)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    every_cpu_free("after the driver was killed")
