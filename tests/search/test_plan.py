"""The flags turned into a search's shared config, before Ray starts or a file is written."""

from __future__ import annotations

import pytest

from dcgan.config import TrainConfig
from search.plan import Plan, plan_search
from search.run import build_parser
from spaces import trial_config


def plan_of(tmp_path, *flags: str) -> Plan:
    plan = plan_search(build_parser().parse_args(["--space", "ratio_lr", "--storage", str(tmp_path), *flags]))
    assert not any(tmp_path.iterdir())  # planning writes nothing
    return plan


def augment_of(plan: Plan) -> tuple[str, str]:
    """What the trials and the baseline (the paper's setting, trained alike) are given."""
    return TrainConfig.from_dict(plan.fixed).augment, trial_config(plan.fixed, plan.baseline).augment


@pytest.mark.parametrize("flags, augment", [
    ([], "translation"),  # digits: D would memorise its 1,617 images within a trial
    (["--set", "augment="], ""),  # turned off, as the README says
    (["--set", "augment=color,translation"], "color,translation"),
])
def test_digits_trials_and_their_baseline_see_augmented_images_by_default(tmp_path, flags, augment):
    assert augment_of(plan_of(tmp_path, *flags)) == (augment, augment)


def test_mnist_trials_are_not_augmented_by_default(tmp_path, mnist_dir):
    assert augment_of(plan_of(tmp_path, "--dataset", f"idx:{mnist_dir}", "--image-size", "28")) == ("", "")


@pytest.mark.parametrize("flags, ema", [([], 0.999), (["--set", "ema=0"], 0.0), (["--set", "ema=0.99"], 0.99)])
def test_every_search_scores_and_hands_on_the_average_of_g(tmp_path, flags, ema):
    plan = plan_of(tmp_path, *flags)
    assert TrainConfig.from_dict(plan.fixed).ema == trial_config(plan.fixed, plan.baseline).ema == ema


def test_mnist_searches_average_g_too(tmp_path, mnist_dir):
    plan = plan_of(tmp_path, "--dataset", f"idx:{mnist_dir}", "--image-size", "28")
    assert trial_config(plan.fixed, plan.baseline).ema == 0.999


@pytest.mark.parametrize("flags, scheduler, trials, sampler", [
    ([], "pbt", 5, "random"),  # the default: a population of max(4, trials at once) and the paper's setting
    (["--population", "6"], "pbt", 7, "random"),
    (["--trials", "5"], "asha", 5, "tpe"),  # a flag of a sampled search: the sampled search's default
    (["--sampler", "random"], "asha", 12, "random"),
    (["--startup-trials", "3"], "asha", 12, "tpe"),
    (["--scheduler", "fifo"], "fifo", 12, "tpe"),
    (["--scheduler", "pb2"], "pb2", 5, "random"),
])
def test_which_search_runs_without_scheduler(tmp_path, flags, scheduler, trials, sampler):
    plan = plan_of(tmp_path, *flags).with_population(2)  # two trials at once: a population of 4
    assert (plan.scheduler, plan.trials, plan.sampler) == (scheduler, trials, sampler)
