"""A search's faults, each in a `search.run` process that starts its own Ray (`--address local`), as a
user's would: a full disk (injected with dcgan.files.FAULT_ENV, which the Ray workers inherit from the
driver) and the resume after it; a trial's process killed; Ray without its dashboard's packages.
docs/cluster.md lists the faults and what the user does about each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcgan.files import EXIT_DISK_FULL, FAULT_ENV

pytestmark = pytest.mark.slow

TINY = ["--space", "smoke", "--scheduler", "fifo", "--concurrency", "1", "--confirm", "0", "--address", "local",
        "--steps", "40", "--set", "eval_every=10", "--image-size", "8", "--set", "ngf=8", "--set", "ndf=8",
        "--set", "eval_samples=200", "--set", "batch_size=32"]


@pytest.fixture
def env(tmp_path_factory):
    """The search's environment: its own metrics cache, no downloads, no RAY_ADDRESS."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return {**env, "DCGAN_CACHE": str(tmp_path_factory.mktemp("cache")), "DCGAN_NO_DOWNLOAD": "1"}


def search(storage: Path, name: str, *args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "search.run", "--storage", str(storage), "--name", name, *TINY, *args],
                          env=env, capture_output=True, text=True, timeout=timeout)


def contract_files(exp: Path) -> dict[str, bytes]:
    """Every file of the experiment's contract (not Ray Tune's own, nor the study)."""
    files = [exp / "experiment.json", exp / "best_config.json", *exp.glob("trials/*/*.json*")]
    return {str(p.relative_to(exp)): p.read_bytes() for p in files if p.exists()}


def status_of(exp: Path, trial_id: str) -> str | None:
    path = exp / "trials" / trial_id / "status.json"
    return json.loads(path.read_text())["status"] if path.exists() else None


@pytest.mark.parametrize("fault", ["50:{counter}", "8:{counter}:results.jsonl"], ids=["trial", "driver"])
def test_a_full_disk_ends_the_search_in_one_line_and_resume_goes_on(tmp_path, env, fault):
    """The disk fills once the first trial has ended, in a write of a trial's process (its sample
    grid) or of the driver's (a results row of the second trial): the search stops with one line
    that names the file and the command to go on with (exit 3), every file it wrote parses, nothing
    is half-written beside it; the resume with room on the disk ends the search, the trials that had
    ended untouched."""
    counter = tmp_path / "writes"
    full = search(tmp_path, "full", "--trials", "3", env={**env, FAULT_ENV: fault.format(counter=counter)})
    exp = tmp_path / "full"
    errors = [ln for ln in full.stderr.splitlines() if ln.startswith("error:")]
    assert full.returncode == EXIT_DISK_FULL, full.stdout[-2000:] + full.stderr[-3000:]
    assert len(errors) == 1 and "Traceback" not in full.stderr, full.stderr[-3000:]
    assert errors[0].startswith("error: the disk is full: writing ") and " GB free on it now)" in errors[0]
    resume = f"python -m search.run --space smoke --name full --storage {tmp_path} --resume"
    assert errors[0].endswith(f"free some space, then go on with: {resume}"), errors[0]
    before = contract_files(exp)
    for name, data in before.items():  # whole files only, every one of them readable
        if name.endswith(".jsonl"):
            [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        else:
            assert json.loads(data) is not None, name
    assert not list(exp.rglob("*.tmp")), "a half-written file was left beside its target"
    ended = [p.name for p in (exp / "trials").iterdir() if status_of(exp, p.name) == "completed"]
    assert ended, f"the disk filled before any trial ended (fault {fault}, {counter.stat().st_size} writes)"

    again = subprocess.run([sys.executable, "-m", *resume.split()[2:], "--address", "local"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    after = contract_files(exp)
    for tid in ended:  # a trial that had ended is not run again
        for name in ("params.json", "config.json", "results.jsonl", "status.json"):
            assert after[f"trials/{tid}/{name}"] == before[f"trials/{tid}/{name}"], (tid, name)
    trials = sorted(p.name for p in (exp / "trials").iterdir())
    assert len(trials) == 3 and all(status_of(exp, t) == "completed" for t in trials)
    for tid in trials:
        steps = [json.loads(line)["step"] for line in (exp / "trials" / tid / "results.jsonl").read_text().splitlines()]
        assert steps == [10, 20, 30, 40], (tid, steps)
    assert (exp / "best_config.json").exists() and (exp / "report.html").exists()


def test_a_trial_process_killed_is_restarted_and_its_rows_stay_whole(tmp_path, env):
    """SIGKILL the process that runs a trial (the OOM killer, a user's `kill -9`) after its first
    evaluation: Tune restarts the trial from its checkpoint, and its results hold each step once."""
    driver = subprocess.Popen([sys.executable, "-m", "search.run", "--storage", str(tmp_path), "--name", "killed",
                               *TINY, "--trials", "2", "--steps", "200", "--set", "eval_every=20"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    exp, victim, deadline = tmp_path / "killed", None, time.time() + 240
    while victim is None and driver.poll() is None and time.time() < deadline:
        for result_file in exp.glob("tune-*/result.json"):
            rows = [json.loads(line) for line in result_file.read_text().splitlines() if line.strip()]
            if rows and 40 <= rows[-1]["step"] < 160:
                victim = (result_file.parent.name[len("tune-"):], rows[-1]["pid"])
                break
        time.sleep(0.05)
    assert victim is not None, "no trial reached step 40 while the search ran"
    trial_id, pid = victim
    os.kill(pid, signal.SIGKILL)
    out, _ = driver.communicate(timeout=300)
    assert driver.returncode == 0, out[-3000:]
    steps = [json.loads(line)["step"] for line in (exp / "trials" / trial_id / "results.jsonl").read_text().splitlines()]
    assert steps == list(range(20, 201, 20)), steps  # each step once, in order, to the end
    assert status_of(exp, trial_id) == "completed"
    assert (exp / "best_config.json").exists()


def test_ray_without_its_dashboard_packages_still_runs_the_search(tmp_path, env):
    """Ray installed without ray[default]'s dashboard packages (aiohttp_cors missing: on PYTHONPATH, a
    package of that name that fails to import, in the driver and every Ray process): one note line,
    and the search runs."""
    fake = tmp_path / "no-dashboard" / "aiohttp_cors"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'aiohttp_cors'\", name='aiohttp_cors')\n")
    path = os.pathsep.join([str(fake.parent), *filter(None, [env.get("PYTHONPATH")])])
    done = search(tmp_path, "minimal", "--trials", "1", env={**env, "PYTHONPATH": path})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "note: no Ray dashboard (aiohttp_cors is not installed; pip install 'ray[default]' brings it)" in done.stderr
    assert status_of(tmp_path / "minimal", next((tmp_path / "minimal" / "trials").iterdir()).name) == "completed"
