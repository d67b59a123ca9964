"""The Optuna sampler a search proposes trials with (no Ray here: search.plan checks flags with it)."""

from __future__ import annotations

from typing import Optional

SAMPLERS = ("tpe", "gp", "random")
DEFAULT_SAMPLER = "tpe"


def startup_trials(trials: int) -> int:
    """Trials sampled at random before the model-based sampler proposes: a quarter of the budget,
    at least 2 (the paper baseline is one of them). Optuna's default, 10, left TPE 1 or 2 proposals
    in a 12-trial search."""
    return max(2, round(trials / 4))


def make_sampler(name: str, trials: int, seed: int, startup: Optional[int] = None):
    """The Optuna sampler of a search of `trials` trials."""
    import optuna

    n = startup_trials(trials) if startup is None else startup
    if name == "tpe":  # constant_liar: trials running at once are not all proposed in one place
        return optuna.samplers.TPESampler(multivariate=True, n_startup_trials=n, constant_liar=True, seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(n_startup_trials=n, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler '{name}'; known: {', '.join(SAMPLERS)}")


def random_draws(space, n: int, seed: int) -> tuple[list[dict], dict]:
    """The first `n` draws of `--sampler random` with `seed` from `space` (a search's trials after
    its baseline), and the distribution of every parameter drawn: {name: optuna distribution}."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created in memory ..."
    try:
        study = optuna.create_study(sampler=make_sampler("random", n, seed))
    finally:
        optuna.logging.set_verbosity(verbosity)
    draws, distributions = [], {}
    for _ in range(n):
        trial = study.ask()
        space(trial)
        draws.append(dict(trial.params))
        distributions.update(trial.distributions)
    return draws, distributions
