"""The CLIs: `python -m reports.build` and `python -m reports.compare`, called through main(argv)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from reports import build, compare

MAX_REPORT_BYTES = 10_000_000


@pytest.fixture(scope="module")
def built_report(built_report_path):
    return built_report_path.read_text()


def test_report_is_one_self_contained_file(built_report):
    assert built_report.count("Plotly.newPlot") >= 5
    # plotly.js is inlined exactly once and nothing is fetched: the page opens offline.
    assert built_report.count("plotly.js v") <= 2  # its banner comment, not repeated per figure
    assert 'src="http' not in built_report
    assert "<script src=" not in built_report
    assert len(built_report.encode()) < MAX_REPORT_BYTES


def test_report_sections_in_order(built_report):
    anchors = ['id="leaderboard"', 'id="samples"', 'id="curves"', 'id="params"', 'id="importance"',
               'id="diagnostics"', 'id="reuse"']
    positions = [built_report.index(a) for a in anchors]
    assert positions == sorted(positions)
    assert built_report.index("digits-classifier, 2000 samples") < positions[0]  # the header comes first
    assert built_report.index("augment=translation · eval_every=200 · steps=600") < positions[0]  # every trial's
    assert "data:image/png;base64," in built_report
    assert "python -m search.train --config" in built_report and "--steps 50000 --workers 8" in built_report


def test_leaderboard_marks_baseline_collapsed_and_diverged(built_report):
    rows = built_report[built_report.index('<table id="leaderboard">'):built_report.index("</table>")]
    order = [line.split('data-trial="')[1].split('"')[0] for line in rows.split("<tr ")[1:]]
    assert order[0] == "t001_best" and order[-3:] == ["t002_collapsed", "t009_not_learned", "t003_diverged"]
    assert '<tr class="baseline" data-trial="t000_base">' in rows
    assert '<tr class="collapsed" data-trial="t002_collapsed">' in rows
    assert '<span class="mark collapsed">collapsed</span>' in rows
    assert '<tr class="not-learned" data-trial="t009_not_learned">' in rows  # apart from collapse
    assert '<span class="mark never-learned">never learned</span>' in rows
    assert "40.0% lower FID than the baseline" in built_report


def test_default_output_is_in_the_experiment(experiment_dir, tmp_path, capsys):
    exp = shutil.copytree(experiment_dir, tmp_path / experiment_dir.name)
    assert build.main([str(exp)]) == 0
    assert (exp / "report.html").stat().st_size > 0
    assert "wrote" in capsys.readouterr().out


def test_file_uri_in_and_out(experiment_dir, tmp_path):
    exp = shutil.copytree(experiment_dir, tmp_path / experiment_dir.name)
    assert build.main([exp.as_uri()]) == 0
    assert (exp / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert build.main([exp.as_uri(), "-o", (tmp_path / "x.html").as_uri()]) == 0
    assert (tmp_path / "x.html").exists()


def test_partial_experiment_builds(tmp_path, synthetic):
    exp = synthetic.write_experiment(tmp_path, [
        synthetic.TrialSpec("done", {"lr_g": 1e-4, "lr_d": 2e-4}, [50.0, 40.0]),
        synthetic.TrialSpec("running", {"lr_g": 2e-4, "lr_d": 2e-4}, [45.0], status="running"),
        synthetic.TrialSpec("pending", {"lr_g": 3e-4, "lr_d": 2e-4}, [], status="pending", samples=False),
    ], finished=False)
    (exp / "trials" / "pending" / "status.json").unlink()  # not even started
    assert build.main([str(exp)]) == 0
    text = (exp / "report.html").read_text()
    assert "has not finished" in text and "only 1 complete trial(s)" in text
    assert "trials/done/config.json" in text  # no best_config.json yet


def test_smoke_sized_experiment_size(tmp_path, synthetic):
    exp = synthetic.write_experiment(tmp_path, synthetic.many_trials(24), grid_px=16)
    assert build.main([str(exp)]) == 0
    assert (exp / "report.html").stat().st_size < MAX_REPORT_BYTES


def _fail(*_args, **_kwargs):
    raise AssertionError("the experiment was read before the output path was checked")


@pytest.mark.parametrize("make_args", [
    lambda tmp: [str(tmp)],  # a directory that is not an experiment
    lambda tmp: [str(tmp / "missing")],
])
def test_not_an_experiment_exits_2(tmp_path, capsys, make_args):
    assert build.main(make_args(tmp_path)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("experiment.json" in err or "not a directory" in err)


def test_empty_experiment_exits_2(tmp_path, capsys, synthetic):
    exp = synthetic.write_experiment(tmp_path, [synthetic.TrialSpec("a", {"lr_g": 1e-4}, [], status="running", samples=False)],
                           finished=False, optuna_db=False)
    assert build.main([str(exp)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no results yet" in err
    assert not (exp / "report.html").exists()


@pytest.mark.parametrize("output", ["no/such/dir/report.html", ".", "/proc/dcgan-search-report.html"])
def test_unwritable_output_fails_before_any_work(experiment_dir, tmp_path, monkeypatch, capsys, output):
    """/proc: a folder no file can be created in, even by root (a read-only mount alike), where the
    report's temporary file raised FileNotFoundError once the report was built."""
    if output.startswith("/proc") and not os.path.isdir("/proc"):
        pytest.skip("no /proc here")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(build, "build_report", _fail)
    assert build.main([str(experiment_dir), "-o", output]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing half written


def test_compare_two_experiments(experiment_dir, tmp_path, synthetic):
    other = synthetic.write_experiment(tmp_path, synthetic.many_trials(6), name="betas-20261122-120000", space="betas",
                             optuna_db=False)
    out = tmp_path / "compare.html"
    assert compare.main([str(experiment_dir), str(other), "-o", str(out)]) == 0
    text = out.read_text()
    assert "ratio_lr-20261122-101500" in text and "betas-20261122-120000" in text
    assert text.count('<table id="leaderboard-') == 2 and "fig-fid-distributions" in text
    assert "compare directly" in text


def test_compare_bad_input_exits_2(experiment_dir, tmp_path, capsys):
    assert compare.main([str(experiment_dir), str(tmp_path)]) == 2
    assert "experiment.json" in capsys.readouterr().err


def test_no_side_effects_at_import():
    import subprocess
    import sys

    code = "import reports.build, reports.compare"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_all_collapsed_experiment_builds_with_no_winner(synthetic, tmp_path):
    exp = synthetic.write_experiment(tmp_path, [
        synthetic.TrialSpec("c1", dict(synthetic.BASELINE_PARAMS), [20.0], collapse=["collapsed"]),
        synthetic.TrialSpec("c2", {"lr_g": 1e-3, "lr_d": 1e-3, "d_steps_per_g": 2}, [10.0], collapse=["collapsed"]),
    ], optuna_db=False)
    assert build.main([str(exp)]) == 0
    text = (exp / "report.html").read_text()
    assert "No winner yet" in text and "Every trial with a FID collapsed" in text
    assert "this report has no winner" in text  # best_config.json (search.run's pick) is flagged


def test_experiment_without_any_fid_builds_and_lists_trials(synthetic, tmp_path):
    # A real smoke search without a feature extractor: evaluations whose "fid" is null.
    exp = synthetic.write_experiment(tmp_path, [synthetic.TrialSpec("a", {"lr_g": 1e-4}, [50.0])], optuna_db=False)
    results = exp / "trials" / "a" / "results.jsonl"
    results.write_text(json.dumps({"step": 200, "status": "completed", "fid": None, "time_s": 3.0}) + "\n")
    assert build.main([str(exp)]) == 0
    text = (exp / "report.html").read_text()
    assert "nothing is ranked" in text and "Not ranked (1)" in text and "data:image/png" in text
