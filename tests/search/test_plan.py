"""The flags turned into a search's shared config, before Ray starts or a file is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcgan.config import TrainConfig
from search.plan import plan_search
from search.run import build_parser
from spaces import trial_config

MNIST_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"  # ../shared beside the repo


@pytest.mark.parametrize("flags, augment", [
    ([], "translation"),  # digits: D would memorise its 1,617 images within a trial
    (["--set", "augment="], ""),  # turned off, as the README says
    (["--set", "augment=color,translation"], "color,translation"),
    pytest.param(["--dataset", f"idx:{MNIST_DIR}", "--image-size", "28"], "",
                 marks=pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="../shared/data/mnist not present")),
])
def test_digits_trials_and_their_baseline_see_augmented_images_by_default(tmp_path, flags, augment):
    plan = plan_search(build_parser().parse_args(["--space", "ratio_lr", "--storage", str(tmp_path), *flags]))
    assert TrainConfig.from_dict(plan.fixed).augment == augment
    assert trial_config(plan.fixed, plan.baseline).augment == augment  # the paper's setting, trained alike
    assert not any(tmp_path.iterdir())  # planning writes nothing
