"""One local Ray for every search test (two Ray instances on one machine stall the second
trial's placement group; docs/ray.md), with the dashboard on, and tiny configs."""

from __future__ import annotations

import contextlib
import os

import pytest

from raysession import every_cpu_free, start_session_ray, watchdog

WATCHDOG_MARGIN_S = 60  # a hung search test's own failure, this long before pytest-timeout's

# Credentials for the S3 server on loopback (moto), set before Ray starts so that its workers have
# them too; and no look-up of an EC2 instance's metadata, which has no network here.
S3_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true"}


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    """A 2-CPU local Ray shared by the whole test session; search.run reuses it.

    The metrics cache is a fresh folder of the session, set before Ray starts so that every
    Ray worker (they inherit the raylet's environment) trains and reads the same classifier,
    and nothing is left in the user's ~/.cache; likewise the S3 test server's credentials."""
    import ray

    saved = {k: os.environ.get(k) for k in ("DCGAN_CACHE", "DCGAN_NO_DOWNLOAD", *S3_TEST_ENV)}
    os.environ["DCGAN_CACHE"] = str(tmp_path_factory.mktemp("search-cache"))
    os.environ["DCGAN_NO_DOWNLOAD"] = "1"
    os.environ.update(S3_TEST_ENV)
    started = not ray.is_initialized()
    if started:
        start_session_ray()
    yield ray
    if started:
        ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(autouse=True)
def ray_freed_after_each_test(request):
    """After a test that used the session's Ray, every CPU of it is free again within a minute (a
    search's actors end as Tune stops them); where one is not, the session's Ray starts again, with
    a warning that names the test. Under load (the suite's other process busy), Ray's raylet was
    seen to keep a CPU that no actor, task or placement group held after a PBT search had ended
    (Ray 2.60; search.cluster.settle says why), and the next test that needs both CPUs, a 2-worker
    trial, waited for it forever. A search that started its own Ray starts it again between its
    phases where it has to; one that joined the session's leaves it to this fixture.

    Such a test also fails WATCHDOG_MARGIN_S before pytest-timeout would end it, with one line
    saying what Ray held and where the test was (raysession.watchdog): a CI log keeps that line."""
    if "ray_session" not in request.fixturenames:
        yield
        return
    marker = request.node.get_closest_marker("timeout")
    limit = float(marker.args[0] if marker and marker.args else request.config.getini("timeout") or 0)
    with watchdog(limit - WATCHDOG_MARGIN_S, request.node.nodeid, raise_after=False) if limit > WATCHDOG_MARGIN_S \
            else contextlib.nullcontext():
        yield
    every_cpu_free(f"after {request.node.nodeid}")


@pytest.fixture
def one_thread():
    """fn -> fn() on the one CPU thread a 1-CPU trial has (Ray sets OMP_NUM_THREADS=1 for it): the
    same float sums as the trial, so a run in this process ends at the trial's FID to the last digit
    (with 2 threads, at 8 px and 200 steps, about 10% away)."""
    import torch

    def run(fn):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn()
        finally:
            torch.set_num_threads(threads)

    return run


@pytest.fixture
def s3_storage(ray_session, s3_bucket):
    """s3_bucket, for a search on this session's Ray (whose workers have the bucket's credentials)."""
    return s3_bucket


@pytest.fixture
def s3_bucket(monkeypatch):
    """An S3-compatible server on loopback (moto) holding an empty bucket; yields the storage URI,
    with `endpoint_override` in it as Ray's own tests do."""
    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    for k, v in S3_TEST_ENV.items():
        monkeypatch.setenv(k, v)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    uri = f"s3://dcgan-test/exps?endpoint_override=http://{host}:{port}"
    fs, _ = pafs.FileSystem.from_uri(f"{uri}&allow_bucket_creation=true")
    fs.create_dir("dcgan-test")
    yield uri
    server.stop()
