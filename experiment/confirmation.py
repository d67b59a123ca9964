"""The confirmation of a search's winner: the top trials and the baseline, trained again with other
seeds (confirm/<trial_id>-seed<seed>/), as plain data.

GAN scores swing with the seed, and a config tuned for a short trial may not hold when trained
longer, so the winner is named by its mean FID over the new seeds, not by its one search run (whose
FID was chosen as the lowest, so is biased low). A run counts when it reached its last step with a
finite FID and a verdict that is neither collapsed nor never learned; a config is a candidate only
when all its runs count.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Optional

from dcgan import keys
from experiment.layout import Experiment, parse_confirm_name
from experiment.ranking import Ranking
from experiment.schema import COMPLETED


@dataclass(frozen=True)
class ConfirmationRun:
    seed: int
    fid: Optional[float]  # the run's last FID
    step: int
    status: str  # status.json's word
    verdict: Optional[str]

    @property
    def counts(self) -> bool:
        return (self.status == COMPLETED and self.fid is not None and math.isfinite(self.fid)
                and self.verdict not in keys.FAILED_VERDICTS)


@dataclass(frozen=True)
class ConfirmedConfig:
    trial_id: str
    is_baseline: bool
    params: dict
    search_fid: Optional[float]  # its FID in the search (the run it was chosen by)
    runs: list[ConfirmationRun]  # by seed

    @property
    def fids(self) -> list[float]:
        return [r.fid for r in self.runs if r.counts]

    @property
    def complete(self) -> bool:
        return bool(self.runs) and len(self.fids) == len(self.runs)

    @property
    def mean(self) -> Optional[float]:
        return statistics.fmean(self.fids) if self.fids else None

    @property
    def std(self) -> Optional[float]:
        return statistics.stdev(self.fids) if len(self.fids) > 1 else None

    def describe(self) -> str:
        if self.mean is None:
            return "no confirmation run counted"
        spread = f" ± {self.std:.2f}" if self.std is not None else ""
        return f"FID {self.mean:.2f}{spread} over seeds {', '.join(str(r.seed) for r in self.runs)}"


@dataclass(frozen=True)
class Confirmation:
    configs: list[ConfirmedConfig]  # candidates by mean FID, then the others
    best: Optional[ConfirmedConfig]  # the lowest mean among the complete ones (the baseline included)
    baseline: Optional[ConfirmedConfig]
    seeds: list[int]
    steps: Optional[int]
    gain_pct: Optional[float]  # (baseline mean - best mean) / baseline mean * 100
    note: str


def confirmation(experiment: Experiment, ranking: Ranking) -> Optional[Confirmation]:
    """The confirmation runs of `experiment`, summed up per confirmed trial; None if there are none."""
    runs: dict[str, list[ConfirmationRun]] = {}
    steps = None
    for trial in experiment.confirmations:
        trial_id, seed = parse_confirm_name(trial.trial_id)
        last = trial.evaluations[-1] if trial.evaluations else {}
        runs.setdefault(trial_id, []).append(ConfirmationRun(seed, last.get(keys.FID), trial.steps_reached, trial.status,
                                                             last.get(keys.COLLAPSE)))
        steps = trial.config.get("steps", steps)
    if not runs:
        return None
    by_id = {t.trial_id: t for t in ranking.trials}
    baseline_id = ranking.baseline.trial_id if ranking.baseline else None
    configs = [ConfirmedConfig(tid, tid == baseline_id, by_id[tid].params if tid in by_id else {},
                               by_id[tid].fid if tid in by_id else None, sorted(r, key=lambda x: x.seed))
               for tid, r in runs.items()]
    configs.sort(key=lambda c: (not c.complete, c.mean if c.mean is not None else math.inf, c.trial_id))
    best = next((c for c in configs if c.complete), None)
    baseline = next((c for c in configs if c.is_baseline), None)
    gain, note = _gain(best, baseline)
    seeds = sorted({r.seed for c in configs for r in c.runs})
    return Confirmation(configs, best, baseline, seeds, steps, gain, note)


def _gain(best: Optional[ConfirmedConfig], baseline: Optional[ConfirmedConfig]) -> tuple[Optional[float], str]:
    if best is None:
        return None, "no confirmed config had every run reach its last step with a good FID"
    if baseline is None or not baseline.complete:
        return None, f"confirmed best {best.trial_id}: {best.describe()}; the baseline was not confirmed"
    if best.trial_id == baseline.trial_id:
        return 0.0, f"the baseline is the confirmed best: {best.describe()}"
    gain = (baseline.mean - best.mean) / baseline.mean * 100
    direction = f"{gain:.1f}% lower" if gain >= 0 else f"{-gain:.1f}% higher"
    return gain, (f"confirmed best {best.trial_id}: {best.describe()}, vs the baseline's {baseline.describe()}: "
                  f"{direction} FID")
