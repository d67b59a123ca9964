"""The session's Ray for the search tests (tests/search/conftest.py starts it): how it starts, and
how a test gets all its CPUs back."""

from __future__ import annotations

import contextlib


def start_session_ray() -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=True, log_to_driver=False)


def every_cpu_free(when: str, placeable: bool = False) -> None:
    """Wait a minute at most for the session Ray's CPUs to be free; else start it again, with a
    warning (Ray can keep a CPU for good: search.cluster.settle). Also where a test resumes a search
    whose driver it killed: Ray frees the killed job's actors, and under load was seen to keep a CPU
    of theirs. `placeable` (after a killed driver, whose groups Ray removes as it may be placing
    them): also started again if a 1-CPU placement group is not placed within PLACE_S."""
    import warnings

    import ray

    from search.cluster import cpus_held

    if not ray.is_initialized():
        return
    if held := cpus_held(60):
        why = f"{held:g} of the session Ray's {ray.cluster_resources().get('CPU', 0):g} CPUs still held a minute {when}"
    elif placeable and not a_group_placed(PLACE_S):
        why = (f"every CPU of the session Ray free {when}, but a 1-CPU placement group not placed in {PLACE_S:g} s "
               "(ray-project/ray#64693: removing a group as Ray places it can stall the groups after it)")
    else:
        return
    warnings.warn(f"{why}; Ray started again")
    ray.shutdown()
    start_session_ray()


PLACE_S = 30.0  # a 1-CPU group on the free session Ray: placed in well under a second


def a_group_placed(timeout_s: float) -> bool:
    """Whether a 1-CPU placement group is placed on the session's Ray within `timeout_s` (then removed)."""
    import time

    from ray.util import placement_group, placement_group_table, remove_placement_group

    group, deadline = placement_group([{"CPU": 1}]), time.monotonic() + timeout_s
    try:  # (the GCS's word, polled: group.ready() would start a worker process to say it)
        while not (placed := placement_group_table(group)["state"] == "CREATED") and time.monotonic() < deadline:
            time.sleep(0.1)
        return placed
    finally:
        remove_placement_group(group)


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
    every_cpu_free("after the driver was killed", placeable=True)


def ray_state() -> str:
    """One line: the session Ray's free CPUs and its placement groups by state."""
    from collections import Counter

    import ray
    from ray.util import placement_group_table

    total, free = ray.cluster_resources().get("CPU", 0), ray.available_resources().get("CPU", 0)
    groups = Counter(pg["state"] for pg in placement_group_table().values())
    return f"{free:g} of {total:g} CPUs free, placement groups {dict(sorted(groups.items())) or 'none'}"


def where(thread_id: int, frames: int = 4) -> str:
    """The innermost `frames` frames a thread is in, innermost first, and this project's innermost."""
    import os
    import sys
    import traceback
    from pathlib import Path

    stack = traceback.extract_stack(sys._current_frames()[thread_id])
    root = str(Path(__file__).resolve().parents[2])
    ours = [f for f in stack if f.filename.startswith(root) and "site-packages" not in f.filename]
    show = stack[-frames:][::-1] + ([ours[-1]] if ours and ours[-1] not in stack[-frames:] else [])
    return " < ".join(f"{os.path.basename(f.filename)}:{f.lineno} {f.name}" for f in show)


class Hung(Exception):
    """What a watchdog raises: its message says what Ray held and where the block was."""


@contextlib.contextmanager
def watchdog(seconds: float, what: str, raise_after: bool = True):
    """A block that may hang (a search on the session's Ray) failed after `seconds` with one line that
    says what Ray held and where this thread was: the exception is raised in this thread as Python
    runs on (Tune's loop polls), so the failure's summary line, the part of a CI log that is kept,
    says why, where pytest-timeout's says only "Timeout". `raise_after`: raised again at the block's
    end if a call inside caught it (Tune's own handlers); a fixture's block (its yield), which does
    not see the test's exception, passes False."""
    import ctypes
    import threading

    why: list[str] = []
    hung = type("Hung", (Hung,), {"__init__": lambda self: Hung.__init__(self, why[0] if why else f"{what} hung")})

    thread = threading.get_ident()

    def fire() -> None:
        try:
            state = ray_state()
        except Exception as e:  # (a Ray that does not answer says why too)
            state = f"Ray's state unread ({e!r})"
        why.append(f"{what} ran past {seconds:g} s: {state}; at {where(thread)}")
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread), ctypes.py_object(hung))

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
    if why and raise_after:
        raise hung()
