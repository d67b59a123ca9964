"""The experiment files, through pyarrow.fs: local paths and URIs alike; no Ray."""

from __future__ import annotations

import json
import math

import pytest

from search.callback import final_status, result_row
from search.layout import Experiment
from search.summary import best_config_json, format_table, rank, winner
from dcgan.config import TrainConfig


@pytest.fixture(params=["path", "uri"])
def experiment(tmp_path, request):
    root = tmp_path / "exp"
    return Experiment(str(root) if request.param == "path" else f"file://{root}")


def test_results_rows_are_replaced_from_a_resumed_step(experiment):
    for step in (10, 20, 30):
        experiment.append_result("t1", {"step": step, "status": "running", "fid": float(step)})
    experiment.append_result("t1", {"step": 20, "status": "running", "fid": math.nan})  # restarted at 10
    rows = experiment.read_jsonl("trials", "t1", "results.jsonl")
    assert [(r["step"], r["fid"]) for r in rows] == [(10, 10.0), (20, None)]


def test_json_files_have_no_nan(experiment):
    experiment.write_json({"fid": math.inf, "n": 3}, "x.json")
    assert json.loads(experiment.read_text("x.json")) == {"fid": None, "n": 3}
    assert experiment.exists("x.json") and not experiment.exists("y.json")


def test_result_row_keeps_the_layout_keys():
    row = result_row({"step": 40, "status": "completed", "fid": 12.5, "collapse": "ok", "training_iteration": 4,
                      "time_total_s": 3.21, "checkpoint_path": "/x"})
    assert row == {"step": 40, "status": "completed", "fid": 12.5, "collapse": "ok", "time_s": 3.21}
    assert result_row({"step": 5, "status": "diverged", "fid": math.nan})["fid"] is None


def test_final_status():
    assert final_status({"step": 40, "status": "completed"}, 40) == "completed"
    assert final_status({"step": 20, "status": "running"}, 40) == "stopped"
    assert final_status({"step": 7, "status": "diverged"}, 40) == "diverged"


def test_best_is_the_reports_winner(experiment):
    """best_config.json holds the report's best: lowest last FID, collapsed after every other
    trial whatever its FID, diverged never."""
    experiment.write_json({"name": "exp", "steps": 40, "baseline_trial_id": "b"}, "experiment.json")
    cfg = TrainConfig(steps=40).to_dict()
    for tid, status, step, fid, collapse in [("a", "completed", 40, 30.0, "collapsed"),
                                             ("b", "completed", 40, 50.0, "ok"),
                                             ("c", "stopped", 20, 40.0, "partial"),
                                             ("d", "diverged", 9, None, None)]:
        experiment.write_json(cfg, "trials", tid, "config.json")
        experiment.write_json({"lr_g": 1e-3}, "trials", tid, "params.json")
        experiment.write_status(tid, status, step)
        experiment.append_result(tid, {"step": step, "status": status, "fid": fid, "collapse": collapse,
                                       "extractor": "x" if fid else None, "n": 10, "reference": "r"})
    loaded, ranking = rank(experiment.uri)
    assert [t.trial_id for t in ranking.leaderboard] == ["c", "b", "a", "d"]
    best = winner(ranking)
    assert best.trial_id == "c"
    best_json = best_config_json(loaded, best)
    assert TrainConfig.from_json(json.dumps(best_json)) == TrainConfig(steps=40)
    assert best_json["fid"] == 40.0 and best_json["trial_id"] == "c" and best_json["diagnostics"]["collapse"] == "partial"
    table = format_table(ranking)
    assert table.splitlines()[1].split()[:2] == ["1", "c"] and "1 diverged" in table
