"""The winner that best_config.json holds, and that file's contents.

With confirmation runs (experiment/confirmation.py), the winner is the confirmed config of lowest
mean FID over the new seeds, and best_config.json says so. Without them it is the leaderboard's
best (experiment/ranking.py); only if every scored trial collapsed or never learned, the least bad
of those, and best_config.json's diagnostics say so.
"""

from __future__ import annotations

from typing import Any, Optional

from dcgan import keys
from dcgan.checkpoint import CONTINUE_FROM
from experiment.confirmation import Confirmation
from experiment.layout import Experiment
from experiment.lineage import read_lineage
from experiment.ranking import Ranking, RankedTrial


def winner(ranking: Ranking, confirmed: Optional[Confirmation] = None) -> Optional[RankedTrial]:
    """The trial best_config.json holds."""
    if confirmed is not None and confirmed.best is not None:
        return next(t for t in ranking.trials if t.trial_id == confirmed.best.trial_id)
    return ranking.best or next(iter(ranking.with_fid()), None)


def best_config_json(experiment: Experiment, best: RankedTrial,
                     confirmed: Optional[Confirmation] = None) -> dict[str, Any]:
    """best_config.json: the full TrainConfig under "config" (TrainConfig.from_json reads it), how
    it was chosen, its scores, and "checkpoint": the path or URI of the winning trial's last
    checkpoint folder (dcgan.sample of best_config.json samples it), null if it has none."""
    trial = experiment.trial(best.trial_id)
    last = trial.evaluations[-1]
    lineage = read_lineage(experiment, best.trial_id)
    out = {
        # a population-based search's member: the values it started with and its schedule, which
        # replay it from step 0; its config.json holds only the values it ended with
        "config": {**trial.config, **lineage.replay_params()} if lineage else trial.config,
        CONTINUE_FROM: experiment.last_checkpoint(best.trial_id),  # --continue trains on from it
        "fid": best.fid,
        "step": last[keys.STEP],
        "diagnostics": {k: last.get(k) for k in (*keys.PROTOCOL_KEYS, *keys.DIAGNOSTICS, keys.COLLAPSE)},
        "trial_id": best.trial_id,
        "status": best.status,
        "params": best.params,
        "experiment": experiment.name,
        "chosen_by": "the search's leaderboard (its last FID in the search)",
    }
    chosen = confirmed.best if confirmed is not None else None
    if chosen is not None and chosen.trial_id == best.trial_id:
        out["chosen_by"] = (f"confirmation: the lowest mean FID over seeds {', '.join(map(str, confirmed.seeds))}, "
                            f"each trained again for {confirmed.steps} steps")
        out["confirmation"] = {
            "seeds": [r.seed for r in chosen.runs], "fids": [r.fid for r in chosen.runs], "mean": chosen.mean,
            "std": chosen.std, "steps": confirmed.steps,
            "baseline": ({"trial_id": confirmed.baseline.trial_id, "fids": [r.fid for r in confirmed.baseline.runs],
                          "mean": confirmed.baseline.mean, "std": confirmed.baseline.std}
                         if confirmed.baseline is not None else None),
            "gain_over_baseline_pct": confirmed.gain_pct,
        }
    return out
