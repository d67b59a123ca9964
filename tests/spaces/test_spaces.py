"""Named spaces: only suggest_* calls, field names as parameter names, the paper's baseline."""

from __future__ import annotations

import optuna
import pytest

from dcgan.config import TrainConfig
from spaces import SPACES, UnknownSpace, baseline_params, describe, get_space

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_sample_is_a_valid_config(name):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        overrides = get_space(name)(trial)
        assert set(overrides) == set(trial.params)  # parameter names are the field names
        TrainConfig.from_dict(overrides)
        study.tell(trial, 1.0)


def test_baseline_is_the_paper_for_the_params_the_space_has():
    assert baseline_params(get_space("ratio_lr")) == {"d_steps_per_g": 1, "lr_d": 2e-4, "lr_g": 2e-4}
    assert baseline_params(get_space("loss")) == {"loss": "bce"}  # no gp_weight: bce has none
    assert baseline_params(get_space("full")) == {
        "beta1": 0.5, "beta2": 0.999, "d_steps_per_g": 1, "latent_dim": 100, "loss": "bce",
        "lr_d": 2e-4, "lr_g": 2e-4}


def test_gp_weight_only_for_wgan_gp():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(40):
        trial = study.ask()
        overrides = get_space("loss")(trial)
        assert ("gp_weight" in overrides) == (overrides["loss"] == "wgan-gp")
        study.tell(trial, 1.0)


def test_unknown_space_lists_the_known_ones():
    with pytest.raises(UnknownSpace) as e:
        get_space("ratio-lr")
    assert str(e.value) == "unknown space 'ratio-lr'; known: betas, full, latent, loss, ratio_lr, smoke"


def test_every_space_describes_itself():
    assert all(describe(name) for name in SPACES)


def test_fixed_params_take_the_space_s_parameters_from_a_config():
    """A warm start: an earlier config's values of exactly the parameters the space samples, the
    conditional ones included; a value outside the space is refused."""
    from dcgan.config import ConfigError
    from spaces import fixed_params

    winner = TrainConfig(lr_g=7.5e-4, lr_d=2.2e-5, d_steps_per_g=3, beta1=0.3, loss="wgan-gp", gp_weight=5.0).to_dict()
    assert fixed_params(get_space("ratio_lr"), winner) == {"d_steps_per_g": 3, "lr_d": 2.2e-5, "lr_g": 7.5e-4}
    assert fixed_params(get_space("loss"), winner) == {"gp_weight": 5.0, "loss": "wgan-gp"}
    assert fixed_params(get_space("loss"), {**winner, "loss": "hinge"}) == {"loss": "hinge"}
    assert fixed_params(get_space("betas"), {"beta1": 0.3}) == {"beta1": 0.3, "beta2": 0.999}  # else the paper's
    with pytest.raises(ConfigError, match=r"^lr_g=0.05 is outside the range \[0.0001, 0.01\]$"):
        fixed_params(get_space("ratio_lr"), {**winner, "lr_g": 0.05})
    with pytest.raises(ConfigError, match=r"^d_steps_per_g=4 is outside the choices \[1, 2, 3, 5\]$"):
        fixed_params(get_space("ratio_lr"), {**winner, "d_steps_per_g": 4})
