"""Ray Tune's OptunaSearch, telling Optuna what became of each trial, as Optuna's own pruning would:

- each evaluation's FID, as an intermediate value at its generator step (`trial.report`);
- a trial that reached its last step: COMPLETE, with its last FID;
- a trial that the scheduler (ASHA) stopped early: PRUNED at its step, its intermediate values
  kept (Ray's OptunaSearch tells it COMPLETE with the FID of its early step, as if it had finished,
  and TPE would learn from a mix of early and final scores);
- a trial with no finite FID (diverged) or that failed: FAIL (Ray's tells a NaN as COMPLETE, which
  Optuna 5 rejects, and the trial stays RUNNING in the study);
- a trial that the study already holds as finished (told just before a driver was killed, after
  Tune last saved the searcher): left as it is, so the study holds each trial once.

Each Optuna trial carries the experiment's trial id (user attribute "trial_id"). A suggestion asked
just before a driver was killed, for a trial that never started, stays in the study as FAIL.
"""

from __future__ import annotations

from typing import Optional

from optuna.trial import TrialState
from ray.tune.search.optuna import OptunaSearch

from dcgan import keys
from experiment.schema import is_finite
from search.protocol import REPLAYED


TRIAL_ID_ATTR = "trial_id"  # the Optuna trial's user attribute: the experiment's trial id
class ExperimentSearch(OptunaSearch):
    """OptunaSearch for trials of `steps` generator updates that report `keys.STEP` and the metric."""

    def __init__(self, *args, steps: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.steps = steps

    def suggest(self, trial_id: str):
        config = super().suggest(trial_id)
        if trial_id in self._ot_trials:  # the study names each of its trials as the experiment does
            self._ot_trials[trial_id].set_user_attr(TRIAL_ID_ATTR, trial_id)
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if result.get(REPLAYED) or trial_id not in self._ot_trials or self._told(trial_id):
            return
        self._report(trial_id, result)

    def _report(self, trial_id: str, result: Optional[dict]) -> None:
        """`result`'s FID as the trial's intermediate value at its step (Tune gives the searcher the
        result that ends a trial only in on_trial_complete)."""
        value, step = (result or {}).get(self.metric), (result or {}).get(keys.STEP)
        if is_finite(value) and step is not None and int(step) not in self._frozen(trial_id).intermediate_values:
            self._ot_trials[trial_id].report(float(value), int(step))

    def on_trial_complete(self, trial_id: str, result: Optional[dict] = None, error: bool = False) -> None:
        if trial_id not in self._ot_trials or trial_id in self._completed_trials:
            return
        if not self._told(trial_id):
            if not (result or {}).get(REPLAYED):
                self._report(trial_id, result)
            value = (result or {}).get(self.metric)
            if error or not is_finite(value):
                state, value = TrialState.FAIL, None
            elif int((result or {}).get(keys.STEP, 0)) < self.steps:
                state, value = TrialState.PRUNED, None
            else:
                state = TrialState.COMPLETE
            self._ot_study.tell(self._ot_trials[trial_id], value, state=state)
        self._completed_trials.add(trial_id)

    def _told(self, trial_id: str) -> bool:
        """The study holds the trial as finished already."""
        return self._frozen(trial_id).state.is_finished()

    def _frozen(self, trial_id: str):
        """The trial as the study's storage holds it now."""
        return self._ot_study._storage.get_trial(self._ot_trials[trial_id]._trial_id)
