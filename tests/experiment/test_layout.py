"""The experiment directory's writer and reader, through pyarrow.fs: local paths and URIs alike; no Ray."""

from __future__ import annotations

import json
import math

import pytest

from dcgan.config import TrainConfig
from experiment import Experiment, rank_trials, winner
from experiment.layout import join_uri, parent_uri
from experiment.winner import best_config_json
from experiment.schema import EXPERIMENT_FIELDS, final_status, result_row
from search.console import format_table


@pytest.fixture(params=["path", "uri"])
def experiment(tmp_path, request):
    root = tmp_path / "exp"
    return Experiment(str(root) if request.param == "path" else f"file://{root}")


def test_results_rows_are_replaced_from_a_resumed_step(experiment):
    for step in (10, 20, 30):
        experiment.append_result("t1", {"step": step, "status": "running", "fid": float(step)})
    experiment.append_result("t1", {"step": 20, "status": "running", "fid": math.nan})  # restarted at 10
    rows, unreadable = experiment.read_jsonl("trials", "t1", "results.jsonl")
    assert [(r["step"], r["fid"]) for r in rows] == [(10, 10.0), (20, None)] and unreadable == 0


def test_json_files_have_no_nan(experiment):
    experiment.write_json({"fid": math.inf, "n": 3}, "x.json")
    assert json.loads(experiment.read_text("x.json")) == {"fid": None, "n": 3}
    assert experiment.exists("x.json") and not experiment.exists("y.json")


def test_experiment_json_holds_exactly_its_fields(experiment):
    info = {k: None for k in EXPERIMENT_FIELDS}
    experiment.write_info(info)
    assert experiment.update_info(name="x")["name"] == "x"
    with pytest.raises(ValueError, match="unknown \\['nmae'\\]"):
        experiment.update_info(nmae="typo")
    with pytest.raises(ValueError, match="missing \\['name'"):
        experiment.write_info({k: v for k, v in info.items() if k != "name"})
    assert json.loads(experiment.read_text("experiment.json"))["name"] == "x"  # not overwritten


def test_result_row_keeps_the_schema_keys():
    row = result_row({"step": 40, "status": "completed", "fid": 12.5, "collapse": "ok", "training_iteration": 4,
                      "checkpoint_path": "/x", "modes": 870.0, "modes_kl": 0.1}, time_s=3.21)
    assert row == {"step": 40, "status": "completed", "fid": 12.5, "collapse": "ok", "modes": 870.0,
                   "modes_kl": 0.1, "time_s": 3.21}
    assert result_row({"step": 5, "status": "diverged", "fid": math.nan}, 1.0)["fid"] is None


def test_final_status():
    assert final_status({"step": 40, "status": "completed"}, 40) == "completed"
    assert final_status({"step": 20, "status": "running"}, 40) == "stopped"
    assert final_status({"step": 7, "status": "diverged"}, 40) == "diverged"


def test_uris_keep_their_query_at_the_end():
    uri = "s3://bucket/exps?endpoint_override=127.0.0.1:5000&scheme=http"
    assert join_uri(uri, "name") == "s3://bucket/exps/name?endpoint_override=127.0.0.1:5000&scheme=http"
    assert parent_uri(join_uri(uri, "name")) == (uri, "name")
    assert join_uri("/tmp/x/", "a", "b") == "/tmp/x/a/b" and parent_uri("/tmp/x/a") == ("/tmp/x", "a")


def test_best_is_the_rankings_winner(experiment):
    """best_config.json holds the leaderboard's best: lowest last FID, collapsed after every other
    trial whatever its FID, diverged never."""
    experiment.write_info({k: None for k in EXPERIMENT_FIELDS} | {"name": "exp", "steps": 40,
                                                                 "baseline_trial_id": "b"})
    cfg = TrainConfig(steps=40).to_dict()
    for tid, status, step, fid, collapse in [("a", "completed", 40, 30.0, "collapsed"),
                                             ("b", "completed", 40, 50.0, "ok"),
                                             ("c", "stopped", 20, 40.0, "partial"),
                                             ("d", "diverged", 9, None, None)]:
        experiment.start_trial(tid, {"lr_g": 1e-3}, cfg)
        experiment.write_status(tid, status, step)
        experiment.append_result(tid, result_row({"step": step, "status": status, "fid": fid, "collapse": collapse,
                                                  "extractor": "x" if fid else None, "n": 10, "reference": "r"}, 1.0))
    loaded = Experiment(experiment.uri)
    ranking = rank_trials(loaded)
    assert [t.trial_id for t in ranking.leaderboard] == ["c", "b", "a", "d"]
    best = winner(ranking)
    assert best.trial_id == "c"
    assert best_config_json(loaded, best)["checkpoint"] is None  # no checkpoint kept
    for n in (1, 0, 2):  # Tune's folders of the trial's checkpoints; the last, not the first written
        experiment.write_text("", "tune-c", f"checkpoint_{n:06d}", "state.pt")
    experiment.write_text("", "tune-b", "train", "checkpoint_000004", "state.pt")  # a multi-worker trial's
    best_json = best_config_json(loaded, best)
    assert best_json["checkpoint"] == join_uri(experiment.uri, "tune-c", "checkpoint_000002")
    assert loaded.last_checkpoint("b") == join_uri(experiment.uri, "tune-b", "train", "checkpoint_000004")
    assert TrainConfig.from_json(json.dumps(best_json)) == TrainConfig(steps=40)
    assert best_json["fid"] == 40.0 and best_json["trial_id"] == "c" and best_json["diagnostics"]["collapse"] == "partial"
    table = format_table(ranking)
    assert table.splitlines()[1].split()[:2] == ["1", "c"] and "1 diverged" in table
