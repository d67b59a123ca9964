"""A population's lineage as data (experiment.lineage) and as the report draws it (reports.lineage_info):
a planted exploit, checked without Ray or rendering."""

from __future__ import annotations

import pytest

from experiment import Experiment
from experiment.lineage import read_lineage, record_exploit, replay_params, start_lineage
from experiment.ranking import rank_trials
from reports.html import exploits_html
from reports.lineage_info import _get_lineage_info

A = {"d_steps_per_g": 2, "lr_d": 1e-4, "lr_g": 1e-3}
B = {"d_steps_per_g": 1, "lr_d": 3e-5, "lr_g": 5e-4}
BASE = {"d_steps_per_g": 1, "lr_d": 2e-4, "lr_g": 2e-4}


@pytest.fixture
def population(tmp_path, synthetic):
    """Member b went on from a at step 400 with new values, then c from b at step 600."""
    spec = synthetic.TrialSpec
    trials = [spec("t0_base", BASE, [90.0, 80.0, 70.0, 60.0]), spec("a", A, [60.0, 40.0, 30.0, 25.0]),
              spec("b", B, [80.0, 70.0, 35.0, 28.0]), spec("c", B, [85.0, 75.0, 65.0, 29.0])]
    root = synthetic.write_experiment(tmp_path, trials, steps=800)
    exp = Experiment(str(root))
    for t in trials:
        start_lineage(exp, t.trial_id, t.params)
    record_exploit(exp, "b", 400, "a", 400, {**A, "lr_g": 1.2e-3})
    record_exploit(exp, "c", 600, "b", 600, {**A, "lr_g": 1.2e-3, "lr_d": 8e-5})
    return Experiment(str(root))


def test_an_exploit_makes_the_lineage_the_sources_then_the_new_values(population):
    b, c = read_lineage(population, "b"), read_lineage(population, "c")
    assert b.params == A and b.changes == [{"step": 400, **A, "lr_g": 1.2e-3}]
    assert b.exploits[0].source == "a" and b.exploits[0].changed == {"lr_g": [1e-3, 1.2e-3]}
    # c's weights came from b at 600: b's lineage to there, then c's values
    assert c.params == A and [x["step"] for x in c.changes] == [400, 600]
    assert c.values_at(500)["lr_g"] == 1.2e-3 and c.values_at(600)["lr_d"] == 8e-5
    assert replay_params(population, "c") == {**A, "schedule": c.changes}
    assert replay_params(population, "t0_base") == {**BASE, "schedule": []}
    start_lineage(population, "c", B)  # a resumed search: kept as it is
    assert read_lineage(population, "c") == c


def test_the_report_shows_the_schedule_the_exploits_and_where_they_landed(population):
    info = _get_lineage_info(population, rank_trials(population))
    winner = population.best_config["trial_id"]
    assert info.schedule.trial_id == winner
    lineage = read_lineage(population, winner)
    assert info.schedule.steps[0] == 0 and info.schedule.steps[-1] == 800
    assert info.schedule.values["lr_g"] == [lineage.values_at(s)["lr_g"] for s in info.schedule.steps]
    assert [(r.trial_id, r.exploit.step) for r in info.exploits] == [("b", 400), ("c", 600)]
    marks = {c.trial_id: c.exploits for c in info.curves}
    assert [m[:2] for m in marks["b"]] == [(600, 35.0)] and [m[:2] for m in marks["c"]] == [(800, 29.0)]
    assert {c.trial_id for c in info.curves if c.is_control} == {population.meta["baseline_trial_id"]}
    html = exploits_html(info)
    assert '<tr><td class="l">b</td><td>400</td><td class="l">a</td><td>400</td>' in html
    assert "lr_g 1.00e-03 &rarr; 1.20e-03" in html


def test_a_search_without_lineages_has_no_population_sections(experiment_dir):
    exp = Experiment(str(experiment_dir))
    assert _get_lineage_info(exp, rank_trials(exp)).curves == []
