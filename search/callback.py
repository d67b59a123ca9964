"""A driver-side Tune callback that writes the experiment directory (docs/experiment-layout.md)
through `experiment.Experiment` as results arrive: config, params, one results.jsonl row per
evaluation, and status.json on every change. (The sample grids are put there by the trials.)"""

from __future__ import annotations

from typing import Any, Optional

from ray.tune import Callback

from dcgan import keys
from experiment.layout import EXPERIMENT_JSON, OPTUNA_DB, RESULTS_JSONL, TRIALS, Experiment
from experiment.schema import DIVERGED, FAILED, RUNNING, final_status, result_row, same_params
from search.trial import REPLAYED
from spaces import trial_config

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
        exp, tid = self.experiment, trial.trial_id
        params = dict(trial.config)
        exp.start_trial(tid, params, trial_config(self.fixed, params).to_dict())
        if same_params(params, self.baseline_params) and set(params) == set(self.baseline_params):
            if exp.read_json(EXPERIMENT_JSON).get("baseline_trial_id") is None:
                exp.update_info(baseline_trial_id=tid)
        self._sync_optuna_db()  # the study as the searcher just left it: with this trial asked

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if result.get(REPLAYED):  # already in the files: a resumed trial that had ended
            return
        exp, tid = self.experiment, trial.trial_id
        row = result_row(result, result.get("time_total_s", 0.0))
        exp.append_result(tid, row)
        self._last_step[tid] = row[keys.STEP]
        if row[keys.STATUS] != DIVERGED:
            exp.write_status(tid, RUNNING, row[keys.STEP])
        if row.get(keys.EXTRACTOR) and not self._protocol_known:  # the FID protocol, from the first FID
            if exp.read_json(EXPERIMENT_JSON).get("extractor") is None:
                exp.update_info(extractor=row[keys.EXTRACTOR], reference=row.get(keys.REFERENCE),
                                eval_samples=row.get(keys.N))
            self._protocol_known = True

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        # The trial's own rows, not only Tune's last_result: a trial restored by --resume from an
        # older experiment state can end with no new result, and a stale last_result.
        rows, _ = self.experiment.read_jsonl(TRIALS, trial.trial_id, RESULTS_JSONL)
        last = max([trial.last_result or {}, *rows], key=lambda r: int(r.get(keys.STEP, 0)))
        step = int(last.get(keys.STEP, self._last_step.get(trial.trial_id, 0)))
        self.experiment.write_status(trial.trial_id, final_status(last, self.steps), step)
        self._sync_optuna_db()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        last = trial.last_result or {}
        step = int(last.get(keys.STEP, self._last_step.get(trial.trial_id, 0)))
        error = trial.get_error() if hasattr(trial, "get_error") else None
        self.experiment.write_status(trial.trial_id, FAILED, step, one_line(error or "the trial raised an error"))
        self._sync_optuna_db()

    def _sync_optuna_db(self) -> None:
        if self.optuna_db:
            self.experiment.upload(self.optuna_db, OPTUNA_DB)
