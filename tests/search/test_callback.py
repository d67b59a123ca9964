"""search.callback: the Tune callback that writes the experiment directory, driven here with Tune's
own Trial objects (no Ray cluster: Tune calls these hooks on the driver, one at a time) the way
Tune's controller drives it: a result is first the trial's last_result, then the callback's."""

from __future__ import annotations

import math

import pytest
from ray.tune.experiment import Trial

from dcgan import keys
from experiment import Experiment
from experiment.layout import CONFIRM, EXPERIMENT_JSON, confirm_name
from experiment.schema import COMPLETED, DIVERGED, FAILED, RUNNING, STOPPED
from search.callback import ConfirmationWriter, ExperimentWriter
from search.protocol import REPLAYED

STEPS = 600
PROTOCOL = {keys.EXTRACTOR: "digits-classifier", keys.N: 2000, keys.REFERENCE: "digits/train"}


@pytest.fixture
def setup(tmp_path, synthetic):
    """An experiment with its experiment.json and no trial yet, and a writer for it."""
    exp = Experiment(str(synthetic.write_experiment(tmp_path, trials=[], finished=False, optuna_db=False,
                                                    steps=STEPS)))
    exp.update_info(extractor=None, reference=None, eval_samples=None)
    fixed = exp.read_json(EXPERIMENT_JSON)["fixed"]
    return exp, fixed, ExperimentWriter(exp, fixed, STEPS, baseline_params=synthetic.BASELINE_PARAMS)


def report(writer: ExperimentWriter, trial: Trial, **result) -> None:
    trial.update_last_result(result)
    writer.on_trial_result(0, [], trial, result)


def test_a_trial_is_written_from_start_to_end(setup, synthetic):
    exp, fixed, writer = setup
    trial = Trial("dcgan", config=dict(synthetic.BASELINE_PARAMS), trial_id="t0", stub=True)
    writer.on_trial_start(0, [], trial)
    assert exp.read_trial("t0").status == RUNNING
    assert exp.read_trial("t0").params == synthetic.BASELINE_PARAMS
    assert exp.read_trial("t0").config["steps"] == STEPS and exp.read_trial("t0").config["lr_g"] == 2e-4
    assert exp.read_json(EXPERIMENT_JSON)["baseline_trial_id"] == "t0"  # it trains the paper's values

    report(writer, trial, step=200, status=RUNNING, fid=50.0, d_loss=0.5, **PROTOCOL)
    assert (exp.read_trial("t0").status, exp.read_trial("t0").status_step) == (RUNNING, 200)
    info = exp.read_json(EXPERIMENT_JSON)
    assert (info["extractor"], info["eval_samples"], info["reference"]) == ("digits-classifier", 2000, "digits/train")

    report(writer, trial, step=STEPS, status=COMPLETED, fid=30.0, **PROTOCOL)
    writer.on_trial_complete(0, [], trial)
    done = exp.read_trial("t0")
    assert (done.status, done.status_step) == (COMPLETED, STEPS)
    assert [r[keys.FID] for r in done.evaluations] == [50.0, 30.0]


def test_only_the_baseline_sets_the_baseline_trial(setup):
    exp, _, writer = setup
    writer.on_trial_start(0, [], Trial("dcgan", config={"lr_g": 1e-3, "lr_d": 2e-4, "d_steps_per_g": 1},
                                       trial_id="t1", stub=True))
    # The paper's values and one more parameter is a different trial, not the baseline.
    writer.on_trial_start(0, [], Trial("dcgan", config={"lr_g": 2e-4, "lr_d": 2e-4, "d_steps_per_g": 1, "loss": "hinge"},
                                       trial_id="t2", stub=True))
    assert exp.read_json(EXPERIMENT_JSON)["baseline_trial_id"] is None


def test_how_a_trial_ended(setup):
    exp, _, writer = setup
    trials = {name: Trial("dcgan", config={"lr_g": 1e-3}, trial_id=name, stub=True)
              for name in ("stopped", "diverged", "silent", "failed")}
    for trial in trials.values():
        writer.on_trial_start(0, [], trial)
    report(writer, trials["stopped"], step=200, status=RUNNING, fid=80.0)  # ASHA ended it here
    writer.on_trial_complete(0, [], trials["stopped"])
    report(writer, trials["diverged"], step=400, status=DIVERGED, fid=math.nan)
    assert exp.read_trial("diverged").status == RUNNING  # a diverged row does not mark it running again
    writer.on_trial_complete(0, [], trials["diverged"])
    writer.on_trial_complete(0, [], trials["silent"])  # ended before it reported
    report(writer, trials["failed"], step=200, status=RUNNING, fid=70.0)
    writer.on_trial_error(0, [], trials["failed"])
    ended = {name: exp.read_trial(name) for name in trials}
    assert {n: (t.status, t.status_step) for n, t in ended.items()} == {
        "stopped": (STOPPED, 200), "diverged": (DIVERGED, 400), "silent": (STOPPED, 0), "failed": (FAILED, 200)}
    assert ended["failed"].error == "the trial raised an error"  # a stub trial has no error file
    assert ended["diverged"].evaluations[-1][keys.FID] is None  # NaN is written as null


def test_a_resumed_trial_that_had_ended_is_not_written_again(setup):
    exp, _, writer = setup
    trial = Trial("dcgan", config={"lr_g": 1e-3}, trial_id="t0", stub=True)
    writer.on_trial_start(0, [], trial)
    report(writer, trial, step=STEPS, status=COMPLETED, fid=30.0)
    writer.on_trial_complete(0, [], trial)
    before = exp.read_text("trials", "t0", "results.jsonl")

    resumed = Trial("dcgan", config={"lr_g": 1e-3}, trial_id="t0", stub=True)  # Tune's state was older
    writer.on_trial_start(0, [], resumed)
    report(writer, resumed, step=STEPS, status=COMPLETED, fid=31.0, **{REPLAYED: True})
    writer.on_trial_complete(0, [], resumed)
    assert exp.read_text("trials", "t0", "results.jsonl") == before
    assert exp.read_trial("t0").status == COMPLETED


def test_a_trial_restarted_from_a_checkpoint_rewrites_the_steps_it_runs_again(setup):
    exp, _, writer = setup
    trial = Trial("dcgan", config={"lr_g": 1e-3}, trial_id="t0", stub=True)
    writer.on_trial_start(0, [], trial)
    for step, fid in ((200, 60.0), (400, 50.0)):
        report(writer, trial, step=step, status=RUNNING, fid=fid)
    report(writer, trial, step=400, status=RUNNING, fid=49.0)  # from the checkpoint at 200
    report(writer, trial, step=STEPS, status=COMPLETED, fid=40.0)
    writer.on_trial_complete(0, [], trial)
    assert [(r[keys.STEP], r[keys.FID]) for r in exp.read_trial("t0").results] == [(200, 60.0), (400, 49.0), (STEPS, 40.0)]


def test_confirmation_runs_go_to_confirm_under_the_trial_and_seed(setup):
    exp, fixed, _ = setup
    params = {"lr_g": 1e-3, "lr_d": 2e-4, "d_steps_per_g": 2}
    # search.confirm passes the runs' own steps (--confirm-steps) and the override it trains with
    writer = ConfirmationWriter(exp, fixed, 1200, params_of={"t7": params}, steps_override=1200)
    runs = [Trial("dcgan", config={"run": {"trial": "t7", "seed": s}}, trial_id=f"c{s}", stub=True) for s in (1, 2)]
    for run in runs:
        writer.on_trial_start(0, [], run)
    report(writer, runs[0], step=1200, status=COMPLETED, fid=25.0)
    report(writer, runs[1], step=STEPS, status=RUNNING, fid=26.0)  # the search's steps, short of its own
    for run in runs:
        writer.on_trial_complete(0, [], run)
    written = [exp.read_trial(confirm_name("t7", s), folder=CONFIRM) for s in (1, 2)]
    assert written[0].params == {**params, "seed": 1, "steps": 1200}
    assert (written[0].config["seed"], written[0].config["steps"]) == (1, 1200)
    assert [(w.status, w.status_step) for w in written] == [(COMPLETED, 1200), (STOPPED, STEPS)]
    assert exp.trial_ids() == []  # nothing under trials/
    assert exp.read_json(EXPERIMENT_JSON)["baseline_trial_id"] is None
