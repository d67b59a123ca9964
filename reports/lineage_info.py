"""What the report shows of a population-based search (pbt, pb2), as plain NamedTuples: the
winner's schedule, every exploit, and each member's FID with its exploits marked. Drawn by
`reports/figures.py` and `reports/html.py`; empty for a search without lineages (TPE, random).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

from dcgan.config import SCHEDULABLE
from experiment.layout import Experiment
from experiment.lineage import Exploit, read_lineage
from experiment.ranking import Ranking


class ScheduleInfo(NamedTuple):
    trial_id: str
    steps: list[int]  # where a value may change: 0, each change, the last step
    values: dict[str, list[Any]]  # param -> its value from each step of `steps` on


class ExploitRow(NamedTuple):
    trial_id: str
    exploit: Exploit


class MemberCurve(NamedTuple):
    trial_id: str
    steps: list[int]
    fids: list[Optional[float]]
    # after each exploit, its first evaluation: (step, FID, "went on from <member> at step <from_step>")
    exploits: list[tuple[int, Optional[float], str]]
    is_control: bool
    is_best: bool


class LineageInfo(NamedTuple):
    schedule: Optional[ScheduleInfo]  # the winner's
    exploits: list[ExploitRow]  # by step
    curves: list[MemberCurve]


def _get_lineage_info(experiment: Experiment, ranking: Ranking) -> LineageInfo:
    lineages = {t.trial_id: read_lineage(experiment, t.trial_id) for t in experiment.trials}
    lineages = {k: v for k, v in lineages.items() if v is not None}
    if not lineages:
        return LineageInfo(None, [], [])
    best = (experiment.best_config or {}).get("trial_id") or (ranking.best.trial_id if ranking.best else None)
    schedule = None
    if best in lineages:
        lineage, last = lineages[best], int(experiment.meta.get("steps") or 0)
        steps = [0, *(int(c["step"]) for c in lineage.changes)]
        steps.append(max(last, steps[-1]))
        names = [k for k in SCHEDULABLE if k in lineage.params]
        schedule = ScheduleInfo(best, steps, {k: [lineage.values_at(s)[k] for s in steps] for k in names})
    exploits = sorted((ExploitRow(tid, e) for tid, lineage in lineages.items() for e in lineage.exploits),
                      key=lambda r: (r.exploit.step, r.trial_id))
    control = experiment.meta.get("baseline_trial_id")
    curves = []
    for row in ranking.leaderboard:
        if row.trial_id not in lineages or not row.curve:
            continue
        steps, fids = [s for s, _ in row.curve], [f for _, f in row.curve]
        marks = []
        for e in lineages[row.trial_id].exploits:
            after = next(((s, f) for s, f in row.curve if s > e.from_step), None)
            if after is not None:
                marks.append((after[0], after[1], f"went on from {e.source} at step {e.from_step}"))
        curves.append(MemberCurve(row.trial_id, steps, fids, marks, row.trial_id == control, row.trial_id == best))
    return LineageInfo(schedule, exploits, curves)
