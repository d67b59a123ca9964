"""`search.run --dry-run` (and run_search(dry_run=True)): the plan is printed, nothing starts, nothing
is written. In a subprocess, so that this session's Ray (tests/search/conftest.py) cannot hide one
the dry run would start."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

ARGS = ["--space", "ratio_lr", "--trials", "4", "--steps", "100", "--confirm", "1", "--confirm-seeds", "1",
        "--concurrency", "2", "--name", "planned"]
RUN = """
import json, sys, ray
from search import run_search
from search.run import main
code = main(sys.argv[1:])
assert run_search(space="ratio_lr", dry_run=True, trials=4, steps=100, confirm=1, confirm_seeds=1, concurrency=2,
                  name="planned") is None
print(json.dumps({"code": code, "ray": ray.is_initialized()}))
"""


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def dry_run(cwd: Path, *args: str) -> tuple[dict, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")]),
           "DCGAN_CACHE": str(cwd / "cache"), "DCGAN_NO_DOWNLOAD": "1"}
    env.pop("RAY_ADDRESS", None)
    out = subprocess.run([sys.executable, "-c", RUN, *ARGS, *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    *plan, last = out.stdout.strip().splitlines()
    return json.loads(last), "\n".join(plan)


def test_dry_run_prints_the_plan_and_starts_and_writes_nothing(tmp_path):
    sessions = set(glob.glob("/tmp/ray/session_*"))
    before = snapshot(tmp_path)
    result, printed = dry_run(tmp_path, "--dry-run")
    assert result == {"code": 0, "ray": False}
    assert set(glob.glob("/tmp/ray/session_*")) == sessions  # no Ray started
    assert snapshot(tmp_path) == before  # no experiment, no cache, nothing
    assert printed.count("dry run of search planned") == 2  # the CLI's and run_search's
    plan = printed.split("\ndry run")[0]
    for line in ("space       ratio_lr", "lr_g          log-uniform in [0.0001, 0.01]",
                 "d_steps_per_g one of 1, 2, 3, 5", "trials      4 of 100 steps on digits 16px",
                 "confirm     the top 1 and the baseline, 1 new seed(s) each: at most 2 runs of 100 steps",
                 "budget      at most 600 trial-steps: 400 in the search + 200 in the confirmation",
                 "per trial   1 worker(s) x (1 CPU, 0 GPU)", "at once     2 trial(s): --concurrency",
                 f"storage     {tmp_path / 'experiments'}", f"experiment  {tmp_path / 'experiments' / 'planned'}",
                 "wall time   cannot estimate: no earlier experiment"):
        assert line in plan, plan


def test_dry_run_estimates_from_an_earlier_experiment_like_it(tmp_path, synthetic):
    """An earlier experiment in the same storage with the same trials, resources and concurrency:
    its trials took 30 s per 200 steps (0.15 s a trial-step), so 600 trial-steps 2 at a time take 45 s."""
    from experiment import Experiment
    from search.plan import plan_search
    from search.run import build_parser

    planned = plan_search(build_parser().parse_args(ARGS + ["--storage", str(tmp_path / "experiments")]))
    earlier = Experiment(str(synthetic.write_experiment(tmp_path / "experiments", name="earlier", optuna_db=False)))
    earlier.update_info(fixed=planned.fixed, workers_per_trial=1, cpus_per_worker=1.0, gpus_per_worker=0.0,
                        concurrency=2)
    before = snapshot(tmp_path)
    result, printed = dry_run(tmp_path, "--dry-run")
    assert result["code"] == 0 and snapshot(tmp_path) == before
    assert "wall time   about 45s at most: 600 trial-steps, 2 at a time, at 0.15 s a trial-step" in printed, printed
    assert "earlier" in printed
    # other resources or another concurrency say nothing about this search's speed
    earlier.update_info(concurrency=4)
    _, printed = dry_run(tmp_path, "--dry-run")
    assert "wall time   cannot estimate" in printed, printed


def test_dry_run_refuses_bad_input_like_the_search(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-m", "search.run", "--space", "ratio-lr", "--dry-run"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "unknown space 'ratio-lr'" in out.stderr and not any(tmp_path.iterdir())


def test_dry_run_of_a_population_names_its_members_control_and_budget(tmp_path):
    """pbt: the population (what runs at once, at least 4), the paper's setting beside it, and a
    budget of (population + 1) members of the full steps; planned in this process, nothing started."""
    from search.dryrun import describe_plan
    from search.plan import plan_search
    from search.run import build_parser

    args = build_parser().parse_args(["--space", "ratio_lr", "--scheduler", "pbt", "--population", "6", "--steps", "400",
                                      "--concurrency", "2", "--confirm", "0", "--storage", str(tmp_path)])
    text = describe_plan(plan_search(args))
    assert "population  6 members drawn at random from the space and the baseline beside them" in text
    assert "trials      7 of 400 steps" in text and "at most 2,800 trial-steps" in text
    assert "packs" not in text
    args.pack = 4
    assert "packs of at most 4, each trained as one model in one trial" in describe_plan(plan_search(args))
    assert list(tmp_path.iterdir()) == []
