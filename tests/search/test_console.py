"""The console's progress line, fed by hand: no Ray started, no search run."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

from ray.tune.experiment import Trial

from search.console import Console


def trial(trial_id: str, status: str, step: int, fid: float = 50.0) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, status=status, last_result={"step": step, "fid": fid})


def left_s(line: str) -> int:
    """The seconds of 'at most ~[Xm]YYs left' in a progress line."""
    m, s = re.search(r"at most ~(?:(\d+)m)?(\d+)s left", line).groups()
    return int(m or 0) * 60 + int(s)


def progress(console: Console, trials: list) -> str:
    """The line the console prints as the last of `trials` ends, after 60 s of search."""
    for t in trials:
        console.latest[t.trial_id] = t.last_result
    console.t0 = time.monotonic() - 60
    *ended, last = trials
    return console.progress_line(trials, {last.trial_id: Trial.TERMINATED})


def test_time_left_counts_the_confirmation():
    # 2 of 4 trials of 100 steps done and 2 running at step 50: 300 trial-steps in 60 s, 100 left;
    # then a confirmation of 6 runs of 100 steps: 600 more, 700 in all, at the same 5 trial-steps a second
    trials = [trial("a", Trial.TERMINATED, 100), trial("b", Trial.RUNNING, 50), trial("c", Trial.RUNNING, 50),
              trial("d", Trial.RUNNING, 100)]
    alone = progress(Console(4, 100, out=lambda _: None), trials)
    confirmed = progress(Console(4, 100, out=lambda _: None, confirm=(6, 100)), trials)
    assert abs(left_s(alone) - 20) <= 1, alone
    assert abs(left_s(confirmed) - 140) <= 1, confirmed
    assert "the confirmation's 6 runs included" in confirmed and "confirmation" not in alone


def test_time_left_after_the_last_trial_is_the_confirmation():
    # every trial has ended: without a confirmation nothing is left, with one its runs are
    trials = [trial("a", Trial.TERMINATED, 100), trial("b", Trial.TERMINATED, 100)]
    assert "left" not in progress(Console(2, 100, out=lambda _: None), trials)
    line = progress(Console(2, 100, out=lambda _: None, confirm=(3, 200)), trials)
    assert abs(left_s(line) - 180) <= 1 and "2 of 2 trials done (2 completed)" in line, line


def test_planned_confirmation_runs():
    from search.confirm import planned_runs

    plan = SimpleNamespace(confirm=2, confirm_seeds=2, confirm_steps=None, steps=800)
    assert planned_runs(plan) == (6, 800)  # the top 2 and the baseline, 2 seeds each
    assert planned_runs(SimpleNamespace(**plan.__dict__ | {"confirm_steps": 3000})) == (6, 3000)
    assert planned_runs(SimpleNamespace(**plan.__dict__ | {"confirm": 0})) == (0, 0)
