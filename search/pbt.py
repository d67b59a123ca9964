"""Population-based training (`--scheduler pbt`, `--scheduler pb2`): Ray Tune's schedulers, with the
population drawn from the space, a control that is never perturbed, and every exploit recorded.

- The population: the first `--population` draws of `--sampler random` with the search's seed (Ray
  refuses a search algorithm beside PBT, so Tune's own generator is handed the draws), and the DCGAN
  paper's setting as one more member, the control: it trains for the same steps, is never exploited
  and never copied, so "N% lower FID than the baseline" keeps its meaning.
- What a member may change (dcgan.config.SCHEDULABLE): learning rates on a log scale (PBT: times 0.8
  or 1.2, or resampled log-uniformly from the space's bounds, and kept within them), the D:G ratio
  (a neighbouring choice, or resampled among them), betas within their bounds. What changes shapes or
  the loss (latent_dim, loss) is fixed for a member's life; a member that copies another takes the
  other's values with its weights (Ray copies the whole config).
- PB2's bounds are linear, so it sees each rate as log10(rate) and each choice by its index.
- Every exploit goes to the member's lineage (experiment/lineage.py): its schedule replays it from
  step 0, and the report draws it. The trial applies the new values after the restore
  (dcgan.state.apply_hyperparameters), where Ray's own pbt_dcgan_mnist example never does.
- Reproducible: the same seed and steps give the same exploits. Ray's schedulers draw clone sources
  and perturbations from the module `random` (PB2 also from numpy's global generator), which Tune's
  own event loop consumes too, by amounts that depend on timing; so each scheduler decides with
  streams of its own, seeded by the search's seed, swapped in only while it decides. And it decides
  synchronously: every member waits at each perturbation step until all are there, and the bottom
  quarter is chosen from everyone's FID at that step, not from whichever members reported first.
"""

from __future__ import annotations

import math
import random
from contextlib import contextmanager
from typing import Any

import numpy as np

from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler
from ray.tune.schedulers.pb2 import PB2

from dcgan import keys
from dcgan.config import SCHEDULABLE
from experiment.layout import Experiment
from experiment.lineage import record_exploit, start_lineage
from experiment.schema import same_params

QUANTILE = 0.25  # the bottom quarter copies the top quarter (Jaderberg et al. 2017, "truncation selection")
PERTURBATION_FACTORS = (1.2, 0.8)  # Jaderberg et al.'s
RESAMPLE_PROBABILITY = 0.25
KEEP_CHECKPOINTS = 6  # a source's checkpoint must outlive its copier's wait (Ray warns at 2 or fewer)


def members_and_space(baseline: dict, draws: list[dict], defaults: dict) -> tuple[list[dict], dict]:
    """(the control and the drawn members, each with every param any member has; Tune's param_space
    holding them). A param that only some draws have (a conditional one, e.g. gp_weight for wgan-gp)
    takes `defaults`' value (the search's config) in the others: the config they train is unchanged."""
    from ray import tune

    names = sorted({k for m in (baseline, *draws) for k in m})
    members = [{k: m.get(k, defaults[k]) for k in names} for m in (baseline, *draws)]
    # every member sets every param, so Tune samples nothing; choices so that none of them is "invalid"
    space = {k: tune.choice(list({repr(m[k]): m[k] for m in members}.values())) for k in names}
    return members, space


def mutable(distributions: dict) -> dict[str, Any]:
    """The optuna distributions of the params a member may change: SCHEDULABLE ones, by name."""
    return {k: d for k, d in sorted(distributions.items()) if k in SCHEDULABLE}


def pbt_mutations(distributions: dict) -> dict[str, Any]:
    """PBT's hyperparam_mutations for the mutable params: log-uniform or uniform domains, choice lists."""
    from optuna.distributions import CategoricalDistribution
    from ray import tune

    out: dict[str, Any] = {}
    for name, d in mutable(distributions).items():
        if isinstance(d, CategoricalDistribution):
            out[name] = list(d.choices)
        else:
            out[name] = (tune.loguniform if d.log else tune.uniform)(d.low, d.high)
    return out


def within_bounds(distributions: dict):
    """PBT's custom_explore_fn: a perturbed value clipped into the space's bounds."""
    from optuna.distributions import CategoricalDistribution

    floats = {k: d for k, d in mutable(distributions).items() if not isinstance(d, CategoricalDistribution)}

    def clip(config: dict) -> dict:
        for name, d in floats.items():
            if name in config:
                config[name] = min(max(config[name], d.low), d.high)
        return config

    return clip


class Coordinates:
    """PB2's view of a config: log10 of a log-scaled param, the index of a choice; and back."""

    def __init__(self, distributions: dict):
        self.distributions = mutable(distributions)

    def bounds(self) -> dict[str, list[float]]:
        from optuna.distributions import CategoricalDistribution

        out = {}
        for name, d in self.distributions.items():
            if isinstance(d, CategoricalDistribution):
                out[name] = [0.0, float(len(d.choices) - 1)]
            else:
                out[name] = [math.log10(d.low), math.log10(d.high)] if d.log else [float(d.low), float(d.high)]
        return out

    def to_view(self, config: dict) -> dict:
        from optuna.distributions import CategoricalDistribution

        view = dict(config)
        for name, d in self.distributions.items():
            if isinstance(d, CategoricalDistribution):
                view[name] = float(list(d.choices).index(config[name])) if config[name] in d.choices else 0.0
            elif d.log:
                view[name] = math.log10(config[name])
            else:
                view[name] = float(config[name])
        return view

    def from_view(self, view: dict) -> dict:
        from optuna.distributions import CategoricalDistribution

        config = dict(view)
        for name, d in self.distributions.items():
            if isinstance(d, CategoricalDistribution):
                config[name] = d.choices[min(max(round(view[name]), 0), len(d.choices) - 1)]
            else:
                value = 10 ** view[name] if d.log else view[name]
                config[name] = min(max(float(value), d.low), d.high)
        return config


class _Members:
    """What both schedulers add to Ray's: the control left out of the population's ranking (so it is
    never exploited nor copied), a lineage started for each member, and every exploit recorded."""

    def _setup_members(self, experiment: Experiment, control: dict, steps: int, seed: int) -> None:
        self.experiment, self.control, self.steps = experiment, control, steps
        self._streams = (random.Random(seed).getstate(), np.random.RandomState(seed).get_state())

    @contextmanager
    def _own_random(self):
        """The module `random` and numpy's global generator on this scheduler's own streams while it
        decides; the global ones as they were after."""
        outer = random.getstate(), np.random.get_state()
        random.setstate(self._streams[0])
        np.random.set_state(self._streams[1])
        try:
            yield
        finally:
            self._streams = random.getstate(), np.random.get_state()
            random.setstate(outer[0])
            np.random.set_state(outer[1])

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        # a member at its last step ends as it is: copied over then, it would end with another's
        # weights and its own last FID, and nothing left to train
        if int(result.get(keys.STEP, 0)) >= self.steps:
            return TrialScheduler.CONTINUE
        with self._own_random():
            return super().on_trial_result(tune_controller, trial, result)

    def choose_trial_to_run(self, tune_controller):
        """Ray's synchronous choice (a member behind the next perturbation step); where that leaves
        every member waiting and none running, the member furthest behind. (A resumed search whose
        saved scheduler state is ahead of a member's checkpoint: the others wait at the perturbation
        step for it, and Ray's choice, which holds it there already, never runs it.)"""
        from ray.tune.experiment import Trial

        chosen = super().choose_trial_to_run(tune_controller)
        trials = tune_controller.get_trials()
        if chosen is not None or any(t.status == Trial.RUNNING for t in trials):
            return chosen
        waiting = [t for t in trials if t.status in (Trial.PENDING, Trial.PAUSED) and t in self._trial_state]
        return min(waiting, key=lambda t: self._trial_state[t].last_train_time, default=None)

    def is_control(self, trial) -> bool:
        return set(trial.config) == set(self.control) and same_params(trial.config, self.control)

    def on_trial_add(self, tune_controller, trial) -> None:
        super().on_trial_add(tune_controller, trial)
        start_lineage(self.experiment, trial.trial_id, dict(trial.config))

    def _quantiles(self):
        everyone = self._trial_state
        self._trial_state = {t: s for t, s in everyone.items() if not self.is_control(t)}
        try:
            return super()._quantiles()
        finally:
            self._trial_state = everyone

    def _exploit(self, tune_controller, trial, trial_to_clone) -> None:
        at_step = int(self._trial_state[trial].last_train_time)
        super()._exploit(tune_controller, trial, trial_to_clone)
        from_step = int(self._trial_state[trial_to_clone].last_result[keys.STEP])  # the checkpoint's step
        record_exploit(self.experiment, trial.trial_id, at_step, trial_to_clone.trial_id, from_step, dict(trial.config))


class ExperimentPBT(_Members, PopulationBasedTraining):
    def __init__(self, *, experiment: Experiment, control: dict, distributions: dict, steps: int, seed: int,
                 **kwargs):
        super().__init__(hyperparam_mutations=pbt_mutations(distributions), quantile_fraction=QUANTILE,
                         resample_probability=RESAMPLE_PROBABILITY, perturbation_factors=PERTURBATION_FACTORS,
                         custom_explore_fn=within_bounds(distributions), log_config=False, synch=True, **kwargs)
        self._setup_members(experiment, control, steps, seed)


class ExperimentPB2(_Members, PB2):
    def __init__(self, *, experiment: Experiment, control: dict, distributions: dict, steps: int, seed: int,
                 **kwargs):
        self.coordinates = Coordinates(distributions)
        super().__init__(hyperparam_bounds=self.coordinates.bounds(), quantile_fraction=QUANTILE, log_config=False,
                         synch=True, **kwargs)
        self._setup_members(experiment, control, steps, seed)

    @contextmanager
    def _viewed(self, trial):
        """`trial.config` as PB2's GP sees it, while PB2 reads it."""
        config = trial.config
        trial.config = self.coordinates.to_view(config)
        try:
            yield
        finally:
            trial.config = config

    def _save_trial_state(self, state, time, result, trial):
        with self._viewed(trial):
            return super()._save_trial_state(state, time, result, trial)

    def _get_new_config(self, trial, trial_to_clone):
        with self._viewed(trial_to_clone):
            view, operations = super()._get_new_config(trial, trial_to_clone)
        return self.coordinates.from_view(view), operations


def make_scheduler(kind: str, experiment: Experiment, control: dict, distributions: dict, steps: int, interval: int,
                   seed: int):
    """The population's scheduler: `kind` pbt or pb2, for members of `steps` generator updates,
    perturbing every `interval` of them, its decisions drawn from streams seeded by `seed`."""
    cls = ExperimentPBT if kind == "pbt" else ExperimentPB2
    return cls(experiment=experiment, control=control, distributions=distributions, steps=steps, seed=seed,
               time_attr=keys.STEP, metric=keys.FID, mode="min", perturbation_interval=interval)
