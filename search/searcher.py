"""Ray Tune's OptunaSearch, telling Optuna a trial that ended without a finite FID as FAIL."""

from __future__ import annotations

import math
from typing import Optional

from ray.tune.search.optuna import OptunaSearch


class OptunaSearchFailingNaN(OptunaSearch):
    """A diverged trial ends with fid NaN. OptunaSearch tells that to Optuna as COMPLETE; Optuna 5
    rejects NaN for COMPLETE and Ray only logs the error, which leaves the trial RUNNING in the
    study (and in optuna-dashboard). Tell it as FAIL instead."""

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False) -> None:
        value = (result or {}).get(self.metric)
        if result and not (isinstance(value, (int, float)) and math.isfinite(value)):
            result, error = None, True  # no value + error: OptunaSearch tells FAIL
        super().on_trial_complete(trial_id, result=result, error=error)
