"""search.cluster.settle, between a search's phases: a local Ray that keeps a CPU after the trials
have ended is started again; one that gives it back in time, or one the search joined, is left as it
is (a cluster's, joined: the same rule, Ray's record of a head this process started, not tested
here). The held CPU is planted: an actor that keeps it, standing for the one Ray 2.60 can keep for good
(ray-project/ray#64693), which no test can bring about on purpose."""

from __future__ import annotations

import signal

from raysession import start_session_ray

from search.cluster import cpus_held, settle


def holder():
    import ray

    @ray.remote(num_cpus=1)
    class Holder:
        def ping(self) -> int:
            return 1

    h = Holder.remote()
    ray.get(h.ping.remote())
    return h


def test_a_cpu_held_past_the_wait_starts_the_local_ray_again(ray_session):
    """... and the search's own SIGTERM handler (search.interrupt's graceful stop) outlives ray.init,
    which sets its own."""
    ray = ray_session
    h = holder()
    gcs = ray.get_runtime_context().gcs_address

    def graceful(signum, frame):  # stands for search.interrupt's on_stop
        pass

    before = signal.signal(signal.SIGTERM, graceful)
    try:
        settle(None, started=False, wait_s=0.5)  # a Ray the search found initialised (here, the session's)
        assert ray.get_runtime_context().gcs_address == gcs and cpus_held(0) == 1
        settle(None, started=True, wait_s=1.0)  # the local Ray the search started
        assert ray.is_initialized() and ray.get_runtime_context().gcs_address != gcs
        assert ray.cluster_resources().get("CPU", 0) >= 1 and cpus_held(0) == 0
        assert signal.getsignal(signal.SIGTERM) is graceful
        del h
    finally:
        signal.signal(signal.SIGTERM, before)
        ray.shutdown()
        start_session_ray()


def test_cpus_given_back_within_the_wait_leave_ray_as_it_is(ray_session):
    ray = ray_session
    h = holder()
    gcs = ray.get_runtime_context().gcs_address
    assert cpus_held(0) == 1
    ray.kill(h)  # its CPU comes back within the wait
    settle(None, started=True, wait_s=30.0)
    assert ray.get_runtime_context().gcs_address == gcs and cpus_held(0) == 0
