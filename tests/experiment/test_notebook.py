"""experiment.load(uri): the experiment as pandas frames, on synthetic experiments written by the real writer."""

from __future__ import annotations

import math
import shutil
import statistics

import pandas as pd
import pytest

import experiment
from experiment.notebook import CURVE_COLUMNS, PARAMS_PREFIX, RESULT_COLUMNS, TRIAL_COLUMNS
from experiment.ranking import rank_trials


def test_trials_frame_one_row_per_trial_in_leaderboard_order(experiment_dir):
    exp = experiment.load(str(experiment_dir))
    frame = exp.trials_frame()
    ranking = rank_trials(experiment.Experiment(str(experiment_dir)))
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.trial_id) == [t.trial_id for t in ranking.trials]  # ranked, collapsed, ..., then unranked
    params = [PARAMS_PREFIX + p for p in ("d_steps_per_g", "latent_dim", "loss", "lr_d", "lr_g")]
    assert list(frame.columns) == [*TRIAL_COLUMNS, *params, *RESULT_COLUMNS]
    row = frame.set_index("trial_id")
    assert row.loc["t001_best", "params_lr_g"] == 4e-4 and row.loc["t001_best", "params_loss"] == "hinge"
    assert row.loc["t001_best", "position"] == 1 and row.loc["t001_best", "is_winner"]
    assert row.is_winner.sum() == 1 and row.is_baseline.sum() == 1 and row.loc["t000_base", "is_baseline"]
    # last and best FID with their steps: never learned got worse after step 200
    assert (row.loc["t009_not_learned", ["fid", "fid_step", "best_fid", "best_fid_step", "verdict"]].tolist()
            == [2300.0, 400, 2200.0, 200, "not_learned"])
    assert row.loc["t002_collapsed", "group"] == "collapsed" and row.loc["t002_collapsed", "verdict"] == "collapsed"
    assert math.isnan(row.loc["t003_diverged", "fid"]) and row.loc["t003_diverged", "status"] == "diverged"
    assert pd.isna(row.loc["t008_pending", "position"]) and row.loc["t008_pending", "steps_reached"] == 0
    assert row.loc["t001_best", "precision"] == pytest.approx(0.8)  # the last evaluation's diagnostics
    assert frame.confirm_fid_mean.isna().all()  # no confirmation in this experiment
    assert frame.fid.dtype == "float64" and frame.confirm_fid_mean.dtype == "float64"


def test_confirmation_and_winner_come_from_the_confirmation(experiment_dir, tmp_path, synthetic):
    # The baseline holds up over two new seeds and the search's best does not: the winner is the baseline.
    copy = tmp_path / "exp"
    shutil.copytree(experiment_dir, copy)
    synthetic.add_confirmation(copy, {"t001_best": [40.0, 44.0], "t006_partial": [38.0, 60.0], "t000_base": [20.0, 22.0]})
    frame = experiment.load(str(copy)).trials_frame().set_index("trial_id")
    assert frame.loc["t000_base", "is_winner"] and not frame.loc["t001_best", "is_winner"]
    assert frame.loc["t001_best", "confirm_fid_mean"] == pytest.approx(42.0)
    assert frame.loc["t001_best", "confirm_fid_std"] == pytest.approx(statistics.stdev([40.0, 44.0]))
    assert frame.loc["t000_base", ["confirm_runs_counted", "confirm_runs"]].tolist() == [2, 2]
    assert pd.isna(frame.loc["t002_collapsed", "confirm_fid_mean"])  # not confirmed
    assert frame.loc["t001_best", "position"] == 1  # the leaderboard is the search's


def test_curves_frame_one_row_per_evaluation(experiment_dir, tmp_path, synthetic):
    exp = experiment.load(str(experiment_dir))
    curves = exp.curves_frame()
    assert list(curves.columns) == list(CURVE_COLUMNS)
    assert len(curves) == sum(len(t.evaluations) for t in exp.trials) == 19
    best = curves[curves.trial_id == "t001_best"]
    assert best.step.tolist() == [200, 400, 600] and best.fid.tolist() == [70.0, 45.0, 30.0]
    assert curves[curves.trial_id == "t003_diverged"].fid.isna().tolist() == [False, True]
    copy = tmp_path / "exp"
    shutil.copytree(experiment_dir, copy)
    synthetic.add_confirmation(copy, {"t001_best": [40.0, 44.0]})
    confirm = experiment.load(str(copy)).curves_frame(confirmation=True)
    assert confirm[["trial_id", "seed", "step", "fid"]].values.tolist() == [["t001_best", 1, 600, 40.0],
                                                                           ["t001_best", 2, 600, 44.0]]


def test_load_names_what_to_pass(tmp_path):
    with pytest.raises(experiment.ExperimentError, match="no experiment.json"):
        experiment.load(str(tmp_path))
