"""The end of a search, from the experiment's own files: rank the trials, pick the best,
write best_config.json, print the top of the table."""

from __future__ import annotations

import math
from typing import Any, Optional

from search.layout import Experiment

DIAGNOSTIC_KEYS = ("extractor", "n", "reference", "precision", "recall", "density", "coverage",
                   "class_coverage", "class_kl", "duplicate_rate", "memorization", "collapse")
UNRANKED = ("diverged", "failed", "pending")


def last_scored(results: list[dict]) -> Optional[dict]:
    """The trial's last evaluation with a finite FID (what Optuna was told)."""
    for row in reversed(results):
        fid = row.get("fid")
        if isinstance(fid, (int, float)) and math.isfinite(fid):
            return row
    return None


def ranked_trials(experiment: Experiment, steps: int) -> list[dict]:
    """Every trial with a score, best first: trials that reached `steps` before trials stopped
    early, non-collapsed before collapsed, then by FID. Diverged and failed trials are left out."""
    rows = []
    for tid in experiment.trial_ids():
        trial = experiment.load_trial(tid)
        status = trial["status"]["status"]
        scored = last_scored(trial["results"])
        if status in UNRANKED or scored is None or trial["config"] is None:
            continue
        rows.append({**trial, "status": status, "scored": scored})
    rows.sort(key=lambda t: (t["scored"]["step"] < steps, t["scored"].get("collapse") == "collapsed",
                             t["scored"]["fid"]))
    return rows


def best_config_json(best: dict, experiment_name: str) -> dict[str, Any]:
    """best_config.json: the full TrainConfig under "config" (TrainConfig.from_json reads it)."""
    scored = best["scored"]
    return {
        "config": best["config"],
        "fid": scored["fid"],
        "step": scored["step"],
        "diagnostics": {k: scored.get(k) for k in DIAGNOSTIC_KEYS},
        "trial_id": best["trial_id"],
        "status": best["status"],
        "params": best["params"],
        "experiment": experiment_name,
    }


def format_table(ranked: list[dict], all_trials: list[dict], top: int = 5) -> str:
    """The top `top` trials, then one line counting the rest by status."""
    lines = [f"{'rank':>4}  {'trial':<16} {'status':<9} {'step':>6} {'fid':>9} {'collapse':<9} params"]
    for i, t in enumerate(ranked[:top], 1):
        s = t["scored"]
        params = ", ".join(f"{k}={_short(v)}" for k, v in sorted(t["params"].items()))
        lines.append(f"{i:>4}  {t['trial_id']:<16} {t['status']:<9} {s['step']:>6} {s['fid']:>9.3f} "
                     f"{str(s.get('collapse') or '-'):<9} {params}")
    counts: dict[str, int] = {}
    for t in all_trials:
        counts[t["status"]["status"]] = counts.get(t["status"]["status"], 0) + 1
    lines.append("trials: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    return "\n".join(lines)


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
