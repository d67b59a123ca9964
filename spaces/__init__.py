"""Named search spaces: define-by-run functions that call `trial.suggest_*` and return overrides.

A space is a function of an `optuna.Trial` that only calls `suggest_*` and returns
`{TrainConfig field: value}`; parameter names are field names, so the overrides go straight into
`TrainConfig.from_dict`. `--space NAME` picks one from the registry:

    from spaces import get_space, baseline_params
    space = get_space("ratio_lr")
    baseline_params(space)  # {"d_steps_per_g": 1, "lr_d": 0.0002, "lr_g": 0.0002}
    trial_config(fixed, params)  # the TrainConfig a trial runs
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from dcgan.config import LOSSES, ConfigError, TrainConfig

Space = Callable[[Any], dict[str, Any]]  # optuna.Trial -> {TrainConfig field: value}

SPACES: dict[str, Space] = {}


class UnknownSpace(ConfigError):
    """A --space name that is not registered."""


def register_space(name: str, space: Space | None = None):
    """Register `space` under `name` (also usable as a decorator). Re-registering replaces it."""
    def add(fn: Space) -> Space:
        SPACES[name] = fn
        return fn
    return add(space) if space is not None else add


def get_space(name: str) -> Space:
    if name not in SPACES:
        raise UnknownSpace(f"unknown space '{name}'; known: {', '.join(sorted(SPACES))}")
    return SPACES[name]


def describe(name: str) -> str:
    """The first line of the space's docstring."""
    doc = (get_space(name).__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


# --- the spaces --------------------------------------------------------------------------------


@register_space("ratio_lr")
def ratio_lr(trial) -> dict[str, Any]:
    """D updates per G update in {1,2,3,5}; lr_g log-uniform in [1e-4, 1e-2], lr_d in [1e-5, 1e-3]."""
    # Measured (issue #9, 12 trials on digits): with both rates in [1e-5, 1e-2], half the trials never
    # learned: lr_g at or below 4e-5 cannot learn in hundreds of steps, and lr_d at or above lr_g with
    # several D steps per G step lets D win from the start. These bounds keep the paper's 2e-4 and
    # every rate the good trials used, and make lr_d >= lr_g 1 draw in 8.
    return ratio_and_rates(trial, lr_g=(1e-4, 1e-2), lr_d=(1e-5, 1e-3))


def ratio_and_rates(trial, lr_g: tuple[float, float], lr_d: tuple[float, float]) -> dict[str, Any]:
    """ratio_lr's parameters with the rates' bounds given (bench/search_efficiency.py's space as it was)."""
    return {
        "d_steps_per_g": trial.suggest_categorical("d_steps_per_g", [1, 2, 3, 5]),
        "lr_g": trial.suggest_float("lr_g", *lr_g, log=True),
        "lr_d": trial.suggest_float("lr_d", *lr_d, log=True),
    }


@register_space("betas")
def betas(trial) -> dict[str, Any]:
    """Adam's beta1 in [0, 0.9]; beta2 in {0.9, 0.99, 0.999}."""
    return {
        "beta1": trial.suggest_float("beta1", 0.0, 0.9),
        "beta2": trial.suggest_categorical("beta2", [0.9, 0.99, 0.999]),
    }


@register_space("latent")
def latent(trial) -> dict[str, Any]:
    """Latent size z in {16, 32, 64, 100, 128, 256}."""
    return {"latent_dim": trial.suggest_categorical("latent_dim", [16, 32, 64, 100, 128, 256])}


@register_space("loss")
def loss(trial) -> dict[str, Any]:
    """GAN loss in {bce, wgan-gp, hinge, lsgan}; gp_weight log-uniform in [0.1, 100] for wgan-gp only."""
    out: dict[str, Any] = {"loss": trial.suggest_categorical("loss", list(LOSSES))}
    if out["loss"] == "wgan-gp":
        out["gp_weight"] = trial.suggest_float("gp_weight", 0.1, 100.0, log=True)
    return out


@register_space("full")
def full(trial) -> dict[str, Any]:
    """All of ratio_lr, betas, latent and loss together (gp_weight only for wgan-gp)."""
    return {**ratio_lr(trial), **betas(trial), **latent(trial), **loss(trial)}


@register_space("smoke")
def smoke(trial) -> dict[str, Any]:
    """Tiny, for tests: lr_g and lr_d log-uniform in [1e-4, 1e-2]."""
    return {
        "lr_g": trial.suggest_float("lr_g", 1e-4, 1e-2, log=True),
        "lr_d": trial.suggest_float("lr_d", 1e-4, 1e-2, log=True),
    }


# --- the baseline and other fixed trials ---------------------------------------------------------


class _FixedTrial:
    """Answers every suggest_* with a given value, else the paper's, so a space run on it yields exactly
    the parameters a trial with those values must fix (conditional ones included). A given value
    outside the space's range is refused; the paper's are taken as they are (a test space may leave
    the baseline outside on purpose)."""

    def __init__(self, given: Optional[dict[str, Any]] = None) -> None:
        self.given = given or {}
        self.params: dict[str, Any] = {}

    def _pick(self, name: str, inside: Callable[[Any], bool], allowed: str) -> Any:
        if name in self.given:
            value = self.given[name]
            if not inside(value):
                raise ConfigError(f"{name}={value} is outside the {allowed}")
        elif name in TrainConfig.__dataclass_fields__:  # TrainConfig's defaults are the paper's
            value = getattr(TrainConfig(), name)
        else:
            raise ConfigError(f"space parameter '{name}' is not a TrainConfig field; rename it")
        self.params[name] = value
        return value

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        return self._pick(name, lambda v: low <= v <= high, f"range [{low:g}, {high:g}]")

    def suggest_int(self, name: str, low: int, high: int, **_: Any) -> int:
        return self._pick(name, lambda v: low <= v <= high, f"range [{low}, {high}]")

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._pick(name, lambda v: v in choices, f"choices {list(choices)}")


def trial_config(fixed: dict[str, Any], params: dict[str, Any]) -> TrainConfig:
    """A trial's TrainConfig: the values fixed for the whole search, then the sampled params on top.
    The one place that rule is written."""
    return TrainConfig.from_dict({**fixed, **params})


def baseline_params(space: Space) -> dict[str, Any]:
    """The DCGAN paper's values (lr 2e-4, betas (0.5, 0.999), 1:1, BCE, z=100) for the
    parameters `space` samples, and only those."""
    return fixed_params(space, {})


def fixed_params(space: Space, values: dict[str, Any]) -> dict[str, Any]:
    """The parameters `space` samples, each set to its value in `values` (a TrainConfig's fields, say
    an earlier search's winner), else to the paper's. ConfigError if a value is outside the space."""
    trial = _FixedTrial(values)
    overrides = space(trial)
    unknown = [k for k in overrides if k not in TrainConfig.__dataclass_fields__]
    if unknown:
        raise ConfigError(f"space returns '{unknown[0]}', which is not a TrainConfig field")
    return dict(sorted(trial.params.items()))
