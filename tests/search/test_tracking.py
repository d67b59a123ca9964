"""The trackers (search/tracking.py, search/trackers.py) on their own, no Ray: what each writes,
read back with the tool's own reader; and the flags that ask for them."""

from __future__ import annotations

import io
import pickle

import pytest
from PIL import Image

from readback import fid_history, mlflow_runs, tensorboard_runs, wandb_env, wandb_runs
from search import run as search_run
from search.tracking import SCALARS, TENSORBOARD, RunInfo, Tracker, Trackers, TensorBoard, tag_winner
from experiment.layout import Experiment

SEARCH = "track-test"
TRIAL = RunInfo(SEARCH, "trials", "t001", {"lr_g": 3e-4, "lr_d": 1e-4}, {"lr_g": 3e-4, "lr_d": 1e-4, "steps": 100})
CONFIRM_RUN = RunInfo(SEARCH, "confirm", "t001-seed1", {"lr_g": 3e-4, "lr_d": 1e-4, "seed": 1}, {"seed": 1})


def grid(shade: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (20, 12), shade).save(buf, format="PNG")
    return buf.getvalue()


def row(step: int, fid: float, status: str = "running") -> dict:
    return {"step": step, "status": status, "d_loss": 0.7, "g_loss": 1.5, "d_real": 1.0, "d_fake": -1.0, "fid": fid,
            "extractor": "digits-classifier", "n": 200, "reference": "digits/train", "precision": 0.5,
            "recall": None, "collapse": "ok", "time_s": 3.0}


def test_tensorboard_has_the_projects_names_at_the_training_step_and_the_grids(tmp_path):
    tb = TensorBoard(Experiment(str(tmp_path / "exp")))
    tb.log(TRIAL, row(50, 80.0), grid(10))
    tb.log(TRIAL, row(100, 60.0, "completed"), grid(200))
    tb.end(TRIAL, "completed")
    runs = tensorboard_runs(tmp_path / "exp")
    assert list(runs) == [f"{TENSORBOARD}/trials/t001"]
    acc = runs[f"{TENSORBOARD}/trials/t001"]
    scalars = set(acc.Tags()["scalars"])
    assert scalars == {"fid", "d_loss", "g_loss", "d_real", "d_fake", "n", "precision", "time_s"}  # None: left out
    assert scalars <= set(SCALARS)
    assert fid_history(acc) == {50: 80.0, 100: 60.0}
    images = acc.Images("samples")
    assert [i.step for i in images] == [50, 100] and (images[0].width, images[0].height) == (20, 12)
    decoded = Image.open(io.BytesIO(images[1].encoded_image_string))
    assert decoded.getpixel((3, 3)) == (200, 200, 200)


def test_tensorboard_of_a_restarted_trial_purges_the_steps_trained_again(tmp_path):
    """A --resume (a new driver: the tracker pickled by Tune and restored) trains from step 50 again."""
    exp = Experiment(str(tmp_path / "exp"))
    tb = TensorBoard(exp)
    tb.log(TRIAL, row(50, 80.0), None)
    tb.log(TRIAL, row(100, 60.0), None)
    tb.close()
    again = pickle.loads(pickle.dumps(tb))
    again.log(TRIAL, row(100, 55.0), None)
    again.log(TRIAL, row(150, 40.0), None)
    again.end(TRIAL, "completed")
    acc = tensorboard_runs(tmp_path / "exp")[f"{TENSORBOARD}/trials/t001"]
    assert fid_history(acc) == {50: 80.0, 100: 55.0, 150: 40.0}


def test_tensorboard_of_an_experiment_at_a_uri_is_written_locally_and_uploaded(tmp_path, monkeypatch):
    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path / "cache"))
    exp = Experiment(f"file://{tmp_path}/bucket/exp")
    tb = TensorBoard(exp)
    tb.log(CONFIRM_RUN, row(50, 70.0), grid(30))
    uploaded = tensorboard_runs(tmp_path / "bucket" / "exp")  # after each evaluation, not only at the end
    assert fid_history(uploaded[f"{TENSORBOARD}/confirm/t001-seed1"]) == {50: 70.0}
    tb.log(CONFIRM_RUN, row(100, 65.0), grid(30))
    tb.end(CONFIRM_RUN, "completed")
    acc = tensorboard_runs(tmp_path / "bucket" / "exp")[f"{TENSORBOARD}/confirm/t001-seed1"]
    assert fid_history(acc) == {50: 70.0, 100: 65.0} and len(acc.Images("samples")) == 2


def test_mlflow_one_run_per_trial_with_params_history_grids_and_the_winner(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from search.trackers import MLflowTracker

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = MLflowTracker(uri, SEARCH)
    tracker.start(TRIAL)
    tracker.log(TRIAL, row(50, 80.0), grid(10))
    # the driver stops; a --resume restores the tracker (Tune pickles callbacks) and goes on
    tracker = pickle.loads(pickle.dumps(tracker))
    tracker.start(TRIAL)
    tracker.log(TRIAL, row(100, 60.0, "completed"), grid(20))
    tracker.end(TRIAL, "completed")
    tracker.start(CONFIRM_RUN)
    tracker.log(CONFIRM_RUN, row(100, 62.0, "completed"), None)
    tracker.end(CONFIRM_RUN, "completed")
    tag_winner(Trackers([tracker]), Experiment(str(tmp_path / "none")), SEARCH, "t001")  # no confirm/ folder here

    runs = mlflow_runs(uri, SEARCH)
    assert sorted(runs) == ["confirm/t001-seed1", "trials/t001"]  # one run per trial, resumed in place
    trial = runs["trials/t001"]
    client = MlflowClient(uri)
    assert trial.info.run_name == "t001" and trial.info.status == "FINISHED"
    assert trial.data.params == {"lr_d": "0.0001", "lr_g": "0.0003"}
    assert {k: trial.data.tags[k] for k in ("search", "kind", "status", "collapse", "winner")} == {
        "search": SEARCH, "kind": "trial", "status": "completed", "collapse": "ok", "winner": "true"}
    assert [(m.step, m.value) for m in client.get_metric_history(trial.info.run_id, "fid")] == [(50, 80.0), (100, 60.0)]
    assert [a.path for a in client.list_artifacts(trial.info.run_id, "samples")] == [
        "samples/step_0000050.png", "samples/step_0000100.png"]
    confirmation = runs["confirm/t001-seed1"].data.tags
    assert (confirmation["kind"], confirmation["confirms"], confirmation["seed"]) == ("confirmation", "t001", "1")
    assert "winner" not in confirmation  # tag_winner saw no confirm/ folder in that experiment
    assert (tmp_path / "mlartifacts").is_dir()  # the artifacts beside the store, not in the working folder


def test_wandb_offline_runs_with_config_history_grids_and_the_winner(tmp_path, monkeypatch, request):
    pytest.importorskip("wandb")
    from search.trackers import WandbTracker, wandb_run_id

    import wandb

    for k, v in wandb_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    # W&B keeps one service per process, with the settings (WANDB_DIR) it was started with: ended
    # after this test, so that a later test's runs go where that test says
    request.addfinalizer(wandb.teardown)
    tracker = WandbTracker("dcgan", SEARCH)
    tracker.start(TRIAL)
    tracker.log(TRIAL, row(50, 80.0), grid(10))
    tracker.log(TRIAL, row(100, 60.0, "completed"), grid(20))
    tracker.end(TRIAL, "completed")
    tag_winner(Trackers([tracker]), Experiment(str(tmp_path / "none")), SEARCH, "t001")

    first, winner = wandb_runs(tmp_path)  # offline, the winner's tag is a second folder of the same run
    assert first["id"] == winner["id"] == wandb_run_id(TRIAL) == f"{SEARCH}-trials-t001"
    assert first["tags"] == ["trial"] and first["config"]["params"] == TRIAL.params
    assert first["config"]["lr_g"] == 3e-4 and first["config"]["run"] == "trials/t001"
    logged = [h for h in first["history"] if "fid" in h]
    assert [(h["_step"], h["fid"]) for h in logged] == [(50, 80.0), (100, 60.0)]
    assert [(h["samples/_type"], h["samples/width"], h["samples/caption"]) for h in logged] == [
        ("image-file", 20, "t001 step 50"), ("image-file", 20, "t001 step 100")]
    assert all((tmp_path / "wandb" / first["folder"] / "files" / h["samples/path"]).is_file() for h in logged)
    assert first["summary"]["status"] == "completed" and first["summary"]["collapse"] == "ok"
    assert winner["tags"] == ["trial", "winner"] and winner["summary"]["winner"] == "true"


class Broken(Tracker):
    label = "Broken"

    def log(self, run, row, grid):
        raise ConnectionError("tracking server\nunreachable")


def test_a_failing_tracker_is_named_once_and_the_others_go_on(tmp_path, capsys):
    tb = TensorBoard(Experiment(str(tmp_path / "exp")))
    trackers = Trackers([Broken(), tb])
    trackers.log(TRIAL, row(50, 80.0), None)
    trackers.log(TRIAL, row(100, 60.0), None)
    trackers.close()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["warning: Broken tracking stopped (ConnectionError: tracking server unreachable); the experiment "
                   "directory has everything"]
    assert fid_history(tensorboard_runs(tmp_path / "exp")[f"{TENSORBOARD}/trials/t001"]) == {50: 80.0, 100: 60.0}


# --- the flags ---------------------------------------------------------------------------------------

BASE = ["--space", "smoke", "--trials", "2", "--steps", "20", "--image-size", "8", "--set", "ngf=8"]


@pytest.mark.parametrize("flags, blocked, message", [
    (["--wandb", "p"], "wandb", "error: --wandb needs the wandb package; install it with pip install -e '.[wandb]' "
                                "(or drop --wandb)"),
    (["--mlflow", "m.db"], "mlflow", "error: --mlflow needs the mlflow package; install it with pip install -e "
                                     "'.[mlflow]' (or drop --mlflow)"),
    (["--mlflow"], None, "error: --mlflow without a URI takes $MLFLOW_TRACKING_URI, which is not set; pass --mlflow "
                         "URI (http://host:5000, sqlite:///mlflow.db, mlflow.db) or set MLFLOW_TRACKING_URI"),
    (["--mlflow", "mlruns"], None, "error: --mlflow mlruns: a local MLflow store is a SQLite file; pass --mlflow "
                                   "mlruns.db (or sqlite:///PATH.db, or a tracking server's http://host:5000)"),
])
def test_tracking_flags_refused_in_one_line_before_anything_is_written(tmp_path, capsys, monkeypatch, flags, blocked,
                                                                       message):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    if blocked:
        monkeypatch.setitem(__import__("sys").modules, blocked, None)  # as if not installed
    rc = search_run.main([*BASE, "--storage", str(tmp_path / "exps"), "--name", "e", *flags])
    assert (rc, capsys.readouterr().err.strip().splitlines()) == (2, [message])
    assert not (tmp_path / "exps").exists()


def test_tracking_is_planned_kept_by_resume_and_not_changed_by_it(tmp_path, monkeypatch, capsys):
    from search.plan import plan_search
    from search.run import given_flags
    from search.tuner import experiment_info

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    monkeypatch.chdir(tmp_path)
    first = [*BASE, "--storage", str(tmp_path / "exps"), "--name", "e", "--mlflow", "--wandb", "proj"]
    plan = plan_search(search_run.build_parser().parse_args(first))
    assert (plan.mlflow, plan.wandb) == ("http://mlflow.example:5000", "proj")  # a bare --mlflow: the environment's
    plan.experiment.write_info(experiment_info(plan, 1, "2026-11-24T00:00:00+00:00"))  # as run_search does first
    resume = ["--space", "smoke", "--storage", str(tmp_path / "exps"), "--name", "e", "--resume"]
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    resumed = plan_search(search_run.build_parser().parse_args(resume), given_flags(resume))
    assert (resumed.mlflow, resumed.wandb) == ("http://mlflow.example:5000", "proj")  # experiment.json's
    rc = search_run.main([*resume, "--mlflow", "other.db"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"error: --resume goes on with experiment 'e' as it was planned, and these flags change "
                               f"it: --mlflow sqlite:///{tmp_path}/other.db (the experiment's: "
                               f"http://mlflow.example:5000); drop them (a search with other settings is another --name)"]
    local = plan_search(search_run.build_parser().parse_args([*BASE, "--storage", "exps", "--name", "f",
                                                              "--mlflow", "runs/m.db"]))
    assert local.mlflow == f"sqlite:///{tmp_path}/runs/m.db"  # absolute: a --resume from elsewhere finds it
