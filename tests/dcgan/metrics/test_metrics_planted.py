"""Planted cases on real data: the metrics must say what we know to be true.

held-out real vs the training reference -> low FID, high coverage, collapse ok;
one class -> collapsed, class_coverage 0.1; half the classes -> partial;
the training images themselves -> memorisation flagged; uniform noise -> very high FID.
Run on digits (16 px) and on the real MNIST test set (28 px, idx:).
"""

import json
import time
from pathlib import Path

import pytest
import torch

from dcgan.config import TrainConfig
from dcgan.data import load_splits
from dcgan.metrics import KEYS, build_evaluator, classifier, diagnostics
from dcgan.metrics.evaluator import score_images
from dcgan.metrics.features import build_extractor, build_reference

CASES = [("digits", 16), ("mnist", 28)]  # mnist: the shared test set, idx:../shared/data/mnist


@pytest.fixture(scope="module", params=CASES, ids=["digits", "mnist"])
def planted(request, metrics_cache_dir):
    dataset, size = request.param
    if dataset == "mnist":
        dataset = f"idx:{request.getfixturevalue('mnist_dir')}"
    mp = pytest.MonkeyPatch()
    mp.setenv("DCGAN_CACHE", str(metrics_cache_dir))
    cfg = TrainConfig(dataset=dataset, image_size=size, eval_samples=1000)
    splits = load_splits(cfg)
    evaluator = build_evaluator(splits, "cpu", cfg.eval_samples, seed=cfg.seed)
    yield cfg, splits, evaluator.reference
    mp.undo()


def test_heldout_real_scores_low_fid_and_ok(planted):
    cfg, splits, ref = planted
    m = score_images(ref, splits.heldout.images)
    assert set(m) == set(KEYS)
    assert m["n"] == len(splits.heldout) and m["reference"] == f"{cfg.dataset}/train@{cfg.image_size}px"
    assert m["fid"] < 5.0, m
    assert m["coverage"] > 0.7 and m["recall"] > 0.6 and m["precision"] > 0.7, m
    assert m["class_coverage"] == 1.0 and m["class_kl"] < 0.05, m
    assert 0.8 < m["memorization"] < 1.25, m
    assert m["collapse"] == "ok", m


def test_one_class_is_collapsed(planted):
    _, splits, ref = planted
    one = splits.train.images[splits.train.labels == 3][:500]
    m = score_images(ref, one)
    assert m["class_coverage"] == pytest.approx(0.1) and m["collapse"] == "collapsed", m
    assert m["fid"] > 20 * score_images(ref, splits.heldout.images)["fid"], m


def test_half_the_classes_is_partial(planted):
    _, splits, ref = planted
    half = splits.train.images[splits.train.labels < 5][:1000]
    m = score_images(ref, half)
    assert m["class_coverage"] == pytest.approx(0.5) and m["collapse"] == "partial", m


def test_training_images_are_flagged_as_memorised(planted):
    _, splits, ref = planted
    m = score_images(ref, splits.train.images[:1000])
    assert m["memorization"] < diagnostics.MEMORIZATION_THRESHOLD, m
    assert m["fid"] < 5.0, m


def test_uniform_noise_has_a_very_high_fid_and_never_learned(planted):
    cfg, splits, ref = planted
    noise = torch.randint(0, 256, (1000, 1, cfg.image_size, cfg.image_size), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(0))
    m = score_images(ref, noise)
    assert m["fid"] > 30 * max(score_images(ref, splits.heldout.images)["fid"], 1.0), m
    assert m["coverage"] < 0.2 and m["collapse"] == "not_learned", m


@pytest.mark.parametrize("level", [0, 128, 255])
def test_a_constant_generator_never_learned(planted, level):
    """Every sample the same flat image (black, grey, white): nothing like a digit, not a collapse
    onto one digit."""
    cfg, _, ref = planted
    constant = torch.full((1000, 1, cfg.image_size, cfg.image_size), level, dtype=torch.uint8)
    m = score_images(ref, constant)
    assert m["density"] < 0.05 and m["recall"] < 0.05 and m["collapse"] == "not_learned", m


def test_one_class_is_collapsed_not_unlearned(planted):
    """A generator of one real digit class is the textbook collapse: its samples are real (high
    precision), and few."""
    _, splits, ref = planted
    m = score_images(ref, splits.train.images[splits.train.labels == 7][:500])
    assert m["precision"] > 0.5 and m["density"] > 0.5 and m["collapse"] == "collapsed", m


def test_classifier_is_accurate_cached_and_not_retrained(planted):
    cfg, splits, _ = planted
    t0 = time.perf_counter()
    _, meta = classifier.load_or_train(splits, torch.device("cpu"))
    assert not meta["trained_now"] and time.perf_counter() - t0 < meta["train_seconds"]
    # digits: the bar; the 10k-image MNIST test set (9,000 to train on) reaches 0.972 here
    assert meta["heldout_accuracy"] >= (0.97 if cfg.dataset == "digits" else 0.95), meta
    assert json.loads((Path(meta["path"]) / "meta.json").read_text())["version"] == classifier.CLASSIFIER_VERSION


def test_the_extractor_names_its_classifiers_weights(tmp_path, monkeypatch):
    """A classifier is trained once in a cache, then read from it. Two fresh caches (two nodes of a
    cluster) train the same classifier, so their FIDs share a yardstick and an extractor name; a classifier trained otherwise (another seed here; another
    GPU's nondeterministic kernels on a cluster) scores the same images differently, and its name
    says so, so the ranking never sets its FIDs beside the others'."""
    cfg = TrainConfig(dataset="digits", image_size=8, eval_samples=300)
    splits = load_splits(cfg)
    images = splits.heldout.images

    def node(cache: str) -> tuple[str, float]:
        monkeypatch.setenv("DCGAN_CACHE", str(tmp_path / cache))
        ref = build_reference(splits, build_extractor(splits, torch.device("cpu")), cfg.eval_samples)  # no memo
        return ref.extractor.name, score_images(ref, images)["fid"]

    first, second = node("a"), node("b")
    assert first == second and first[0].startswith("digits-classifier-v"), first
    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path / "a"))  # a classifier is trained once in a cache
    _, meta = classifier.load_or_train(splits, torch.device("cpu"))
    assert not meta["trained_now"] and meta["heldout_accuracy"] >= 0.97, meta
    assert Path(meta["path"]).is_relative_to(tmp_path / "a")
    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path / "elsewhere"))  # asked for another device: trained on the CPU
    net, meta = classifier.load_or_train(splits, torch.device("meta"))
    assert next(net.parameters()).device.type == "meta" and first[0] == classifier.extractor_name("digits", meta), meta
    monkeypatch.setattr(classifier, "SEED", classifier.SEED + 1)
    other = node("c")
    assert other[0] != first[0] and other[1] != first[1], (first, other)
