"""A population-based search's members: where each one's weights came from and the hyperparameters
that trained them, as data (`trials/<id>/lineage.json`, docs/experiment-layout.md).

A member starts with the params it was drawn with. When it falls behind, it goes on from another
member's checkpoint (an exploit) with that member's values, perturbed. Its *schedule* is then the
other member's schedule up to the checkpoint's step, and the new values from there: replayed from
step 0 (`TrainConfig.schedule`), it trains the same weights. Each exploit is kept too: the member's
step when it was exploited, the member and step it went on from, and the values that changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from dcgan.config import SCHEDULABLE
from experiment.layout import LINEAGE_JSON, TRIALS, Experiment



@dataclass(frozen=True)
class Exploit:
    step: int  # the member's own step when it was exploited
    source: str  # the member whose checkpoint it went on from
    from_step: int  # that checkpoint's step: the member trains on from from_step + 1
    changed: dict[str, list]  # {param: [the source's value, the new value]}, the params that differ


@dataclass(frozen=True)
class Lineage:
    params: dict[str, Any]  # the values its weights started with at step 0 (its first ancestor's draw)
    changes: list[dict[str, Any]]  # [{"step": s, param: value, ...}]: TrainConfig.schedule's JSON
    exploits: list[Exploit]

    def replay_params(self) -> dict[str, Any]:
        """The overrides that train this member's weights from step 0: its first values and schedule."""
        return {**self.params, "schedule": [dict(c) for c in self.changes]}

    def values_at(self, step: int) -> dict[str, Any]:
        """The params that trained the updates after `step`."""
        values = dict(self.params)
        for change in self.changes:
            if change["step"] <= step:
                values.update({k: v for k, v in change.items() if k != "step"})
        return values


def read_lineage(experiment: Experiment, trial_id: str) -> Optional[Lineage]:
    """The member's lineage, or None for a trial of a search without one (TPE, random)."""
    raw = experiment.read_json(TRIALS, trial_id, LINEAGE_JSON)
    if not isinstance(raw, dict):
        return None
    return Lineage(dict(raw.get("params") or {}), [dict(c) for c in raw.get("changes") or []],
                   [Exploit(int(e["step"]), str(e["source"]), int(e["from_step"]), dict(e.get("changed") or {}))
                    for e in raw.get("exploits") or []])


def _write(experiment: Experiment, trial_id: str, lineage: Lineage) -> None:
    experiment.write_json({"params": lineage.params, "changes": lineage.changes,
                           "exploits": [e.__dict__ for e in lineage.exploits]}, TRIALS, trial_id, LINEAGE_JSON)


def start_lineage(experiment: Experiment, trial_id: str, params: dict[str, Any]) -> None:
    """A new member's lineage: its drawn params from step 0 (kept if it has one: a resumed search)."""
    if read_lineage(experiment, trial_id) is None:
        _write(experiment, trial_id, Lineage(dict(params), [], []))


def record_exploit(experiment: Experiment, trial_id: str, at_step: int, source_id: str, from_step: int,
                   new_params: dict[str, Any]) -> Lineage:
    """Member `trial_id`, at its step `at_step`, goes on from `source_id`'s checkpoint at `from_step`
    with `new_params`: its lineage becomes the source's up to from_step, then the new values."""
    source = read_lineage(experiment, source_id) or Lineage({}, [], [])
    mine = read_lineage(experiment, trial_id) or Lineage({}, [], [])
    before = source.values_at(from_step)
    scheduled = {k: new_params[k] for k in SCHEDULABLE if k in new_params}
    changed = {k: [before.get(k), v] for k, v in scheduled.items() if before.get(k) != v}
    changes = [*(c for c in source.changes if c["step"] < from_step), {"step": int(from_step), **scheduled}]
    lineage = Lineage(dict(source.params), changes,
                      [*mine.exploits, Exploit(int(at_step), source_id, int(from_step), changed)])
    _write(experiment, trial_id, lineage)
    return lineage


def replay_params(experiment: Experiment, trial_id: str) -> dict[str, Any]:
    """The overrides that train trial `trial_id` again from step 0: a member's first values and
    schedule, or a sampled trial's params."""
    lineage = read_lineage(experiment, trial_id)
    return lineage.replay_params() if lineage else experiment.read_trial(trial_id).params
