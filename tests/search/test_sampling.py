"""search.sampling: the start-up count, each sampler seeded, TPE learning from what it is told, and a
clear error for an unknown name. (The population PBT draws from it: tests/search/test_pbt_parts.py.)"""

from __future__ import annotations

import math
import statistics

import optuna
import pytest

from search.sampling import SAMPLERS, make_sampler, startup_trials
from spaces import get_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("trials, startup", [(1, 2), (4, 2), (8, 2), (10, 2), (12, 3), (16, 4), (64, 16)])
def test_startup_is_a_quarter_of_the_budget_and_at_least_two(trials, startup):
    assert startup_trials(trials) == startup


def draws(name: str, seed: int, n: int = 6) -> list[dict]:
    study = optuna.create_study(sampler=make_sampler(name, 16, seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        get_space("ratio_lr")(trial)
        out.append(trial.params)
        study.tell(trial, 1.0)
    return out


@pytest.mark.parametrize("name", SAMPLERS)
def test_a_seed_gives_the_same_search_and_another_seed_another(name):
    assert draws(name, seed=1) == draws(name, seed=1)
    assert draws(name, seed=1) != draws(name, seed=2)


def planted(trial: optuna.Trial) -> float:
    """Best at lr_g = 1e-3 (the space's bounds are 1e-4 to 1e-2)."""
    get_space("ratio_lr")(trial)
    return (math.log10(trial.params["lr_g"]) + 3) ** 2


def last_distances(name: str, seed: int, trials: int = 30, last: int = 10) -> float:
    study = optuna.create_study(sampler=make_sampler(name, trials, seed))
    study.optimize(planted, n_trials=trials)
    return statistics.median(t.value for t in study.trials[-last:])


@pytest.mark.parametrize("seed", [0, 1])
def test_tpe_proposes_near_what_it_was_told_was_good(seed):
    """After its start-up trials, TPE's proposals sit closer to a planted optimum than random search's."""
    assert last_distances("tpe", seed) < last_distances("random", seed) / 4


def test_an_unknown_sampler_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown sampler 'cmaes'; known: tpe, gp, random"):
        make_sampler("cmaes", 8, 0)
