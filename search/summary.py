"""The end of a search, from the experiment's own files: pick the winner, write
best_config.json, print the top of the table.

The winner is the report's: `reports.ranking.rank_trials` is the one place that decides which
trial is best (last FID, collapsed trials after every other, diverged last), so that
best_config.json and report.html never disagree. Only if every scored trial collapsed does
the least bad collapsed one become best_config.json, marked by its `collapse` field.
"""

from __future__ import annotations

from typing import Any, Optional

from reports.experiment import Experiment, load_experiment
from reports.ranking import Ranking, RankedTrial, rank_trials

DIAGNOSTIC_KEYS = ("extractor", "n", "reference", "precision", "recall", "density", "coverage",
                   "class_coverage", "class_kl", "duplicate_rate", "memorization", "collapse")


def rank(uri: str) -> tuple[Experiment, Ranking]:
    experiment = load_experiment(uri)
    return experiment, rank_trials(experiment)


def winner(ranking: Ranking) -> Optional[RankedTrial]:
    return ranking.best or next(iter(ranking.with_fid()), None)


def best_config_json(experiment: Experiment, best: RankedTrial) -> dict[str, Any]:
    """best_config.json: the full TrainConfig under "config" (TrainConfig.from_json reads it)."""
    trial = experiment.trial(best.trial_id)
    last = trial.evaluations[-1]
    return {
        "config": trial.config,
        "fid": best.fid,
        "step": last["step"],
        "diagnostics": {k: last.get(k) for k in DIAGNOSTIC_KEYS},
        "trial_id": best.trial_id,
        "status": best.status,
        "params": best.params,
        "experiment": experiment.name,
    }


def format_table(ranking: Ranking, top: int = 5) -> str:
    """The top `top` trials of the leaderboard, then one line counting all trials by status."""
    lines = [f"{'rank':>4}  {'trial':<16} {'status':<9} {'step':>6} {'fid':>9} {'collapse':<9} params"]
    for t in ranking.leaderboard[:top]:
        fid = f"{t.fid:>9.3f}" if t.fid is not None else f"{'-':>9}"
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(t.params.items()))
        lines.append(f"{t.position:>4}  {t.trial_id:<16} {t.status:<9} {t.steps_reached:>6} {fid} "
                     f"{str(t.collapse or '-'):<9} {params}")
    counts: dict[str, int] = {}
    for t in ranking.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    lines.append("trials: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return "\n".join(lines)


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
