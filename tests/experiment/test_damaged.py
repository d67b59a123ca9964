"""Damaged state (a full disk, an editor): a damaged experiment.json or best_config.json is one line
naming the file and the fix, exit 2 at the command line, ExperimentError from Python; a damaged file
of one trial leaves that trial out with one warning line, and the report and the DataFrame build from
the rest. No Ray."""

from __future__ import annotations

import shutil

import pytest

from experiment import ExperimentError, load
from reports import build

# What a full disk or a crash leaves: a file cut short, one emptied, one of other bytes.
DAMAGE = {"cut": lambda text: text[: len(text) // 2], "empty": lambda text: "", "bytes": None}


def damage(path, how: str) -> None:
    if how == "bytes":
        path.write_bytes(b"\xff\xfe\x00garbage\x9c")
    else:
        path.write_text(DAMAGE[how](path.read_text()))


@pytest.fixture
def experiment(experiment_dir, tmp_path):
    return shutil.copytree(experiment_dir, tmp_path / experiment_dir.name)


def one_line(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_damaged_experiment_json_is_one_line_at_every_command(experiment, capsys, how):
    from search import run as search_run

    damage(experiment / "experiment.json", how)
    before = {p: p.stat().st_mtime_ns for p in experiment.rglob("*")}
    argv = ["--space", "ratio_lr", "--storage", str(experiment.parent), "--name", experiment.name, "--resume"]
    for main, args in [(search_run.main, argv), (build.main, [str(experiment)])]:
        assert main(args) == 2
        err = one_line(capsys)
        assert len(err) == 1 and "experiment.json is damaged" in err[0] and "restore it from a copy" in err[0], err
    assert {p: p.stat().st_mtime_ns for p in experiment.rglob("*")} == before  # nothing written
    with pytest.raises(ExperimentError, match="experiment.json is damaged"):  # Python raises, never exits
        load(str(experiment)).trials_frame()


@pytest.mark.parametrize("name", ["status.json", "params.json", "config.json", "lineage.json"])
def test_a_trials_damaged_file_leaves_it_out_with_one_warning(experiment, capsys, name, tmp_path):
    hurt = sorted((experiment / "trials").iterdir())[2]
    file = hurt / name
    if not file.exists():
        file.write_text('{"params": {}, "changes": [], "exploits": []}\n')
    damage(file, "cut")
    all_trials = len(list((experiment / "trials").iterdir()))
    out = tmp_path / "r.html"
    assert build.main([str(experiment), "-o", str(out)]) == 0
    printed = capsys.readouterr()
    warnings = [line for line in printed.err.splitlines() if line.startswith("warning")]
    assert len(warnings) == 1, printed.err
    assert warnings[0].startswith(f"warning: trials/{hurt.name} left out: {file} is damaged (not valid JSON: ")
    assert f"{all_trials - 1} trials" in printed.out and out.exists()
    frame = load(str(experiment)).trials_frame()
    assert len(frame) == all_trials - 1 and hurt.name not in set(frame["trial_id"])


def test_a_damaged_results_file_reads_as_unreadable_lines(experiment, capsys):
    from experiment import Experiment

    trial = sorted((experiment / "trials").iterdir())[1]
    damage(trial / "results.jsonl", "bytes")
    exp = Experiment(str(experiment))
    read = {t.trial_id: t for t in exp.trials}
    assert read[trial.name].results == [] and read[trial.name].unreadable_lines == 1
    assert build.main([str(experiment), "-o", str(experiment / "r.html")]) == 0


def test_damaged_best_config_json_is_one_line(experiment, capsys):
    damage(experiment / "best_config.json", "cut")
    assert build.main([str(experiment), "-o", str(experiment / "r.html")]) == 2
    err = one_line(capsys)
    assert len(err) == 1 and "best_config.json is damaged" in err[0] and "restore it from a copy" in err[0], err
    assert not (experiment / "r.html").exists()


def test_a_full_disk_while_writing_the_report_is_one_line_and_the_old_report_stays(experiment, capsys, monkeypatch,
                                                                                   tmp_path):
    from dcgan.files import EXIT_DISK_FULL, FAULT_ENV

    report = experiment / "r.html"
    report.write_text("the report of yesterday")
    monkeypatch.setenv(FAULT_ENV, f"1:{tmp_path / 'writes'}")
    assert build.main([str(experiment), "-o", str(report)]) == EXIT_DISK_FULL
    err = one_line(capsys)
    assert len(err) == 1 and err[0].startswith(f"reports.build: the disk is full: writing {report} failed ("), err
    assert err[0].endswith("free some space, then run it again")
    assert report.read_text() == "the report of yesterday" and not list(experiment.glob("*.tmp"))
