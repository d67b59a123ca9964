"""The Ray cluster a search runs on: reach it (or start a local one) and size the search to it."""

from __future__ import annotations

import logging
import socket
import sys
import time
from typing import Optional

from search.checks import SearchError
from search.protocol import Resources

AUTOSCALING_CONCURRENCY = 8  # trials at once on a cluster that has no room for one yet; --concurrency sets it
SETTLE_S = 10.0  # how long a phase's trial processes may take to give their CPUs back (seen: 0.5-2 s)


def check_address(address: Optional[str], timeout_s: float = 3.0) -> None:
    """Fail fast on an unreachable cluster instead of waiting on it."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SearchError(f"--address must be HOST:PORT or ray://HOST:PORT, got '{address}'")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise SearchError(f"cannot reach Ray at {address} ({e.strerror or e}); start it with `ray start --head` "
                          "or drop --address (and RAY_ADDRESS) for a local Ray") from None


def connect_ray(address: Optional[str], verbose: bool = False) -> bool:
    """Reuse an initialised Ray (tests share one); else start or join one. True if we started it.

    Quiet unless `verbose`: Ray's INFO lines off, and the workers' output (every trial's own
    progress lines, Ray Train's chatter) stays in the worker logs; warnings and errors still show."""
    import ray

    if ray.is_initialized():
        return False
    check_address(address)
    try:
        import ray.dashboard.optional_deps  # noqa: F401  (ray[default]'s: aiohttp, ...)
        dashboard = True
    except ImportError as e:  # Ray without them refuses include_dashboard=True; None starts its head --minimal
        print(f"note: no Ray dashboard ({e.name or e} is not installed; pip install 'ray[default]' brings it)",
              file=sys.stderr)
        dashboard = None
    try:
        ray.init(address=address, include_dashboard=dashboard,  # "local": a new Ray even beside another
                 log_to_driver=verbose, logging_level=logging.INFO if verbose else logging.WARNING)
    except ConnectionError as e:
        raise SearchError(f"cannot connect to Ray ({e}); check --address") from None
    return True


def default_concurrency(resources: Resources, trials: int) -> int:
    """As many trials as the cluster's CPUs (or GPUs) hold at once, at most `trials`. A cluster with
    no room for one yet (GPU workers that scale from 0, cluster.yaml) gets AUTOSCALING_CONCURRENCY:
    the autoscaler adds nodes as those trials ask for them."""
    import ray

    total = ray.cluster_resources()
    fits = total.get("CPU", 0) // (resources.workers * resources.cpus_per_worker)
    if resources.gpus_per_worker:
        fits = min(fits, total.get("GPU", 0) // (resources.workers * resources.gpus_per_worker))
    if fits < 1:
        return min(trials, AUTOSCALING_CONCURRENCY)
    return int(min(fits, trials))


def cpus_held(wait_s: float) -> float:
    """The CPUs of the Ray this process is connected to that are still held after waiting up to `wait_s`
    seconds for every one to be free; 0 once they all are."""
    import ray

    total, deadline = ray.cluster_resources().get("CPU", 0), time.monotonic() + wait_s
    while (held := total - ray.available_resources().get("CPU", 0)) > 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    return max(held, 0.0)


def settle(address: Optional[str], started: bool, verbose: bool = False, wait_s: float = SETTLE_S) -> None:
    """Between a search's phases (its trials, then its confirmation): the CPUs of the local Ray this
    search started, free again. Ray 2.60 can keep a CPU for good when a placement group is removed
    while the GCS places it (ray-project/ray#64693; Tune removes groups it no longer needs): the next
    phase would train one trial fewer at a time to its end (on 2 CPUs, one at a time; docs/ray.md).
    Such a Ray is started again, the signal handlers kept (ray.init sets SIGTERM's to its own exit,
    which would end the confirmation at `ray job stop` without saving it: search.interrupt). A Ray the
    search joined (a cluster, a test's session) is left as it is."""
    import signal
    import threading

    import ray

    from search.interrupt import STOP_SIGNALS

    node = getattr(ray._private.worker, "_global_node", None)  # (Ray's own record: a head this process started)
    if not (started and ray.is_initialized() and getattr(node, "head", False)) or not (held := cpus_held(wait_s)):
        return
    if verbose:
        print(f"note: Ray kept {held:g} CPU(s) after the trials ended (ray-project/ray#64693); starting it again")
    main = threading.current_thread() is threading.main_thread()  # (where Python lets handlers be set)
    handlers = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} if main else {}
    ray.shutdown()
    connect_ray(address, verbose)
    for signum, handler in handlers.items():
        if handler is not None:  # (None: one set outside Python, which cannot be set back from here)
            signal.signal(signum, handler)
