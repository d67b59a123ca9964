"""Rank an experiment's trials by FID: plain data, no plotting.

The rules, in the order a reader of the leaderboard meets them:

1. Only FIDs measured like the experiment's (same extractor, sample count and reference
   split as experiment.json) are ranked; a trial whose last FID was measured otherwise is
   listed apart, with the reason.
2. Trials rank by the FID of their last evaluation (the best FID and its step are kept
   beside it). A collapsed generator can score a good FID on a few modes, so a trial whose
   last verdict is `collapsed` never tops the board: collapsed trials come after every
   non-collapsed one, marked. Then the trials whose generator never learned (verdict
   `not_learned`: samples nowhere near the data), then the diverged ones (no FID).
3. The baseline is `baseline_trial_id`, else the trial whose params equal `baseline_params`;
   the best trial's gain over it is in per cent of the baseline's FID.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Optional

from dcgan import keys
from experiment.layout import Experiment, Trial
from experiment import schema
from experiment.schema import json_safe, same_params, warm_runs

# Groups in leaderboard order; `unranked` trials are listed apart from the leaderboard.
RANKED, COLLAPSED, NOT_LEARNED, DIVERGED, UNRANKED = "ranked", "collapsed", "not learned", "diverged", "unranked"
GROUP_OF_VERDICT = {keys.COLLAPSED: COLLAPSED, keys.NOT_LEARNED: NOT_LEARNED}  # other verdicts: RANKED


class FidProtocol(NamedTuple):
    """How a FID was measured; FIDs with different protocols are never compared."""

    extractor: str | None
    n: int | None
    reference: str | None

    def describe(self) -> str:
        def say(value: object) -> str:
            return "unknown" if value is None else str(value)

        return f"{say(self.extractor)}, n={say(self.n)}, reference {say(self.reference)}"


@dataclass(frozen=True)
class RankedTrial:
    trial_id: str
    group: str  # RANKED | COLLAPSED | NOT_LEARNED | DIVERGED | UNRANKED
    position: int | None  # 1-based place on the leaderboard; None when unranked
    status: str  # status.json's word
    params: dict[str, Any]
    fid: float | None  # the last evaluation's FID
    best_fid: float | None
    best_fid_step: int | None
    last_eval_step: int | None
    steps_reached: int
    steps_target: int | None
    collapse: str | None  # the last evaluation's verdict: ok | partial | collapsed
    diagnostics: dict[str, float | None]  # keys.DIAGNOSTICS from the last evaluation
    curve: list[tuple[int, float | None]]  # (step, fid) of every evaluation
    time_s: float
    is_baseline: bool
    marks: list[str] = field(default_factory=list)  # short words shown beside the trial
    notes: list[str] = field(default_factory=list)  # why it is placed where it is


@dataclass(frozen=True)
class Ranking:
    experiment_name: str
    protocol: FidProtocol
    protocol_source: str  # "experiment.json", or how it was inferred while the search runs
    leaderboard: list[RankedTrial]  # ranked, then collapsed, then never learned, then diverged
    unranked: list[RankedTrial]  # no comparable FID yet, or one measured another way
    best: RankedTrial | None  # first of the ranked group: never collapsed, never diverged
    baseline: RankedTrial | None
    gain_over_baseline_pct: float | None  # (baseline FID - best FID) / baseline FID * 100
    gain_note: str  # a sentence on the gain, or why there is none
    param_names: list[str]

    @property
    def trials(self) -> list[RankedTrial]:
        return self.leaderboard + self.unranked

    @property
    def ranked(self) -> list[RankedTrial]:
        return [t for t in self.leaderboard if t.group == RANKED]

    def with_fid(self) -> list[RankedTrial]:
        """Leaderboard trials that have a comparable FID (ranked, collapsed, never learned)."""
        return [t for t in self.leaderboard if t.fid is not None]


def experiment_protocol(experiment: Experiment) -> tuple[FidProtocol, str]:
    """The protocol FIDs are ranked under, and where it came from.

    experiment.json's fields are authoritative. search.run writes them as null until the end
    of the search (they are "filled from the first FID"), so a null field is taken from the
    trials' last evaluations: the most common value among those that agree with the fields
    experiment.json does set.
    """
    meta = experiment.meta
    n = meta.get("eval_samples")
    declared = FidProtocol(meta.get("extractor"), int(n) if n is not None else None, meta.get("reference"))
    if None not in declared:
        return declared, "experiment.json"
    seen = Counter(_protocol_of(t.evaluations[-1]) for t in experiment.trials if t.evaluations
                   and all(d is None or d == o for d, o in zip(declared, _protocol_of(t.evaluations[-1]))))
    if not seen:
        return declared, "experiment.json"
    common = seen.most_common(1)[0][0]  # Counter keeps first-seen order on ties: trial ids are sorted
    filled = FidProtocol(*(d if d is not None else c for d, c in zip(declared, common)))
    return filled, "the trials' last evaluations; experiment.json does not record it yet"


def rank_trials(experiment: Experiment) -> Ranking:
    """Place every trial (see the module docstring for the rules)."""
    protocol, protocol_source = experiment_protocol(experiment)
    baseline_id = _baseline_trial_id(experiment)
    warm = warm_runs(experiment.meta.get("warm_start"))
    rows = [_summarise(t, protocol, t.trial_id == baseline_id, experiment,
                       warm_from=next((w["from"] for w in warm if same_params(t.params, w["params"])), None))
            for t in experiment.trials]

    def order(r: RankedTrial) -> tuple:
        fid = r.fid if r.fid is not None else math.inf
        return ({RANKED: 0, COLLAPSED: 1, NOT_LEARNED: 2, DIVERGED: 3}[r.group], fid, r.trial_id)

    board = sorted((r for r in rows if r.group != UNRANKED), key=order)
    board = [_with_position(r, i + 1) for i, r in enumerate(board)]
    unranked = sorted((r for r in rows if r.group == UNRANKED), key=lambda r: r.trial_id)
    best = next((r for r in board if r.group == RANKED), None)
    baseline = next((r for r in board + unranked if r.is_baseline), None)
    gain, note = _gain(best, baseline)
    names = sorted({k for t in experiment.trials for k in t.params})
    return Ranking(experiment.name, protocol, protocol_source, board, unranked, best, baseline, gain, note, names)


def _summarise(trial: Trial, protocol: FidProtocol, is_baseline: bool,
               experiment: Experiment, warm_from: Optional[str] = None) -> RankedTrial:
    evals = trial.evaluations
    comparable = [e for e in evals if _protocol_of(e) == protocol]
    last = evals[-1] if evals else None
    group, fid, marks, notes = _place(trial, last, protocol)
    if warm_from is not None:
        marks.insert(0, "warm start")
        notes.append(f"warm start: the config of {warm_from}, tried right after the baseline")
    if is_baseline:
        marks.insert(0, "baseline")
    scored = [e for e in comparable if e.get("fid") is not None]
    best = min(scored, key=lambda e: e["fid"]) if scored else None
    steps_target = trial.config.get("steps", experiment.meta.get("steps"))
    return RankedTrial(
        trial_id=trial.trial_id, group=group, position=None, status=trial.status,
        params=dict(trial.params), fid=fid,
        best_fid=float(best["fid"]) if best else None,
        best_fid_step=int(best["step"]) if best else None,
        last_eval_step=int(last["step"]) if last else None,
        steps_reached=trial.steps_reached,
        steps_target=int(steps_target) if steps_target is not None else None,
        collapse=last.get("collapse") if last else None,
        diagnostics={k: json_safe(last.get(k)) if last else None for k in keys.DIAGNOSTICS},
        curve=[(int(e["step"]), e.get("fid")) for e in comparable],
        time_s=trial.time_s, is_baseline=is_baseline, marks=marks, notes=notes,
    )


def _place(trial: Trial, last: dict[str, Any] | None,
           protocol: FidProtocol) -> tuple[str, float | None, list[str], list[str]]:
    """(group, ranked FID, marks, notes) of one trial from its last evaluation and its status."""
    marks: list[str] = []
    notes: list[str] = []
    # The status words say "diverged"; a null FID alone may only mean no extractor was available.
    diverged = trial.status == schema.DIVERGED or (last is not None and last.get(keys.STATUS) == schema.DIVERGED)
    if diverged:
        group, fid = DIVERGED, None
        marks.append("diverged")
        notes.append("a loss became NaN or infinite: no FID")
    elif last is None:
        group, fid = UNRANKED, None
        notes.append("no evaluation yet")
    elif last.get(keys.FID) is None:
        group, fid = UNRANKED, None
        marks.append("no FID")
        notes.append("its last evaluation has no FID (was a feature extractor available?)")
    elif _protocol_of(last) != protocol:
        group, fid = UNRANKED, None
        marks.append("other FID")
        notes.append(f"FID measured with {_protocol_of(last).describe()}; the experiment ranks "
                     f"{protocol.describe()}")
    else:
        fid = float(last[keys.FID])
        group = GROUP_OF_VERDICT.get(last.get(keys.COLLAPSE), RANKED)
    if group == COLLAPSED:
        marks.append("collapsed")
        notes.append("mode collapse: placed after every non-collapsed trial whatever its FID")
    elif group == NOT_LEARNED:
        marks.append("never learned")
        notes.append("never learned: its samples are nowhere near the data (precision and recall near 0); "
                     "a learning rate too low for the budget, or a discriminator that won from the start")
    elif last is not None and last.get(keys.COLLAPSE) == keys.PARTIAL:
        marks.append("partial collapse")
    if trial.status in (schema.STOPPED, schema.RUNNING, schema.PENDING, schema.FAILED):
        marks.append("stopped early" if trial.status == schema.STOPPED else trial.status)
    if trial.status == schema.FAILED:
        notes.append(trial.error or "failed")
    if trial.unreadable_lines:
        notes.append(f"{trial.unreadable_lines} unreadable line(s) in results.jsonl skipped")
    return group, fid, marks, notes


def _with_position(row: RankedTrial, position: int) -> RankedTrial:
    return RankedTrial(**{**row.__dict__, "position": position})


def _protocol_of(row: dict[str, Any]) -> FidProtocol:
    n = row.get("n")
    return FidProtocol(row.get("extractor"), int(n) if n is not None else None, row.get("reference"))


def _baseline_trial_id(experiment: Experiment) -> str | None:
    wanted = experiment.meta.get("baseline_trial_id")
    ids = [t.trial_id for t in experiment.trials]
    if wanted in ids:
        return wanted
    baseline_params = experiment.meta.get("baseline_params") or {}
    if not baseline_params:
        return None
    for t in experiment.trials:  # trial directories are sorted, so the choice is stable
        if same_params(t.config or t.params, baseline_params):
            return t.trial_id
    return None


def _gain(best: RankedTrial | None, baseline: RankedTrial | None) -> tuple[float | None, str]:
    if best is None:
        return None, "no trial has a comparable, non-collapsed FID yet"
    if baseline is None:
        return None, "no baseline trial in this experiment (none matched baseline_params)"
    if baseline.fid is None or baseline.fid <= 0:
        return None, f"the baseline ({baseline.trial_id}) has no comparable FID"
    gain = (baseline.fid - best.fid) / baseline.fid * 100
    if best.trial_id == baseline.trial_id:
        return 0.0, "the baseline is the best trial"
    direction = f"{gain:.1f}% lower" if gain >= 0 else f"{-gain:.1f}% higher"
    return gain, (f"best {best.trial_id}: FID {best.fid:.2f} vs baseline {baseline.trial_id} "
                  f"{baseline.fid:.2f}: {direction} FID")
