"""Stacked MNIST (PacGAN's protocol): modes covered out of 1000 and KL to uniform, from an MNIST
classifier applied to each channel; one repeated image covers one mode."""

import pytest
import torch

from dcgan.config import TrainConfig
from dcgan.data import load_splits
from dcgan.metrics import KEYS, STACKED_KEYS, build_evaluator
from dcgan.metrics.evaluator import score_images

def test_stacked_mnist_modes(metrics_cache, mnist_dir):
    cfg = TrainConfig(dataset=f"stacked-mnist:{mnist_dir}", image_size=28, eval_samples=1000)
    splits = load_splits(cfg)
    ref = build_evaluator(splits, "cpu", cfg.eval_samples, seed=cfg.seed).reference
    assert ref.extractor.stacked and ref.extractor.num_classes == 1000
    real = score_images(ref, splits.heldout.images)  # 1000 real stacked images
    assert set(real) == set(KEYS) | set(STACKED_KEYS)
    assert 550 <= real["modes"] <= 720 and real["modes_kl"] < 0.6, real  # ~632 expected from 1000 draws
    assert real["fid"] < 5 and real["collapse"] != "collapsed", real
    one = score_images(ref, splits.heldout.images[:1].repeat(1000, 1, 1, 1))
    assert one["modes"] == 1 and one["modes_kl"] == pytest.approx(torch.log(torch.tensor(1000.0)).item(), rel=1e-6)
    assert one["collapse"] == "collapsed", one
