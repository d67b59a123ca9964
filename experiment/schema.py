"""What the experiment's files hold: the row schema, the statuses, experiment.json's fields, and
NaN-to-null for every JSON written.

The keys of a results.jsonl row are dcgan's (`dcgan.keys.ROW_KEYS`) and `time_s`: a column added
to `dcgan/keys.py` reaches results.jsonl and the report with no edit here.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from dcgan import keys
from dcgan.keys import COMPLETED, DIVERGED, RUNNING

TIME_S = "time_s"  # seconds since the trial started, added by the search
RESULT_KEYS = (*keys.ROW_KEYS, TIME_S)

# status.json's words: a run's own (RUNNING, COMPLETED, DIVERGED: dcgan.keys, as the loop writes them),
# and a trial's beside them
PENDING, STOPPED, FAILED = "pending", "stopped", "failed"  # a trial's, beside them: not started, ended early, raised
TRIAL_STATUSES = (PENDING, RUNNING, COMPLETED, STOPPED, DIVERGED, FAILED)
ENDED = (COMPLETED, STOPPED, DIVERGED)  # a trial that ended with its results: never trained again

# experiment.json, written at the start and updated as the search goes (docs/experiment-layout.md)
EXPERIMENT_FIELDS = (
    "name", "space", "dataset", "image_size", "metric", "mode", "scheduler", "sampler", "startup_trials", "confirm",
    "trials_requested", "steps", "population", "perturb_every", "pack",  # population..pack: pbt, pb2 only
    "seed", "concurrency", "workers_per_trial", "cpus_per_worker", "gpus_per_worker",
    "extractor", "eval_samples", "reference",  # the FID protocol: null until the first FID
    "baseline_trial_id", "baseline_params", "warm_start", "fixed",
    "mlflow", "wandb",  # the trackers besides TensorBoard (search/tracking.py), null when off
    # --budget (as given), --budget-steps, and what the budget became (search/budget.py); null without one
    "budget_requested", "budget_steps_requested", "budget",
    "started_at", "finished_at", "wall_time_s", "versions",
)


def warm_runs(warm_start: Any) -> list[dict[str, Any]]:
    """The configs of experiment.json's `warm_start` that run: not those marked `same_as` the baseline
    or an earlier one."""
    return [w for w in warm_start or () if "same_as" not in w]


def json_safe(value: Any) -> Any:
    """NaN and inf become null (JSON has neither); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def result_row(metrics: dict, time_s: float) -> dict:
    """One results.jsonl row from what a trial reported: the schema's keys, a status, and time_s."""
    row: dict[str, Any] = {k: metrics[k] for k in keys.ROW_KEYS if k in metrics}
    row[keys.STEP] = int(row.get(keys.STEP, 0))
    row.setdefault(keys.STATUS, RUNNING)
    row[TIME_S] = round(float(time_s), 3)
    return json_safe(row)


def final_status(last: Optional[dict], steps: int) -> str:
    """How a trial that ended did, from its last row: completed (reached `steps`), diverged, or
    stopped (ended early by the scheduler)."""
    if not last:
        return STOPPED
    if last.get(keys.STATUS) == DIVERGED:
        return DIVERGED
    return COMPLETED if int(last.get(keys.STEP, 0)) >= steps else STOPPED


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    """A number, and not NaN or infinite (a diverged run's FID is None or NaN)."""
    return is_number(value) and math.isfinite(value)


def same_params(values: dict, wanted: dict) -> bool:
    """Every key of `wanted` is in `values` with the same value (floats to JSON round-trip precision)."""
    for k, v in wanted.items():
        if k not in values:
            return False
        x = values[k]
        if is_number(x) and is_number(v):
            if not math.isclose(x, v, rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif x != v:
            return False
    return True
