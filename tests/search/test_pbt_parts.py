"""search/pbt.py's pieces without a search: the population drawn as random search draws it, PB2's
view of a config and back, PBT's mutations kept within the space, the control left out."""

from __future__ import annotations

import pytest

from search.pbt import Coordinates, members_and_space, pbt_mutations, within_bounds
from search.sampling import make_sampler, random_draws
from spaces import baseline_params, get_space


def test_the_population_is_random_searchs_draws_after_its_baseline():
    """The same draws as --sampler random with that seed: the trials after the (enqueued) baseline."""
    import optuna

    space = get_space("ratio_lr")
    draws, distributions = random_draws(space, 4, seed=3)
    study = optuna.create_study(sampler=make_sampler("random", 5, 3))
    study.enqueue_trial(baseline_params(space))
    asked = []
    for _ in range(5):
        trial = study.ask()
        space(trial)
        asked.append(trial.params)
    assert draws == asked[1:]
    assert sorted(distributions) == ["d_steps_per_g", "lr_d", "lr_g"]


def test_pb2_sees_log10_rates_and_choice_indices_and_comes_back():
    _, distributions = random_draws(get_space("full"), 8, seed=0)
    coords = Coordinates(distributions)
    bounds = coords.bounds()
    assert bounds["lr_g"] == [pytest.approx(-4), pytest.approx(-2)] and bounds["d_steps_per_g"] == [0.0, 3.0]
    assert bounds["beta1"] == [0.0, 0.9] and "latent_dim" not in bounds and "loss" not in bounds
    config = {"lr_g": 1e-3, "lr_d": 1e-4, "d_steps_per_g": 5, "beta1": 0.5, "beta2": 0.99, "loss": "bce"}
    view = coords.to_view(config)
    assert view["lr_g"] == pytest.approx(-3) and view["d_steps_per_g"] == 3.0 and view["loss"] == "bce"
    assert coords.from_view(view)["lr_g"] == pytest.approx(1e-3) and coords.from_view(view)["d_steps_per_g"] == 5
    back = coords.from_view({**view, "lr_g": -1.0, "d_steps_per_g": 1.6})  # outside the bounds, between choices
    assert back["lr_g"] == 1e-2 and back["d_steps_per_g"] == 3  # index 2 of (1, 2, 3, 5)


def test_pbt_mutates_only_what_a_member_may_change_and_stays_within_the_space():
    _, distributions = random_draws(get_space("full"), 8, seed=0)
    mutations = pbt_mutations(distributions)
    assert set(mutations) == {"lr_g", "lr_d", "d_steps_per_g", "beta1", "beta2"}
    assert mutations["d_steps_per_g"] == [1, 2, 3, 5] and mutations["beta2"] == [0.9, 0.99, 0.999]
    clip = within_bounds(distributions)
    clipped = clip({"lr_g": 1.2e-2, "lr_d": 0.8e-5, "beta1": 0.95, "d_steps_per_g": 5})
    assert clipped == {"lr_g": 1e-2, "lr_d": 1e-5, "beta1": 0.9, "d_steps_per_g": 5}


def test_members_share_every_param_with_the_searchs_values_where_a_draw_lacks_one():
    base = {"loss": "bce", "lr_g": 2e-4}
    draws = [{"loss": "wgan-gp", "gp_weight": 3.0, "lr_g": 1e-3}, {"loss": "hinge", "lr_g": 5e-4}]
    members, space = members_and_space(base, draws, {"gp_weight": 10.0, "loss": "bce", "lr_g": 2e-4})
    assert members[0] == {"gp_weight": 10.0, "loss": "bce", "lr_g": 2e-4}
    assert members[2]["gp_weight"] == 10.0 and members[1]["gp_weight"] == 3.0
    assert all(set(m) == set(space) for m in members)
    assert all(space[k].is_valid(m[k]) for m in members for k in m)
