"""rank_trials: plain data, checked without rendering anything."""

from __future__ import annotations

import json

import pytest

from experiment import Experiment
from experiment.ranking import COLLAPSED, DIVERGED, NOT_LEARNED, RANKED, UNRANKED, rank_trials


def _rank(synthetic, tmp_path, trials=None, **kwargs):
    return rank_trials(Experiment.open(str(synthetic.write_experiment(tmp_path, trials, optuna_db=False, **kwargs))))


def test_ranked_trials_are_sorted_by_their_last_fid(experiment_dir):
    ranking = rank_trials(Experiment.open(str(experiment_dir)))
    ranked = [r for r in ranking.leaderboard if r.group == RANKED]
    fids = [r.fid for r in ranked]
    assert fids == sorted(fids)
    assert [r.position for r in ranking.leaderboard] == list(range(1, len(ranking.leaderboard) + 1))
    assert ranking.best.trial_id == "t001_best"


def test_last_fid_ranks_and_best_fid_step_is_kept(tmp_path, synthetic):
    # Got worse at the end: ranked by the last FID (what the final checkpoint gives), best step kept.
    ranking = _rank(synthetic, tmp_path, [
        synthetic.TrialSpec("a", {"lr_g": 1e-4}, [50.0, 20.0, 60.0]),
        synthetic.TrialSpec("b", {"lr_g": 2e-4}, [55.0, 40.0, 45.0]),
    ])
    assert [r.trial_id for r in ranking.leaderboard] == ["b", "a"]
    a = ranking.leaderboard[1]
    assert (a.fid, a.best_fid, a.best_fid_step) == (60.0, 20.0, 400)


def test_best_gain_over_baseline_in_per_cent(experiment_dir):
    ranking = rank_trials(Experiment.open(str(experiment_dir)))
    assert ranking.baseline.trial_id == "t000_base" and ranking.baseline.is_baseline
    assert "baseline" in ranking.baseline.marks
    assert ranking.gain_over_baseline_pct == pytest.approx((50 - 30) / 50 * 100)


def test_baseline_found_by_params_when_no_trial_id(tmp_path, synthetic):
    exp = synthetic.write_experiment(tmp_path, [
        synthetic.TrialSpec("x", {"lr_g": 1e-3, "lr_d": 1e-3, "d_steps_per_g": 2}, [40.0]),
        synthetic.TrialSpec("y", dict(synthetic.BASELINE_PARAMS), [80.0]),
    ])
    meta = json.loads((exp / "experiment.json").read_text())
    meta["baseline_trial_id"] = None
    (exp / "experiment.json").write_text(json.dumps(meta))
    ranking = rank_trials(Experiment.open(str(exp)))
    assert ranking.baseline.trial_id == "y"
    assert ranking.gain_over_baseline_pct == pytest.approx(50.0)


def test_best_is_baseline_gives_zero_gain(tmp_path, synthetic):
    ranking = _rank(synthetic, tmp_path, [synthetic.TrialSpec("base", dict(synthetic.BASELINE_PARAMS), [10.0]),
                               synthetic.TrialSpec("worse", {"lr_g": 1e-3, "lr_d": 1e-3, "d_steps_per_g": 1}, [20.0])])
    assert ranking.best.trial_id == "base" and ranking.gain_over_baseline_pct == 0.0


def test_collapsed_trial_with_the_lowest_fid_is_never_on_top(experiment_dir):
    ranking = rank_trials(Experiment.open(str(experiment_dir)))
    collapsed = next(r for r in ranking.leaderboard if r.trial_id == "t002_collapsed")
    assert collapsed.fid == min(r.fid for r in ranking.with_fid())  # it has the best FID...
    assert collapsed.group == COLLAPSED and "collapsed" in collapsed.marks
    assert ranking.best.trial_id != "t002_collapsed"  # ...and still is not the best
    groups = [r.group for r in ranking.leaderboard]
    assert groups.index(COLLAPSED) > max(i for i, g in enumerate(groups) if g == RANKED)


def test_a_generator_that_never_learned_is_apart_from_collapse(experiment_dir):
    ranking = rank_trials(Experiment.open(str(experiment_dir)))
    groups = [r.group for r in ranking.leaderboard]
    assert groups == sorted(groups, key=[RANKED, COLLAPSED, NOT_LEARNED, DIVERGED].index)
    (unlearned,) = [r for r in ranking.leaderboard if r.group == NOT_LEARNED]
    assert unlearned.trial_id == "t009_not_learned" and "never learned" in unlearned.marks
    assert "collapsed" not in unlearned.marks and any("nowhere near the data" in n for n in unlearned.notes)


def test_partial_collapse_stays_ranked_but_marked(experiment_dir):
    ranking = rank_trials(Experiment.open(str(experiment_dir)))
    partial = next(r for r in ranking.leaderboard if r.trial_id == "t006_partial")
    assert partial.group == RANKED and "partial collapse" in partial.marks


def test_diverged_trials_come_last_and_are_marked(experiment_dir):
    ranking = rank_trials(Experiment.open(str(experiment_dir)))
    last = ranking.leaderboard[-1]
    assert last.trial_id == "t003_diverged" and last.group == DIVERGED
    assert last.fid is None and "diverged" in last.marks
    assert last.best_fid == 90.0  # its FIDs before diverging are kept for the curves


def test_fids_measured_another_way_are_not_ranked(tmp_path, synthetic):
    ranking = _rank(synthetic, tmp_path, [
        synthetic.TrialSpec("same", {"lr_g": 1e-4}, [50.0]),
        synthetic.TrialSpec("other_n", {"lr_g": 2e-4}, [5.0], protocol=("digits-classifier", 500, "digits/train")),
        synthetic.TrialSpec("other_extractor", {"lr_g": 3e-4}, [5.0], protocol=("inception-v3", 2000, "digits/train")),
    ])
    assert [r.trial_id for r in ranking.leaderboard] == ["same"]
    assert {r.trial_id for r in ranking.unranked} == {"other_n", "other_extractor"}
    notes = {r.trial_id: " ".join(r.notes) for r in ranking.unranked}
    assert "n=500" in notes["other_n"] and "inception-v3" in notes["other_extractor"]
    assert all(r.group == UNRANKED and "other FID" in r.marks for r in ranking.unranked)


def test_partial_experiment_ranks_what_it_has(tmp_path, synthetic):
    ranking = _rank(synthetic, tmp_path, [
        synthetic.TrialSpec("done", {"lr_g": 1e-4}, [50.0, 40.0]),
        synthetic.TrialSpec("running", {"lr_g": 2e-4}, [45.0], status="running"),
        synthetic.TrialSpec("pending", {"lr_g": 3e-4}, [], status="pending", samples=False),
    ], finished=False)
    assert [r.trial_id for r in ranking.leaderboard] == ["done", "running"]
    assert [r.trial_id for r in ranking.unranked] == ["pending"]
    assert "running" in ranking.leaderboard[1].marks


def test_half_written_last_line_is_skipped(tmp_path, synthetic):
    exp = synthetic.write_experiment(tmp_path, [synthetic.TrialSpec("a", {"lr_g": 1e-4}, [50.0, 40.0], status="running")])
    with open(exp / "trials" / "a" / "results.jsonl", "a") as f:
        f.write('{"step": 600, "status": "runn')  # the search is appending right now
    ranking = rank_trials(Experiment.open(str(exp)))
    assert ranking.leaderboard[0].fid == 40.0
    assert any("unreadable" in n for n in ranking.leaderboard[0].notes)


def test_file_uri_reads_the_same_as_a_local_path(experiment_dir):
    local = rank_trials(Experiment.open(str(experiment_dir)))
    uri = rank_trials(Experiment.open(experiment_dir.as_uri()))
    assert uri == local


def test_resumed_trial_keeps_the_later_row_of_a_repeated_step(tmp_path, synthetic):
    exp = synthetic.write_experiment(tmp_path, [synthetic.TrialSpec("a", {"lr_g": 1e-4}, [50.0, 40.0])], optuna_db=False)
    results = exp / "trials" / "a" / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    rows.append({**rows[-1], "fid": 35.0})  # resumed from the step-200 checkpoint, step 400 again
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    trial = rank_trials(Experiment.open(str(exp))).leaderboard[0]
    assert trial.curve == [(200, 50.0), (400, 35.0)] and trial.fid == 35.0


def test_failed_trial_shows_its_error(synthetic, tmp_path):
    exp = synthetic.write_experiment(tmp_path, [synthetic.TrialSpec("ok", {"lr_g": 1e-4}, [50.0]),
                                                synthetic.TrialSpec("boom", {"lr_g": 2e-4}, [], status="failed",
                                                                    samples=False)], optuna_db=False)
    (exp / "trials" / "boom" / "status.json").write_text(
        json.dumps({"status": "failed", "step": 0, "error": "CUDA out of memory"}))
    ranking = rank_trials(Experiment.open(str(exp)))
    boom = ranking.unranked[0]
    assert boom.trial_id == "boom" and "failed" in boom.marks and "CUDA out of memory" in boom.notes


def test_null_fid_without_divergence_is_unranked_not_diverged(synthetic, tmp_path):
    # Seen in a real smoke search: no feature extractor, so every row has "fid": null.
    exp = synthetic.write_experiment(tmp_path, [synthetic.TrialSpec("ok", {"lr_g": 1e-4}, [50.0]),
                                                synthetic.TrialSpec("nofid", {"lr_g": 2e-4}, [40.0])],
                                     optuna_db=False)
    results = exp / "trials" / "nofid" / "results.jsonl"
    rows = [{"step": r["step"], "status": r["status"], "d_loss": 1.0, "g_loss": 0.6, "fid": None, "time_s": 3.0}
            for r in map(json.loads, results.read_text().splitlines())]
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ranking = rank_trials(Experiment.open(str(exp)))
    assert [r.trial_id for r in ranking.leaderboard] == ["ok"]
    nofid = ranking.unranked[0]
    assert nofid.trial_id == "nofid" and "no FID" in nofid.marks and "diverged" not in nofid.marks
