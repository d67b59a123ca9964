"""A driver-side Tune callback that writes the experiment layout (docs/experiment-layout.md)
as results arrive: config, params, one results.jsonl row and one sample grid per evaluation,
and status.json on every change."""

from __future__ import annotations

import logging
import math
from typing import Any, Optional

from ray.tune import Callback

from search.layout import Experiment

log = logging.getLogger(__name__)

# The results.jsonl keys (docs/experiment-layout.md), in the order they are written.
ROW_KEYS = ("step", "status", "d_loss", "g_loss", "d_real", "d_fake", "fid", "extractor", "n", "reference",
            "precision", "recall", "density", "coverage", "class_coverage", "class_kl", "duplicate_rate",
            "memorization", "collapse", "reason")
CHECKPOINT_PATH_KEY = "checkpoint_path"  # ray.tune.integration.ray_train puts the persisted checkpoint here


def result_row(result: dict) -> dict:
    """One results.jsonl row from a Tune result: the layout's keys, and time_s."""
    row: dict[str, Any] = {k: result[k] for k in ROW_KEYS if k in result}
    row["step"] = int(row.get("step", 0))
    row.setdefault("status", "running")
    fid = row.get("fid")
    if fid is not None and not (isinstance(fid, (int, float)) and math.isfinite(fid)):
        row["fid"] = None
    row["time_s"] = round(float(result.get("time_total_s", 0.0)), 3)
    return row


def final_status(last: Optional[dict], steps: int) -> str:
    """completed (reached `steps`), diverged, or stopped (ended early by the scheduler)."""
    if not last:
        return "stopped"
    if last.get("status") == "diverged":
        return "diverged"
    return "completed" if int(last.get("step", 0)) >= steps else "stopped"


def one_line(error: Any) -> str:
    lines = [ln.strip() for ln in str(error).strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "error"


class ExperimentWriter(Callback):
    """Writes trials/<trial_id>/... for every trial of the search."""

    def __init__(self, experiment: Experiment, fixed: dict, steps: int, baseline_params: dict,
                 optuna_db: Optional[str] = None):
        self.experiment = experiment
        self.fixed = fixed
        self.steps = steps
        self.baseline_params = baseline_params
        self.optuna_db = optuna_db  # a local SQLite file to copy into remote storage, else None
        self._last_step: dict[str, int] = {}
        self._protocol_known = False

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        from dcgan.config import TrainConfig

        exp, tid = self.experiment, trial.trial_id
        params = dict(trial.config)
        exp.write_json(params, "trials", tid, "params.json")
        exp.write_text(TrainConfig.from_dict({**self.fixed, **params}).to_json(), "trials", tid, "config.json")
        if not exp.exists("trials", tid, "results.jsonl"):  # readers find every file from the start
            exp.write_text("", "trials", tid, "results.jsonl")
        exp.write_status(tid, "running", self._last_step.get(tid, 0))
        if _same_params(params, self.baseline_params):
            info = exp.read_json("experiment.json")
            if info.get("baseline_trial_id") is None:
                exp.write_json({**info, "baseline_trial_id": tid}, "experiment.json")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        exp, tid = self.experiment, trial.trial_id
        row = result_row(result)
        exp.append_result(tid, row)
        self._last_step[tid] = row["step"]
        ckpt = result.get(CHECKPOINT_PATH_KEY)
        if ckpt:
            try:
                exp.copy_from(f"{ckpt}/samples.png", "trials", tid, "samples", f"step_{row['step']:07d}.png")
            except OSError as e:  # a pruned checkpoint costs one picture, never the search
                log.warning("trial %s: no sample grid for step %s (%s)", tid, row["step"], e)
        if row["status"] != "diverged":
            exp.write_status(tid, "running", row["step"])
        if row.get("extractor") and not self._protocol_known:  # the FID protocol, from the first FID
            info = exp.read_json("experiment.json")
            if info.get("extractor") is None:
                exp.write_json({**info, "extractor": row["extractor"], "reference": row.get("reference"),
                                "eval_samples": row.get("n", info.get("eval_samples"))}, "experiment.json")
            self._protocol_known = True

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        # The trial's own rows, not only Tune's last_result: a trial restored by --resume from an
        # older experiment state can end with no new result, and a stale last_result.
        rows = self.experiment.read_jsonl("trials", trial.trial_id, "results.jsonl")
        last = max([trial.last_result or {}, *rows], key=lambda r: int(r.get("step", 0)))
        step = int(last.get("step", self._last_step.get(trial.trial_id, 0)))
        self.experiment.write_status(trial.trial_id, final_status(last, self.steps), step)
        self._sync_optuna_db()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        last = trial.last_result or {}
        step = int(last.get("step", self._last_step.get(trial.trial_id, 0)))
        error = trial.get_error() if hasattr(trial, "get_error") else None
        self.experiment.write_status(trial.trial_id, "failed", step, one_line(error or "the trial raised an error"))
        self._sync_optuna_db()

    def _sync_optuna_db(self) -> None:
        if self.optuna_db:
            self.experiment.upload(self.optuna_db, "optuna.db")


def _same_params(a: dict, b: dict) -> bool:
    if set(a) != set(b):
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, float) or isinstance(y, float):
            if not (isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isclose(x, y, rel_tol=1e-9)):
                return False
        elif x != y:
            return False
    return True
