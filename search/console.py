"""What a person sees while a search runs, instead of Ray's tables and INFO lines:

    search ratio_lr-20261123-101500: 12 trials of 800 steps on digits 16px, 2 at a time
    5e09385c  step   400/800  FID   41.27  ok
    ...
    [ 2m14s] 3 of 12 trials done (2 completed, 1 stopped early), 2 running; best FID 31.20 (5e09385c); at most ~7m left (the confirmation's 6 runs included)

One line per evaluation, printed once (by the driver, not by every worker), and a progress line
each time a trial ends. `search.run --verbose` brings Ray's own output back instead.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Callable, Optional

from ray.tune import Callback
from ray.tune.experiment import Trial

from dcgan import keys
from experiment.ranking import Ranking
from experiment.schema import COMPLETED, DIVERGED, FAILED, STOPPED, final_status, json_safe
from search.protocol import REPLAYED


class Console(Callback):
    """Prints the evaluation lines and the progress lines of a search; with `ends_only`, one line
    per trial when it ends (the confirmation runs)."""

    def __init__(self, trials: int, steps: int, out: Optional[Callable[[str], None]] = None,
                 name_of: Optional[Callable] = None, ends_only: bool = False, confirm: tuple[int, int] = (0, 0)):
        self.trials, self.steps, self.ends_only = trials, steps, ends_only
        # (runs, steps of each) of the confirmation that follows the trials: the time left counts it
        # (search.confirm.planned_runs); at the same trial-steps a second as the trials so far
        self.confirm_runs, self.confirm_steps = confirm
        self._out = out  # None: print (a reference to print would not pickle with Tune's state)
        self._name_of = name_of  # what a trial is called on the console (default: its trial id)
        self.t0 = time.monotonic()
        self.latest: dict[str, dict] = {}  # trial id -> its latest row
        self.names: dict[str, str] = {}  # trial id -> what the console calls it
        self.restored: set[str] = set()  # trials known from before a --resume, not yet trained in this run

    def setup(self, **info) -> None:
        self.t0 = time.monotonic()  # also when restored from Tune's saved state by --resume
        self.restored = set()

    def out(self, line: str) -> None:
        (self._out or _print)(line)

    def name(self, trial) -> str:
        return self._name_of(trial) if self._name_of else trial.trial_id

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.latest[trial.trial_id] = result
        self.restored.discard(trial.trial_id)  # it trains in this run
        self.names[trial.trial_id] = self.name(trial)
        if not (result.get(REPLAYED) or self.ends_only):  # a resumed trial that had ended: printed before
            self.out(evaluation_line(self.name(trial), result, self.steps))

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        if self.ends_only:
            self.out(evaluation_line(self.name(trial), self.latest.get(trial.trial_id, {}), self.steps))
        else:
            self.out(self.progress_line(trials, {trial.trial_id: Trial.TERMINATED}))

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        step = int(self.latest.get(trial.trial_id, {}).get(keys.STEP, 0))
        self.out(f"{self.name(trial)}  lost after step {step} (its process or node failed); restarting it from its "
                 "last checkpoint")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        print(f"trial {self.name(trial)} failed: {trial.error_file or 'see the error above'}", file=sys.stderr)
        self.out(self.progress_line(trials, {trial.trial_id: Trial.ERROR}))

    def progress_line(self, trials: list[Trial], ending: Optional[dict[str, str]] = None) -> str:
        """Trials done, running, the best so far and the time left; `ending`: trials that are
        ending now, whose status Tune sets only after its callbacks ran."""
        for t in trials:  # a trial that had ended before --resume restored it reports nothing new
            if t.trial_id not in self.latest and t.last_result and keys.STEP in t.last_result:
                self.latest[t.trial_id], self.names[t.trial_id] = t.last_result, self.name(t)
                self.restored.add(t.trial_id)  # its steps were not spent in this run's time
        ended = {COMPLETED: 0, STOPPED: 0, DIVERGED: 0, FAILED: 0}
        running, spent, left = 0, 0, 0
        for t in trials:
            status = (ending or {}).get(t.trial_id, t.status)
            step = int(self.latest.get(t.trial_id, {}).get(keys.STEP, 0))
            spent += step if t.trial_id not in self.restored else 0
            if status == Trial.ERROR:
                ended[FAILED] += 1
            elif status == Trial.TERMINATED:
                ended[final_status(self.latest.get(t.trial_id), self.steps)] += 1
            else:
                running += status == Trial.RUNNING
                left += self.steps - step
        left += (self.trials - len(trials)) * self.steps
        done = sum(ended.values())
        words = [f"{n} {w}" for w, n in (("completed", ended[COMPLETED]), ("stopped early", ended[STOPPED]),
                                           ("diverged", ended[DIVERGED]), ("failed", ended[FAILED])) if n]
        elapsed = time.monotonic() - self.t0
        parts = [f"[{duration(elapsed):>6}] {done} of {self.trials} trials done"
                 + (f" ({', '.join(words)})" if words else "") + f", {running} running"]
        best = self.best()
        if best:
            parts.append(f"best FID {best[1]:.2f} ({best[0]})")
        left += self.confirm_runs * self.confirm_steps
        if left and spent:
            parts.append(f"at most ~{duration(elapsed * left / spent)} left"
                         + (f" (the confirmation's {self.confirm_runs} runs included)" if self.confirm_runs else ""))
        return "; ".join(parts)

    def best(self) -> Optional[tuple[str, float]]:
        fids = [(fid, tid) for tid, r in self.latest.items() if (fid := json_safe(r.get(keys.FID))) is not None]
        return (self.names.get(min(fids)[1], min(fids)[1]), min(fids)[0]) if fids else None


def _print(line: str) -> None:
    print(line, flush=True)


def evaluation_line(trial_id: str, result: dict, steps: int) -> str:
    step = int(result.get(keys.STEP, 0))
    if result.get(keys.STATUS) == DIVERGED:
        return f"{trial_id}  step {step:>5}/{steps}  diverged"
    fid = json_safe(result.get(keys.FID))
    fid_text = f"FID {fid:8.2f}" if fid is not None else "FID        -"
    return f"{trial_id}  step {step:>5}/{steps}  {fid_text}  {result.get(keys.COLLAPSE) or ''}".rstrip()


def duration(seconds: float) -> str:
    seconds = int(round(seconds)) if math.isfinite(seconds) else 0
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def format_table(ranking: Ranking, top: int = 5) -> str:
    """The top `top` trials of the leaderboard, then one line counting all trials by status."""
    lines = [f"{'rank':>4}  {'trial':<16} {'status':<9} {'step':>6} {'fid':>9} {'collapse':<9} params"]
    for t in ranking.leaderboard[:top]:
        fid = f"{t.fid:>9.3f}" if t.fid is not None else f"{'-':>9}"
        lines.append(f"{t.position:>4}  {t.trial_id:<16} {t.status:<9} {t.steps_reached:>6} {fid} "
                     f"{str(t.collapse or '-'):<9} {format_params(t.params)}")
    counts: dict[str, int] = {}
    for t in ranking.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    lines.append("trials: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return "\n".join(lines)


def format_params(params: dict) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in sorted(params.items()))


def _short(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
