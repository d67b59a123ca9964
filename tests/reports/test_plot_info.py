"""The report's sections as plain data: every `_get_..._info` is checked without rendering."""

from __future__ import annotations

import json
import sys

import pytest

from experiment import Experiment
from reports.plot_info import (_get_comparison_info, _get_diagnostics_info, _get_fid_curves_info, _get_header_info,
                               _get_importance_info, _get_params_info, _get_reuse_info, _get_sample_grids_info)
from experiment.ranking import COLLAPSED, rank_trials


@pytest.fixture(scope="module")
def loaded(experiment_dir):
    experiment = Experiment.open(str(experiment_dir))
    return experiment, rank_trials(experiment)


def test_plot_info_does_not_import_plotly():
    # Compute is separate from render: the infos are plain data (STYLE.md).
    import subprocess

    code = "import sys, reports.plot_info, experiment.ranking; print('plotly' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_header_counts_trials_and_gpu_hours(loaded):
    experiment, _ = loaded
    info = _get_header_info(experiment)
    assert info.status_counts == {"completed": 4, "stopped": 3, "diverged": 1, "running": 1, "pending": 1,
                                  "failed": 0}
    assert (info.extractor, info.eval_samples, info.reference) == ("digits-classifier", 2000, "digits/train")
    trial_time = sum(30.0 * len(t.evaluations) for t in experiment.trials)
    assert info.trial_time_s == trial_time
    assert info.gpu_hours == pytest.approx(2 * 0.5 * trial_time / 3600)  # workers * gpus_per_worker * time
    assert info.versions["ray"] == "2.60.0" and info.finished
    assert info.fixed == {"augment": "translation", "eval_every": 200, "steps": 600}  # dataset and size: their own line


def test_sample_grids_show_top_trials_and_baseline_never_collapsed(loaded):
    experiment, ranking = loaded
    info = _get_sample_grids_info(experiment, ranking, top_k=1)
    assert [g.trial_id for g in info.grids] == ["t001_best", "t000_base"]
    assert info.grids[1].is_baseline and info.grids[0].step == 600
    assert info.grids[0].png.startswith(b"\x89PNG")
    full = _get_sample_grids_info(experiment, ranking)
    assert "t002_collapsed" not in [g.trial_id for g in full.grids]


def test_fid_curves_mark_where_each_trial_ended(loaded):
    _, ranking = loaded
    info = _get_fid_curves_info(ranking, 600)
    ends = {c.trial_id: c.end for c in info.curves}
    assert ends["t004_stopped"] == ends["t005_stopped"] == "stopped"
    assert ends["t003_diverged"] == "diverged" and ends["t007_running"] == "running"
    assert ends["t001_best"] is None
    assert "t008_pending" not in ends  # no evaluation, no curve
    best = next(c for c in info.curves if c.is_best)
    assert best.trial_id == "t001_best" and best.steps == [200, 400, 600]


def test_fid_curves_put_fid_on_a_log_axis(loaded, tmp_path, synthetic):
    # t009_not_learned's FIDs (2,200 and 2,300) sit beside FIDs of 10 to 120: on a linear axis
    # every other curve would be squashed into the bottom twentieth of the plot
    _, ranking = loaded
    info = _get_fid_curves_info(ranking, 600)
    assert max(f for c in info.curves for f in c.fids if f is not None) / min(
        f for c in info.curves for f in c.fids if f is not None) > 100
    assert info.y_axis == "log"
    from reports.figures import fid_curves_figure

    assert fid_curves_figure(info).layout.yaxis.type == "log"
    # a FID of 0 has no logarithm: that plot stays linear
    zero = synthetic.write_experiment(tmp_path, [synthetic.TrialSpec("a", {"lr_g": 2e-4}, [0.0]),
                                                 synthetic.TrialSpec("b", {"lr_g": 1e-4}, [40.0])], optuna_db=False)
    assert _get_fid_curves_info(rank_trials(Experiment(str(zero)))).y_axis == "linear"


def test_params_info_puts_learning_rates_on_log_axes(loaded):
    _, ranking = loaded
    info = _get_params_info(ranking)
    kinds = {a.name: a.kind for a in info.axes}
    assert kinds == {"lr_g": "log", "lr_d": "log", "d_steps_per_g": "linear", "latent_dim": "linear",
                     "loss": "categorical"}
    loss = next(a for a in info.axes if a.name == "loss")
    assert loss.categories == ["bce", "hinge", "wgan-gp"]  # lsgan only in the diverged trial: no FID
    assert "t003_diverged" not in info.trial_ids  # no FID to colour it by
    assert COLLAPSED in info.groups
    assert len(info.fids) == len(info.trial_ids) == len(info.axes[0].values)


def test_params_info_only_has_sampled_params(tmp_path, synthetic):
    exp = synthetic.write_experiment(tmp_path, [synthetic.TrialSpec("a", {"beta1": 0.5}, [30.0]), synthetic.TrialSpec("b", {"beta1": 0.1}, [40.0])],
                           optuna_db=False)
    info = _get_params_info(rank_trials(Experiment.open(str(exp))))
    assert [a.name for a in info.axes] == ["beta1"]


def test_importance_from_the_persisted_study(loaded):
    experiment, _ = loaded
    info = _get_importance_info(experiment)
    assert info.n_complete == 4  # the completed trials; those stopped early are PRUNED in the study
    assert set(info.importances) <= {"lr_g", "lr_d", "d_steps_per_g", "loss", "latent_dim"}
    assert info.importances and sum(info.importances.values()) == pytest.approx(1.0)


def test_importance_with_too_few_trials_says_so(tmp_path, synthetic):
    exp = synthetic.write_experiment(tmp_path, [synthetic.TrialSpec("a", {"lr_g": 1e-4}, [30.0]), synthetic.TrialSpec("b", {"lr_g": 2e-4}, [40.0])])
    info = _get_importance_info(Experiment.open(str(exp)))
    assert info.importances == {} and "only 2 complete trial(s)" in info.note


def test_importance_without_a_study_says_so(tmp_path, synthetic):
    exp = synthetic.write_experiment(tmp_path, [synthetic.TrialSpec("a", {"lr_g": 1e-4}, [30.0])], optuna_db=False)
    info = _get_importance_info(Experiment.open(str(exp)))
    assert info.importances == {} and "no optuna.db" in info.note
    assert not (exp / "optuna.db").exists()  # reading must not create one


def test_importance_reads_a_study_through_a_uri(experiment_dir):
    info = _get_importance_info(Experiment.open(experiment_dir.as_uri()))
    assert info.n_complete == 4 and info.importances


def test_diagnostics_cover_every_trial_and_top_class_coverage(loaded):
    _, ranking = loaded
    info = _get_diagnostics_info(ranking, top_k=2)
    assert {p.trial_id for p in info.points} == {r.trial_id for r in ranking.leaderboard}
    assert info.has_labels
    labels = [label for label, _ in info.class_coverage]
    assert len(labels) == 3 and "t000_base" in labels[-1]


def test_reuse_commands_use_best_config(loaded, experiment_dir):
    experiment, ranking = loaded
    info = _get_reuse_info(experiment, ranking)
    config = f"{experiment_dir}/best_config.json"
    commands = [command for _, command in info.commands]
    assert commands[:2] == [f"python -m search.train --config {config} --steps 50000 --workers 8",
                            f"python -m dcgan.train --config {config}"]
    baseline = f"{experiment_dir}/trials/{ranking.baseline.trial_id}/config.json"  # and the paper default, alike
    assert f"--config {config} --set steps=5000 --set seed=100" in commands[2]
    assert f"--config {baseline} --set steps=5000 --set seed=100" in commands[2]


def test_reuse_while_running_points_at_the_best_trial_config(tmp_path, synthetic):
    exp = synthetic.write_experiment(tmp_path, [synthetic.TrialSpec("a", {"lr_g": 1e-4}, [30.0], status="running")], finished=False,
                           optuna_db=False)
    experiment = Experiment.open(str(exp))
    info = _get_reuse_info(experiment, rank_trials(experiment))
    assert info.config_path == f"{exp}/trials/a/config.json" and "best_config.json" in info.note


def test_comparison_flags_fids_measured_differently(tmp_path, synthetic):
    a = synthetic.write_experiment(tmp_path / "a", [synthetic.TrialSpec("x", {"lr_g": 1e-4}, [30.0])], optuna_db=False)
    b = synthetic.write_experiment(tmp_path / "b", [synthetic.TrialSpec("y", {"lr_g": 1e-4}, [30.0], protocol=("inception-v3", 2000, "r"))],
                         name="other", optuna_db=False)
    import json

    meta = json.loads((b / "experiment.json").read_text())
    meta.update(extractor="inception-v3", reference="r")
    (b / "experiment.json").write_text(json.dumps(meta))
    same = _get_comparison_info(*(rank_trials(Experiment.open(str(p))) for p in (a, a)))
    assert same.comparable and same.labels[0] != same.labels[1]
    other = _get_comparison_info(*(rank_trials(Experiment.open(str(p))) for p in (a, b)))
    assert not other.comparable and "NOT comparable" in other.note
    assert other.fids == ([30.0], [30.0])


def test_params_info_can_leave_collapsed_trials_out(loaded):
    _, ranking = loaded
    info = _get_params_info(ranking, include_collapsed=False)
    assert "t002_collapsed" not in info.trial_ids and COLLAPSED not in info.groups


def test_reuse_says_when_best_config_holds_another_trial(synthetic, tmp_path):
    exp = synthetic.write_experiment(tmp_path, synthetic.default_trials(), optuna_db=False)
    # search.run's own rule picked the collapsed trial (lowest raw FID); the report does not.
    assert json.loads((exp / "best_config.json").read_text())["trial_id"] == "t002_collapsed"
    experiment = Experiment.open(str(exp))
    info = _get_reuse_info(experiment, rank_trials(experiment))
    assert info.best_trial_id == "t001_best" and info.best_config_trial_id == "t002_collapsed"
    assert f"{exp}/trials/t001_best/config.json" in info.note
    assert info.config_path == f"{exp}/best_config.json"


def test_protocol_is_taken_from_the_trials_while_experiment_json_has_nulls(synthetic, tmp_path):
    # search.run writes extractor and reference as null until the search ends.
    exp = synthetic.write_experiment(tmp_path, [
        synthetic.TrialSpec("a", {"lr_g": 1e-4}, [40.0]), synthetic.TrialSpec("b", {"lr_g": 2e-4}, [30.0]),
        synthetic.TrialSpec("odd", {"lr_g": 3e-4}, [5.0], protocol=("inception-v3", 2000, "digits/train")),
    ], finished=False, optuna_db=False)
    meta = json.loads((exp / "experiment.json").read_text())
    meta.update(extractor=None, reference=None)
    (exp / "experiment.json").write_text(json.dumps(meta))
    ranking = rank_trials(Experiment.open(str(exp)))
    assert ranking.protocol == ("digits-classifier", 2000, "digits/train")
    assert "experiment.json does not record it yet" in ranking.protocol_source
    assert [r.trial_id for r in ranking.leaderboard] == ["b", "a"] and ranking.unranked[0].trial_id == "odd"
