"""Real searches on the shared local Ray (tests/search/conftest.py), at smoke size."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcgan.config import TrainConfig
from search import run as search_run
from search import train as search_train

from raysession import every_cpu_free
from spaces import SPACES

# A trial this size runs in seconds of compute; the rest is Ray's start-up of its workers.
TINY = ["--image-size", "8", "--set", "ngf=8", "--set", "ndf=8", "--set", "eval_samples=200",
        "--set", "batch_size=32"]

pytestmark = pytest.mark.slow


def search(storage: Path, name: str, *args: str) -> Path:
    argv = ["--storage", str(storage), "--name", name, *TINY, *args]
    assert search_run.main(argv) == 0
    return storage / name


def trials_of(exp: Path) -> dict[str, dict]:
    out = {}
    for d in sorted((exp / "trials").iterdir()):
        rows = [json.loads(line) for line in (d / "results.jsonl").read_text().splitlines()]
        out[d.name] = {"status": json.loads((d / "status.json").read_text()), "results": rows,
                       "params": json.loads((d / "params.json").read_text()),
                       "config": TrainConfig.from_json(d / "config.json")}
    return out


# Small enough for seconds of compute, large enough that some trials learn, and that one of them
# holds up when the confirmation trains it again with two new seeds (at 100 steps a CI run had none:
# its best trial, FID 89, scored 121 and 128 "collapsed"). Without digits' default
# augmentation, which at 8 px shifts by 1/8 of the image and slows the first steps (the default
# itself: test_plan.py).
LEARNS_STEPS = 200
LEARNS = ["--image-size", "8", "--set", "ngf=16", "--set", "ndf=16", "--set", "eval_samples=200",
          "--set", "batch_size=32", "--steps", str(LEARNS_STEPS), "--set", "eval_every=50", "--set", "augment="]


def test_smoke_search(ray_session, tmp_path, one_thread):
    """A whole search: the paper's setting first, ASHA, Optuna told what became of each trial, the
    top trials and the baseline confirmed with new seeds, best_config.json by that confirmation,
    the report, and the winner re-run from its file."""
    import optuna

    argv = ["--storage", str(tmp_path), "--name", "smoke", "--space", "smoke", "--trials", "6", *LEARNS]
    assert search_run.main(argv) == 0
    exp = tmp_path / "smoke"
    trials = trials_of(exp)
    info = json.loads((exp / "experiment.json").read_text())
    assert len(trials) == 6 and info["finished_at"] is not None and info["sampler"] == "tpe"
    assert trials[info["baseline_trial_id"]]["params"] == {"lr_d": 2e-4, "lr_g": 2e-4}  # the paper first
    statuses = [t["status"]["status"] for t in trials.values()]
    assert "stopped" in statuses and "completed" in statuses, statuses  # ASHA stopped at least one
    for t in trials.values():
        assert math.isfinite(t["results"][-1]["fid"])
        assert sorted(p.name for p in (exp / "trials").glob("*/samples/*.png"))

    # Optuna was told: completed trials COMPLETE with their last FID, those ASHA stopped PRUNED at
    # their step with every FID as an intermediate value, each trial once and under its id
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{exp / 'optuna.db'}")
    told = {t.user_attrs["trial_id"]: t for t in study.trials}
    assert sorted(told) == sorted(trials) and len(study.trials) == 6
    for tid, t in trials.items():
        fids = {r["step"]: r["fid"] for r in t["results"]}
        assert told[tid].intermediate_values == pytest.approx(fids)
        if t["status"]["status"] == "completed":
            assert told[tid].state.name == "COMPLETE" and told[tid].value == pytest.approx(t["results"][-1]["fid"])
        else:
            assert told[tid].state.name == "PRUNED" and max(fids) < LEARNS_STEPS

    # confirmation: the top 2 and the baseline, seeds 1 and 2; best_config.json names them
    from experiment import Experiment
    from experiment.confirmation import confirmation
    from experiment.ranking import rank_trials

    done = Experiment.open(str(exp))
    ranking = rank_trials(done)
    expected = [t.trial_id for t in ranking.ranked[:2]] + [info["baseline_trial_id"]]
    assert sorted(p.name for p in (exp / "confirm").iterdir()) == sorted(f"{t}-seed{s}" for t in set(expected)
                                                                         for s in (1, 2))
    confirmed = confirmation(done, ranking)
    best = json.loads((exp / "best_config.json").read_text())
    assert confirmed.best is not None, confirmed  # some config held up over both seeds
    assert best["trial_id"] == confirmed.best.trial_id and best["chosen_by"].startswith("confirmation")
    assert best["confirmation"]["seeds"] == [1, 2]
    assert best["confirmation"]["mean"] == pytest.approx(sum(best["confirmation"]["fids"]) / 2)
    report = (exp / "report.html").read_text()
    assert 'id="confirmation-table"' in report and "Confirmed: confirmed best" in report

    # the winner re-runs from best_config.json alone, to its FID in the search: the same number, with
    # the one CPU thread its trial had
    cfg = TrainConfig.from_json(exp / "best_config.json")
    assert cfg == trials[best["trial_id"]]["config"]
    from dcgan.train import train

    result = one_thread(lambda: train(cfg, tmp_path / "rerun"))
    assert result.metrics["fid"] == pytest.approx(best["fid"], rel=1e-6)

    # the long run goes on from the TPE winner's last checkpoint (--continue): its first step is the
    # checkpoint's + 1
    from dcgan import train as dcgan_train

    assert best["checkpoint"].startswith(str(exp / f"tune-{best['trial_id']}" / "checkpoint_"))
    assert dcgan_train.main(["--config", str(exp / "best_config.json"), "--continue", "--steps", str(LEARNS_STEPS + 50),
                             "--out", str(tmp_path / "long"), "--no-eval"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "long" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [LEARNS_STEPS + 50]

    # and images come out of the winning trial's checkpoints with no code
    from dcgan import sample

    assert sample.main([str(exp / f"tune-{best['trial_id']}"), "-o", str(tmp_path / "winner.png")]) == 0
    assert (tmp_path / "winner.png").stat().st_size > 0
    # and from best_config.json, which names the winning trial's last checkpoint
    assert best["checkpoint"].startswith(str(exp / f"tune-{best['trial_id']}" / "checkpoint_"))
    assert sample.main([str(exp / "best_config.json"), "-o", str(tmp_path / "best.png")]) == 0


def diverge(trial):
    """Learning rates near 1 (with lsgan): every trial but the paper's baseline diverges.
    At module level: Tune pickles the searcher, and with it the space function."""
    return {"lr_g": trial.suggest_float("lr_g", 0.9, 1.0), "lr_d": trial.suggest_float("lr_d", 0.9, 1.0)}


def test_diverging_trial_is_recorded_not_raised(ray_session, tmp_path, monkeypatch):
    monkeypatch.setitem(SPACES, "diverge", diverge)  # registered for this test only
    # storage given as a URI: the pyarrow path that s3:// takes too, and optuna.db uploaded
    assert search_run.main(["--storage", f"file://{tmp_path}", "--name", "diverge", *TINY, "--space", "diverge",
                            "--confirm", "0",
                            "--trials", "2", "--steps", "50", "--set", "eval_every=25", "--set", "loss=lsgan",
                            "--set", "beta1=0"]) == 0
    exp = tmp_path / "diverge"
    trials = trials_of(exp)
    baseline = next(t for t in trials.values() if t["params"]["lr_g"] == 2e-4)
    (diverged,) = [t for t in trials.values() if t["params"]["lr_g"] >= 0.9]
    assert diverged["status"]["status"] == "diverged"
    assert diverged["results"][-1]["status"] == "diverged" and diverged["results"][-1]["fid"] is None
    assert baseline["status"]["status"] == "completed"
    import optuna

    study = optuna.load_study(study_name="diverge", storage=f"sqlite:///{exp / 'optuna.db'}")
    states = {t.params["lr_g"] >= 0.9: t.state for t in study.trials}
    assert states[True] == optuna.trial.TrialState.FAIL


REPO = Path(__file__).resolve().parents[2]


def test_two_ddp_workers_in_a_trial(ray_session, tmp_path):
    exp = search(tmp_path, "ddp", "--space", "smoke", "--trials", "1", "--steps", "20", "--set", "eval_every=10",
                 "--workers-per-trial", "2", "--scheduler", "fifo", "--confirm", "0")
    (trial,) = trials_of(exp).values()
    assert trial["status"]["status"] == "completed" and trial["status"]["step"] == 20
    assert [r["step"] for r in trial["results"]] == [10, 20]
    assert json.loads((exp / "experiment.json").read_text())["workers_per_trial"] == 2


def test_search_train_with_two_workers_from_and_to_a_bucket(ray_session, s3_storage):
    """The winner trained on: best_config.json read from the bucket, the run written there."""
    from experiment import Experiment
    from experiment.layout import join_uri

    cfg = TrainConfig(image_size=8, ngf=8, ndf=8, eval_samples=200, batch_size=32, steps=400, eval_every=10)
    Experiment(join_uri(s3_storage, "exp")).write_json({"config": cfg.to_dict(), "fid": 1.0}, "best_config.json")
    assert search_train.main(["--config", join_uri(s3_storage, "exp", "best_config.json"), "--steps", "20",
                              "--workers", "2", "--storage", s3_storage, "--name", "long"]) == 0
    final = Experiment(join_uri(s3_storage, "long")).read_json("final_metrics.json")
    assert final["metrics"]["step"] == 20 and final["metrics"]["status"] == "completed"
    assert final["workers"] == 2 and final["checkpoint"]


def test_search_train_stopped_by_ctrl_c_resumes_to_the_same_weights(ray_session, tmp_path, sigint_as_in_a_terminal,
                                                                   one_thread):
    """Ctrl-C in a long run of search.train: exit 130, the command that goes on, no final metrics.
    `--resume` goes on from the run's last checkpoint (Ray Train keeps it in the run's folder) and
    ends where an unstopped run ends: the same FID to the last digit, each evaluation once."""
    steps, every = 120, 20
    cfg = TrainConfig(image_size=8, ngf=8, ndf=8, eval_samples=200, batch_size=32, steps=steps, eval_every=every)
    cfg.to_json(tmp_path / "cfg.json")
    args = ["--config", str(tmp_path / "cfg.json"), "--storage", str(tmp_path / "runs")]
    run = tmp_path / "runs" / "stopped"
    rc, err = ctrl_c(ray_session, ["search.train", *args, "--name", "stopped"], lambda: _checkpointed_step(run) >= every)
    assert rc == 130, err[-3000:]
    assert f"python -m search.train --name stopped --storage {tmp_path / 'runs'} --resume" in err, err[-3000:]
    assert not (run / "final_metrics.json").exists()
    metrics = run / "run" / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert rows[0]["step"] == every and rows[-1]["step"] < steps
    rows[0]["mark"] = "before the stop"  # kept only if the run goes on from a checkpoint, not from step 0
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))

    assert search_train.main([*args, "--name", "stopped", "--resume"]) == 0  # the first command, and --resume
    resumed = json.loads((run / "final_metrics.json").read_text())["metrics"]
    # the run unstopped: dcgan.train in this process, on the one CPU thread a 1-CPU Ray worker has
    from dcgan.train import train

    straight = one_thread(lambda: train(cfg, tmp_path / "straight")).metrics
    assert resumed["step"] == steps and resumed["fid"] == straight["fid"]
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(every, steps + 1, every)) and rows[0].get("mark")


def _checkpointed_step(run: Path) -> int:
    """The step of the checkpoint Ray Train would resume `run` from (0: none yet)."""
    try:
        snapshot = json.loads((run / "checkpoint_manager_snapshot.json").read_text())
        return int(((snapshot.get("latest_checkpoint_result") or {}).get("metrics") or {}).get("step", 0))
    except (OSError, ValueError):  # not there yet, or caught half written
        return 0


def test_resume_in_a_bucket_after_the_driver_is_killed(ray_session, s3_storage, tmp_path):
    """The experiment in S3 (moto on loopback). SIGKILL the search's driver once a trial finished;
    --resume completes it from the bucket, no finished trial runs again, the Optuna study holds each
    trial once, and reports.build builds the report from the bucket. The killed driver joined this
    session's Ray: one Ray instance only."""
    import optuna

    from experiment import Experiment
    from experiment.layout import join_uri
    from reports import build

    args = ["--space", "smoke", "--trials", "3", "--steps", "30", "--set", "eval_every=10", "--concurrency", "1",
            "--scheduler", "fifo", "--confirm", "0", "--storage", s3_storage, "--name", "resumed", *TINY]
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    driver = subprocess.Popen([sys.executable, "-m", "search.run", *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = join_uri(s3_storage, "resumed")
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not _any_completed(uri):
            time.sleep(0.2)
        # killed at once: Tune's saved state (every second) may not know yet that the trial ended
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    before = {t.trial_id: t for t in Experiment(uri).trials if t.status == "completed"}
    assert before and Experiment(uri).meta["finished_at"] is None
    every_cpu_free("after the driver was killed", placeable=True)

    assert search_run.main([*args, "--resume"]) == 0
    done = Experiment(uri)
    # every trial accounted for: 3 completed, and any that started just before the kill and was not
    # in Tune's saved state marked failed, "lost"
    completed = [t for t in done.trials if t.status == "completed"]
    assert len(completed) == 3 and all(t.status == "failed" and "lost" in t.error for t in done.trials
                                       if t.status != "completed")
    for tid, t in before.items():
        assert done.trial(tid).results == t.results  # not re-run: no new rows, same times
    assert done.meta["finished_at"] is not None and done.best_config is not None

    # the Optuna study (from the bucket) holds each trial of the experiment once, under its id: the
    # completed COMPLETE; a trial lost with the driver FAIL, or absent if the driver died before the
    # study reached the bucket; a suggestion asked just before the kill, for a trial that never
    # started, FAIL
    local = done.copy_to_local("optuna.db")
    try:
        trials = optuna.load_study(study_name="resumed", storage=f"sqlite:///{local}").trials
    finally:
        os.unlink(local)  # a copy in the system's temporary folder: left there, one per run
    by_id = {}
    for t in trials:
        by_id.setdefault(t.user_attrs.get("trial_id"), []).append(t)
    for t in done.trials:
        told = by_id.get(t.trial_id, [])
        assert len(told) == 1 if t.status == "completed" else len(told) <= 1, (t.trial_id, told)
        assert all(x.params == t.params and x.state.name == ("COMPLETE" if t.status == "completed" else "FAIL")
                   for x in told)
    ids = {t.trial_id for t in done.trials}
    assert all(t.state.name == "FAIL" for t in trials if t.user_attrs.get("trial_id") not in ids)

    assert build.main([uri, "-o", str(tmp_path / "report.html")]) == 0
    assert "resumed" in (tmp_path / "report.html").read_text()


def test_resume_of_a_search_stopped_before_its_first_trial(ray_session, tmp_path):
    """A driver stopped between writing experiment.json and Tune's first save of its state (Ctrl-C
    in the first seconds): --resume runs the search as it was planned, from its first trial."""
    from search.plan import plan_search
    from search.tuner import experiment_info

    args = ["--space", "smoke", "--trials", "2", "--steps", "20", "--set", "eval_every=10", "--scheduler", "fifo",
            "--confirm", "0", "--storage", str(tmp_path), "--name", "early", *TINY]
    plan = plan_search(search_run.build_parser().parse_args(args))
    plan.experiment.write_info(experiment_info(plan, 1, "2026-11-24T00:00:00+00:00"))  # as run_search does first
    assert search_run.main([*args, "--resume"]) == 0
    trials = trials_of(tmp_path / "early")
    assert len(trials) == 2 and all(t["status"]["status"] == "completed" for t in trials.values())


def ctrl_c(ray_session, module_and_args: list[str], ready) -> tuple[int, str]:
    """`python -m MODULE ARGS` joined to this session's Ray (one Ray instance only), sent SIGINT as
    Ctrl-C in its terminal would once `ready()`; (its exit code, its output)."""
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    driver = subprocess.Popen([sys.executable, "-m", *module_and_args], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not ready():
            time.sleep(0.05)
        driver.send_signal(signal.SIGINT)
        out, _ = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    return driver.returncode, out


def test_ctrl_c_stops_the_search_and_resume_ends_it(ray_session, tmp_path, capsys, sigint_as_in_a_terminal):
    """Ctrl-C (SIGINT) while a trial runs: the search stops at once with exit 130 and the command
    that goes on; nothing is marked lost, no winner named, and the running trial stays RUNNING in
    the study. That command then ends the search: the stopped trial goes on from its checkpoint and
    is told COMPLETE with all its intermediate FIDs, the study holds each trial once, and the
    console counts the trials that had ended before as they ended."""
    import optuna

    args = ["--space", "smoke", "--trials", "2", "--steps", "400", "--set", "eval_every=20", "--concurrency", "1",
            "--scheduler", "fifo", "--confirm", "0", "--storage", str(tmp_path), "--name", "stopped", *TINY]
    exp = tmp_path / "stopped"
    rc, err = ctrl_c(ray_session, ["search.run", *args], lambda: _one_ended_one_running(exp))
    assert rc == 130, err[-3000:]
    resume = f"python -m search.run --space smoke --name stopped --storage {tmp_path} --resume"
    assert resume in err and "Tuner.restore" not in err, err[-3000:]
    before = trials_of(exp)
    (stopped,) = [tid for tid, t in before.items() if t["status"]["status"] == "running"]
    assert [t["status"]["status"] for tid, t in before.items() if tid != stopped] == ["completed"]
    assert json.loads((exp / "experiment.json").read_text())["finished_at"] is None
    assert not (exp / "best_config.json").exists()
    study = optuna.load_study(study_name="stopped", storage=f"sqlite:///{exp / 'optuna.db'}")
    assert {t.user_attrs["trial_id"]: t.state.name for t in study.trials}[stopped] == "RUNNING"

    capsys.readouterr()
    assert search_run.main(resume.split()[3:]) == 0
    progress = [ln for ln in capsys.readouterr().out.splitlines() if "trials done" in ln]
    assert progress and all("stopped early" not in ln for ln in progress), progress
    assert "2 of 2 trials done (2 completed)" in progress[-1], progress
    after = trials_of(exp)
    assert all(t["status"]["status"] == "completed" for t in after.values()) and len(after) == 2
    steps = [r["step"] for r in after[stopped]["results"]]
    assert steps == list(range(20, 401, 20))  # each evaluation once: it went on, not again
    study = optuna.load_study(study_name="stopped", storage=f"sqlite:///{exp / 'optuna.db'}")
    assert sorted(t.user_attrs["trial_id"] for t in study.trials) == sorted(after)
    told = {t.user_attrs["trial_id"]: t for t in study.trials}[stopped]
    assert told.state.name == "COMPLETE" and sorted(told.intermediate_values) == steps
    assert told.value == pytest.approx(after[stopped]["results"][-1]["fid"])


def _one_ended_one_running(exp: Path) -> bool:
    statuses = [json.loads(p.read_text()) for p in exp.glob("trials/*/status.json")]
    return (any(s["status"] == "completed" for s in statuses)
            and any(s["status"] == "running" and s["step"] >= 40 for s in statuses))


def _any_completed(uri: str) -> bool:
    from experiment import Experiment, ExperimentError

    try:
        return any(t.status == "completed" for t in Experiment(uri).trials)
    except ExperimentError:  # a file caught while the search rewrites it (moto's objects are not atomic)
        return False


EVALUATION_LINE = re.compile(r"^[0-9a-f]{8}  step +\d+/40  (FID +[\d.]+  \w+|diverged)$")
PROGRESS_LINE = re.compile(r"^\[ *\w+\] \d of 4 trials done.*running")
WORKER_LINE = re.compile(r"\(\w+ pid=\d+(, ip=[\d.]+)?\)")  # Ray's prefix of a worker's own output


def test_console_is_short_and_verbose_brings_ray_back(ray_session, tmp_path):
    """The whole output of `search.run --space smoke --trials 4`: a header, one line per
    evaluation, a progress line per trial, the table and the report. In a subprocess joined to
    this session's Ray (one Ray instance only), as a user runs it."""
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    common = ["--space", "smoke", "--steps", "40", "--set", "eval_every=10", "--storage", str(tmp_path), *TINY]
    quiet = subprocess.run([sys.executable, "-m", "search.run", *common, "--trials", "4", "--name", "quiet",
                            "--confirm", "1", "--confirm-seeds", "1"],
                           env=env, capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    lines = (quiet.stdout + quiet.stderr).strip().splitlines()
    assert len(lines) <= 40, "\n".join(lines)
    evaluations = [ln for ln in lines if EVALUATION_LINE.match(ln)]
    rows = sum(len((d / "results.jsonl").read_text().splitlines()) for d in (tmp_path / "quiet" / "trials").iterdir())
    assert len(evaluations) == rows, "\n".join(lines)  # each evaluation printed once
    assert len([ln for ln in lines if PROGRESS_LINE.match(ln)]) == 4, "\n".join(lines)
    assert any("4 of 4 trials done" in ln for ln in lines) and any("best FID" in ln for ln in lines)
    assert not any("INFO" in ln or "== Status ==" in ln or WORKER_LINE.search(ln) for ln in lines), "\n".join(lines)

    verbose = subprocess.run([sys.executable, "-m", "search.run", *common, "--trials", "1", "--scheduler", "fifo",
                              "--confirm", "0", "--name", "verbose", "--verbose"], env=env, capture_output=True, text=True, timeout=600)
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    loud = verbose.stdout + verbose.stderr
    assert "== Status ==" in loud and WORKER_LINE.search(loud), loud[-3000:]  # Tune's table, the workers' lines


def test_stacked_mnist_modes_reach_results_and_report_from_a_relative_path(ray_session, tmp_path, monkeypatch,
                                                                           mnist_dir):
    """Stacked MNIST's modes in the results and the report. The data set is given as a user types it
    in the repo, `--dataset stacked-mnist:../shared/data/mnist`: a trial runs in a folder of its own
    (Tune's trial folder), so the driver hands it the path made absolute."""
    monkeypatch.chdir(REPO)
    relative = os.path.relpath(mnist_dir, REPO)
    assert not os.path.isabs(relative)
    exp = search(tmp_path, "stacked", "--space", "smoke", "--trials", "1", "--steps", "10", "--set", "eval_every=10",
                 "--scheduler", "fifo", "--confirm", "0", "--dataset", f"stacked-mnist:{relative}")
    (trial,) = trials_of(exp).values()
    assert trial["status"]["status"] == "completed" and trial["config"].dataset == f"stacked-mnist:{mnist_dir}"
    row = trial["results"][-1]
    assert math.isfinite(row["fid"]) and 1 <= row["modes"] <= 1000 and row["modes_kl"] >= 0, row
    report = (exp / "report.html").read_text()
    assert "<th>modes</th>" in report and "<th>modes KL</th>" in report


def test_warm_start_runs_right_after_the_baseline(ray_session, tmp_path):
    """--warm-start: an earlier winner's values of the space's parameters are the second trial, as
    the study and the experiment record it; the rest are sampled."""
    import optuna

    earlier = tmp_path / "best_config.json"
    earlier.write_text(json.dumps({"config": TrainConfig(lr_g=1e-3, lr_d=5e-4, beta1=0.3).to_dict(), "fid": 9.0}))
    exp = search(tmp_path, "warm", "--space", "smoke", "--trials", "3", "--steps", "20", "--set", "eval_every=20",
                 "--scheduler", "fifo", "--confirm", "0", "--warm-start", str(earlier))
    warm = {"lr_d": 5e-4, "lr_g": 1e-3}  # smoke searches only the rates: beta1 is not taken
    info = json.loads((exp / "experiment.json").read_text())
    assert info["warm_start"] == [{"from": str(earlier), "params": warm}]
    study = optuna.load_study(study_name="warm", storage=f"sqlite:///{exp / 'optuna.db'}")
    params = [t.params for t in sorted(study.trials, key=lambda t: t.number)]
    assert params[:2] == [{"lr_d": 2e-4, "lr_g": 2e-4}, warm] and params[2] not in params[:2]
    trials = trials_of(exp)
    (tid,) = [tid for tid, t in trials.items() if t["params"] == warm]
    assert trials[tid]["status"]["status"] == "completed" and trials[tid]["config"].beta1 == 0.5
    from experiment import Experiment
    from experiment.ranking import rank_trials

    marks = {t.trial_id: t.marks for t in rank_trials(Experiment.open(str(exp))).trials}
    assert marks[tid][0] == "warm start" and not any("warm start" in m for t, m in marks.items() if t != tid)
    assert ">warm start<" in (exp / "report.html").read_text()  # the leaderboard's mark


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_second_driver_is_refused_and_resume_takes_over_a_killed_ones_lock(ray_session, tmp_path, capsys, where,
                                                                            request):
    """Two search.run of one --name and storage at once (a job submitted twice): the second, new or
    --resume, is refused in one line naming the first (host, pid, since), and writes nothing. The
    first SIGKILLed, its lock does not block --resume, which says it took it over and ends the
    search. The first driver joined this session's Ray (one Ray instance only), and is killed as
    soon as it holds the experiment."""
    from experiment import Experiment
    from experiment.layout import DRIVER_LOCK, EXPERIMENT_JSON, join_uri

    storage = request.getfixturevalue("s3_storage") if where == "s3" else str(tmp_path)
    args = ["--space", "smoke", "--trials", "1", "--steps", "100", "--set", "eval_every=50", "--scheduler", "fifo",
            "--confirm", "0", "--storage", storage, "--name", "twice", *TINY]
    exp = Experiment(join_uri(storage, "twice"))
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    first = subprocess.Popen([sys.executable, "-m", "search.run", *args], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (exp.exists(DRIVER_LOCK) and exp.exists(EXPERIMENT_JSON)):
            time.sleep(0.05)
        held = exp.read_text(DRIVER_LOCK)
        capsys.readouterr()
        for second in (args, [*args, "--resume"]):
            assert search_run.main(second) == 2
            captured = capsys.readouterr()
            err = captured.err.strip().splitlines()
            assert len(err) == 1 and not captured.out, captured
            assert f"'twice' is in use by search.run on host {socket.gethostname()} (pid {first.pid}, since" in err[0]
        assert exp.read_text(DRIVER_LOCK) == held and first.poll() is None  # the refused wrote nothing
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert exp.exists(DRIVER_LOCK)  # left by the killed driver
    every_cpu_free("after the driver was killed", placeable=True)

    assert search_run.main([*args, "--resume"]) == 0
    assert f"taking over the lock of search.run on host {socket.gethostname()} (pid {first.pid}" in \
        capsys.readouterr().err
    done = Experiment(exp.uri)
    assert not done.exists(DRIVER_LOCK) and done.meta["finished_at"] is not None
    completed = [t for t in done.trials if t.status == "completed"]  # and one started just before the kill, lost
    assert len(completed) == 1 and all(t.status == "failed" and "lost" in t.error for t in done.trials
                                       if t.status != "completed")
