"""One tiny real search with --mlflow and --wandb (offline) on, read back by TensorBoard's, MLflow's
and W&B's own readers: a run per trial and confirmation run, the FIDs of results.jsonl at their
steps, the grids, and the winner tagged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from readback import fid_history, mlflow_runs, tensorboard_runs, wandb_env, wandb_runs
from search import run as search_run
from search.tracking import TENSORBOARD

pytestmark = pytest.mark.slow

NAME = "tracked"
TINY = ["--image-size", "8", "--set", "ngf=8", "--set", "ndf=8", "--set", "eval_samples=200", "--set", "batch_size=32",
        "--steps", "40", "--set", "eval_every=20"]


@pytest.fixture(scope="module")
def tracked(ray_session, tmp_path_factory):
    """(experiment folder, MLflow URI, W&B folder) of one finished search: 2 trials, FIFO, the top
    trial and the baseline confirmed with one other seed (at 40 steps nothing learns: the winner may
    be named by the leaderboard, unconfirmed)."""
    pytest.importorskip("mlflow")
    pytest.importorskip("wandb")
    tmp = tmp_path_factory.mktemp("tracked")
    env = wandb_env(tmp / "wandb")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    mlflow = f"sqlite:///{tmp}/mlflow.db"
    try:
        argv = ["--space", "smoke", "--trials", "2", "--scheduler", "fifo", "--confirm", "1", "--confirm-seeds", "1",
                "--storage", str(tmp), "--name", NAME, "--mlflow", mlflow, "--wandb", "dcgan-test", *TINY]
        assert search_run.main(argv) == 0
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    return tmp / NAME, mlflow, tmp / "wandb"


def fids_of(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    return {r["step"]: r["fid"] for r in rows}


def runs_of(exp: Path) -> dict[str, Path]:
    """{trials/<id> or confirm/<name>: its folder}."""
    return {f"{d.parent.name}/{d.name}": d for sub in ("trials", "confirm") for d in sorted((exp / sub).iterdir())}


def test_tensorboard_events_of_every_run_under_the_experiment(tracked):
    exp, _, _ = tracked
    runs = runs_of(exp)
    assert len(runs) in (3, 4)  # 2 trials; the top one and the baseline (one trial or two) confirmed
    events = tensorboard_runs(exp)  # tensorboard --logdir <experiment> sees these and nothing else
    assert sorted(events) == sorted(f"{TENSORBOARD}/{key}" for key in runs)
    for key, folder in runs.items():
        acc = events[f"{TENSORBOARD}/{key}"]
        assert fid_history(acc) == pytest.approx(fids_of(folder)) and len(fids_of(folder)) == 2
        assert [i.step for i in acc.Images("samples")] == [20, 40]
    assert not list(exp.glob("tune-*/events.out.tfevents.*"))  # Ray's TBX logger is off...
    assert list(exp.glob("tune-*/result.json"))  # ...its JSON logger is kept


def test_mlflow_has_a_run_per_trial_with_params_fids_and_the_winner(tracked):
    from mlflow.tracking import MlflowClient

    exp, uri, _ = tracked
    runs, client = mlflow_runs(uri, NAME), MlflowClient(uri)
    assert sorted(runs) == sorted(runs_of(exp))
    winner = json.loads((exp / "best_config.json").read_text())["trial_id"]
    for key, folder in runs_of(exp).items():
        run = runs[key]
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "fid")}
        assert history == pytest.approx(fids_of(folder))
        params = json.loads((folder / "params.json").read_text())
        assert run.data.params == {k: str(v) for k, v in params.items()}
        assert run.info.status == "FINISHED" and run.data.tags["status"] == "completed"
        assert len(client.list_artifacts(run.info.run_id, "samples")) == 2
        is_winner = folder.name == winner or folder.name.startswith(f"{winner}-seed")
        assert (run.data.tags.get("winner") == "true") == is_winner, key
    assert all(runs[key].data.tags["kind"] == "confirmation" for key in runs_of(exp) if key.startswith("confirm/"))


def test_wandb_has_a_run_per_trial_with_fids_and_the_winner(tracked):
    exp, _, wandb_dir = tracked
    from search.trackers import wandb_run_id
    from search.tracking import RunInfo

    folders = wandb_runs(wandb_dir)
    winner = json.loads((exp / "best_config.json").read_text())["trial_id"]
    first = {}
    for run in folders:
        first.setdefault(run["id"], run)
    for key, folder in runs_of(exp).items():
        run = first[wandb_run_id(RunInfo(NAME, *key.split("/")))]
        assert {h["_step"]: h["fid"] for h in run["history"] if "fid" in h} == pytest.approx(fids_of(folder))
        assert run["summary"]["status"] == "completed"
    tagged = [r for r in folders if "winner" in r["tags"]]
    winners = [key for key, folder in runs_of(exp).items()  # its trial, and its confirmation runs if any
               if folder.name == winner or folder.name.startswith(f"{winner}-seed")]
    assert {r["id"] for r in tagged} == {wandb_run_id(RunInfo(NAME, *key.split("/"))) for key in winners}
    assert len(folders) == len(runs_of(exp)) + len(tagged)  # a folder per run, and one per winner's tag (offline)
