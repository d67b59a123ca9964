"""The search on a real multi-node Ray cluster on this machine (`ray.cluster_utils.Cluster`: a head
that runs no trials and two 1-CPU worker nodes), as Ray's own tune/tests/test_cluster.py and
train/v2/tests/test_elastic_e2e.py run theirs. The search's driver is a separate process joined to
the cluster, as `ray job submit` runs it; the test owns the cluster and takes nodes away."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TINY = ["--image-size", "8", "--set", "ngf=8", "--set", "ndf=8", "--set", "eval_samples=200", "--set", "batch_size=32"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Head (0 CPUs, the dashboard) + two worker nodes of 1 CPU. Nodes inherit this process's
    environment: a fresh metrics cache of the module's, and no downloads."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        pytest.skip("another Ray is running in this process; one Ray instance per machine (docs/ray.md)")
    saved = {k: os.environ.get(k) for k in ("DCGAN_CACHE", "DCGAN_NO_DOWNLOAD")}
    os.environ.update(DCGAN_CACHE=str(tmp_path_factory.mktemp("cache")), DCGAN_NO_DOWNLOAD="1")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": True})
    c.workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    ray.init(address=c.address, logging_level="WARNING", log_to_driver=False)
    yield c
    ray.shutdown()
    c.shutdown()
    for k, v in saved.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def start_search(cluster, storage: Path, name: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "RAY_ADDRESS": cluster.address}
    return subprocess.Popen([sys.executable, "-m", "search.run", "--space", "smoke", "--scheduler", "fifo",
                             "--storage", str(storage), "--name", name, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def tune_results(exp: Path, trial_id: str) -> list[dict]:
    """Every result Tune received from the trial, restarts included (Ray's own result.json)."""
    path = exp / f"tune-{trial_id}" / "result.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def node_of(pid: int) -> str:
    """The node id of the Ray worker process `pid` (the state API keeps exited workers too)."""
    from ray.util.state import list_workers

    found = {w.pid: w.node_id for w in list_workers(detail=True, limit=10_000, raise_on_missing_output=False)}
    return found[pid]


def test_trials_run_on_both_worker_nodes_and_land_in_shared_storage(cluster, tmp_path):
    search = start_search(cluster, tmp_path, "multi", "--trials", "4", "--steps", "40", "--set", "eval_every=10", *TINY)
    out, _ = search.communicate(timeout=600)
    assert search.returncode == 0, out[-3000:]
    exp = tmp_path / "multi"
    trial_ids = sorted(p.name for p in (exp / "trials").iterdir())
    assert len(trial_ids) == 4
    for tid in trial_ids:  # every result, status and checkpoint in the storage both nodes share
        rows = [json.loads(line) for line in (exp / "trials" / tid / "results.jsonl").read_text().splitlines()]
        assert [r["step"] for r in rows] == [10, 20, 30, 40]
        assert json.loads((exp / "trials" / tid / "status.json").read_text())["status"] == "completed"
        assert sorted((exp / f"tune-{tid}").glob("checkpoint_*/state.pt"))
        assert len(list((exp / "trials" / tid / "samples").glob("step_*.png"))) == 4
    nodes = {node_of(tune_results(exp, tid)[0]["pid"]) for tid in trial_ids}
    assert nodes == {n.node_id for n in cluster.workers}, "trials did not run on both worker nodes"
    assert (exp / "best_config.json").exists() and (exp / "report.html").exists()


def test_a_node_lost_mid_trial_and_the_trial_continues_from_its_checkpoint(cluster, tmp_path):
    """Remove the worker node that runs a trial, in the middle of it, and add another: Tune restarts
    the trial on a live node from its last checkpoint (its steps never go back), and the search ends
    with every trial accounted for."""
    search = start_search(cluster, tmp_path, "fault", "--trials", "2", "--steps", "400", "--set", "eval_every=50",
                          "--confirm", "0",
                          "--image-size", "16", "--set", "ngf=16", "--set", "ndf=16", "--set", "eval_samples=200")
    exp = tmp_path / "fault"
    victim, deadline = None, time.time() + 300
    while victim is None and search.poll() is None and time.time() < deadline:
        for result_file in exp.glob("tune-*/result.json"):
            rows = tune_results(exp, result_file.parent.name[len("tune-"):])
            if rows and 100 <= rows[-1]["step"] < 400:
                victim = (result_file.parent.name[len("tune-"):], rows[-1]["step"], node_of(rows[-1]["pid"]))
                break
        time.sleep(0.1)
    assert victim is not None, "no trial reached step 100 while the search ran"
    trial_id, step_at_loss, node_id = victim
    cluster.remove_node(next(n for n in cluster.workers if n.node_id == node_id))
    cluster.workers = [n for n in cluster.workers if n.node_id != node_id] + [cluster.add_node(num_cpus=1)]
    out, _ = search.communicate(timeout=600)
    assert search.returncode == 0, out[-3000:]
    assert f"{trial_id}  lost after step" in out  # the console said so

    steps = [r["step"] for r in tune_results(exp, trial_id)]
    assert steps == sorted(set(steps)) and steps[-1] == 400, steps  # never back, never twice: no restart from 0
    restarted = [r for r in tune_results(exp, trial_id) if r["iterations_since_restore"] == 1][1:]
    assert restarted and restarted[0]["step"] > 50, "the trial was not restarted from a checkpoint"
    assert node_of(tune_results(exp, trial_id)[-1]["pid"]) != node_id
    for tid in (p.name for p in (exp / "trials").iterdir()):
        assert json.loads((exp / "trials" / tid / "status.json").read_text())["status"] == "completed"
    assert json.loads((exp / "experiment.json").read_text())["finished_at"] is not None
