"""docs/notebook.md's code, run: its ```python blocks in order, in one namespace, as a notebook runs
its cells. The blocks that read an experiment run on a synthetic one (no Ray); the whole page,
run_search included, runs in the slow test with a tiny config."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "notebook.md"
NAME = "ratio_lr-notebook"  # the name the page's run_search gives, and its load reads
# run_search's options at test size, on top of the page's
TINY = dict(image_size=8, trials=2, steps=40, confirm=1, confirm_seeds=1,
            set={"ngf": 8, "ndf": 8, "eval_samples": 200, "batch_size": 32, "eval_every": 10})


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def run_blocks(code: list[str], namespace: dict) -> dict:
    for i, block in enumerate(code):
        exec(compile(block, f"{DOC.name} block {i + 1}", "exec"), namespace)
    return namespace


def test_the_page_reads_a_real_experiment(tmp_path, monkeypatch, synthetic):
    exp_dir = synthetic.write_experiment(tmp_path / "experiments", name=NAME)
    synthetic.add_confirmation(exp_dir, {"t001_best": [40.0, 44.0], "t000_base": [50.0, 52.0]})
    monkeypatch.chdir(tmp_path)
    reading = [b for b in blocks() if "run_search" not in b]
    assert len(reading) >= 6 and len(blocks()) - len(reading) == 2
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    ns = run_blocks(reading, {})
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before  # reading wrote nothing
    trials, curves = ns["trials"], ns["curves"]
    assert len(trials) == 10 and ns["winner"].trial_id == "t001_best"  # confirmed: 42 against the baseline's 51
    assert len(curves) == 19 and not ns["with_params"].empty
    assert ns["confirm"].groupby("trial_id").fid.mean()["t001_best"] == pytest.approx(42.0)


@pytest.mark.slow
def test_the_whole_page_runs_a_search(ray_session, tmp_path, monkeypatch, capsys):
    """run_search from Python: a dry run, then a tiny real search, whose experiment the rest of the
    page reads. The frame's winner is the trial the search's best_config.json holds."""
    import search

    def tiny(**options):
        return search.run_search(**{**options, **TINY})

    monkeypatch.chdir(tmp_path)
    page = blocks()
    assert page[0].startswith("from search import run_search\n")
    ns = run_blocks([page[0].replace("from search import run_search\n", ""), *page[1:]], {"run_search": tiny})
    out = capsys.readouterr().out
    assert "dry run of search ratio_lr-notebook" in out
    exp = ns["exp"]
    trials = exp.trials_frame()
    assert len(trials) == 2 and set(trials.status) <= {"completed", "stopped"}
    winner = exp.best_config["trial_id"]
    assert trials.set_index("trial_id").is_winner.to_dict() == {t: t == winner for t in trials.trial_id}
    assert len(exp.curves_frame()) == sum(len(t.evaluations) for t in exp.trials)
