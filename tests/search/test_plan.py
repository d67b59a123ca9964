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


@pytest.mark.parametrize("flags, pack", [
    ([], 1),  # CPUs: one member a trial (a pack runs no faster there)
    (["--gpus-per-worker", "0.25"], 16),  # GPUs: a pbt population in packs of DEFAULT_GPU_PACK
    (["--gpus-per-worker", "0.25", "--pack", "4"], 4),
    (["--gpus-per-worker", "0.25", "--pack", "1"], 1),  # turned off
    (["--gpus-per-worker", "0.25", "--scheduler", "pb2"], 1),  # packs are pbt's
    (["--gpus-per-worker", "0.25", "--trials", "8"], 1),  # a sampled search
    (["--gpus-per-worker", "0.5", "--workers-per-trial", "2"], 1),  # DDP trials
    (["--gpus-per-worker", "0.25", "--set", "cuda_graph=true"], 1),  # a lone trial's step captured
])
def test_a_pbt_search_on_gpus_is_packed_by_default(flags, pack):
    from search.plan import DEFAULT_GPU_PACK, choose_pack, choose_scheduler

    assert DEFAULT_GPU_PACK == 16
    args = build_parser().parse_args(["--space", "ratio_lr", *flags])
    choose_scheduler(args)
    cfg = TrainConfig.from_dict({"cuda_graph": "cuda_graph=true" in flags})
    assert choose_pack(args, cfg) == pack


def test_a_pack_and_a_captured_step_are_refused_together():
    from search.checks import SearchError
    from search.plan import choose_pack

    args = build_parser().parse_args(["--space", "ratio_lr", "--pack", "4"])
    with pytest.raises(SearchError, match="cuda_graph=true captures a lone trial's step"):
        choose_pack(args, TrainConfig(cuda_graph=True))
