"""A second FID yardstick for the benches: a LeNet-5 the search never ranks by.

Every trial of a search is scored in the feature space of the project's own classifier
(dcgan/metrics/classifier.py: four 3x3 convolutions with BatchNorm, Adam with a one-cycle schedule,
seed 1234, shifted inputs, FID against the training split). A search that ranks by one yardstick can
learn its blind spots, so the benches score the generator a user ends with a second way, differing in
every choice that can differ:

- the architecture: LeNet-5 (LeCun et al. 1998) with ReLU and max pooling: conv 5x5 (6) -> pool ->
  conv 5x5 (16) -> pool -> 120 -> 84 -> classes; the 84 units are the features; inputs resized to
  28 px (digits' 16 px upsampled);
- the training: SGD with momentum, no augmentation, STEPS steps of BATCH, its own seed (SEED);
- the images: trained on the training split (the images the GANs train on), and the FID measured
  against the held-out split (images no GAN saw: memorising training images earns nothing). On
  digits that is 180 images, on the MNIST test set 1,000.

Cached like the project's classifier (dcgan.metrics.cache), keyed by the data and VERSION.

    python bench/second_extractor.py RUN_OR_CHECKPOINT [...] [--samples 5000]   # both FIDs, one JSON line each
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from dcgan.checkpoint import find_checkpoint, load_generator
from dcgan.data import Splits, load_dataset, to_float
from dcgan.metrics import cache
from dcgan.metrics.classifier import weights_hash
from dcgan.metrics.evaluator import build_evaluator, eval_noise, generate
from dcgan.metrics.fid import frechet_distance
from dcgan.metrics.stats import feature_stats

VERSION = 1
SEED = 20261204
STEPS = 1500
BATCH = 64
LR, MOMENTUM = 0.02, 0.9
SIZE = 28
NAME = "lenet5"


class LeNet5(nn.Module):
    """(B, 1, S, S) in [-1, 1] -> logits (B, K); `features` is the (B, 84) layer before them."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # (B, 6, 14, 14)
                                  nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())  # (B, 16 * 5 * 5)
        self.fc = nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU())
        self.head = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != SIZE:
            x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        return self.fc(self.conv(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _train(splits: Splits) -> LeNet5:
    images, labels = splits.train.images, splits.train.labels
    gen = torch.Generator().manual_seed(SEED)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        net = LeNet5(splits.num_classes)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    for _ in range(STEPS):
        idx = torch.randint(len(images), (BATCH,), generator=gen)
        loss = F.cross_entropy(net(to_float(images[idx])), labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def load_or_train(splits: Splits) -> tuple[LeNet5, dict]:
    """The cached LeNet-5 of `splits` (trained now if absent), and its meta: held-out accuracy, weights' hash."""
    assert splits.train.resident and splits.num_classes > 0 and splits.channels == 1, "labelled grey data only"
    key = {"dataset": splits.name, "image_size": splits.image_size, "holdout_fraction": splits.holdout_fraction,
           "version": VERSION, "seed": SEED, "steps": STEPS}
    path = cache.entry_dir("second-extractor", key)

    def build(tmp: Path) -> None:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            t0 = time.perf_counter()
            net = _train(splits)
            with torch.no_grad():
                held = splits.heldout
                accuracy = float((net(to_float(held.images)).argmax(1) == held.labels).float().mean())
        finally:
            torch.set_num_threads(before)
        torch.save(net.state_dict(), tmp / "model.pt")
        (tmp / "meta.json").write_text(json.dumps({**key, "heldout_accuracy": round(accuracy, 4),
                                                   "train_seconds": round(time.perf_counter() - t0, 1),
                                                   "weights": weights_hash(net)}) + "\n")

    cache.get_or_build(path, build)
    net = LeNet5(splits.num_classes)
    net.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True))
    return net.eval(), json.loads((path / "meta.json").read_text())


@torch.no_grad()
def _stats(net: LeNet5, images: torch.Tensor):
    return feature_stats(torch.cat([net.features(to_float(x)) for x in images.split(1000)])).mean_cov()


def second_fid(images: torch.Tensor, splits: Splits) -> float:
    """FID of uint8 images (N, 1, S, S) against the held-out split, in LeNet-5's feature space."""
    net, _ = load_or_train(splits)
    return frechet_distance(*_stats(net, splits.heldout.images), *_stats(net, images))


def score(checkpoint: str | Path, samples: int) -> dict:
    """Both FIDs of a checkpoint's generator (a run folder: its last checkpoint), from `samples`
    images of the evaluator's fixed noise: the project's (its classifier, against the training
    split, as dcgan.evaluate --samples gives it) and LeNet-5's (against the held-out split)."""
    ckpt = find_checkpoint(Path(checkpoint))
    g, cfg, step = load_generator(ckpt)
    splits = load_dataset(cfg.dataset, cfg.image_size, cfg.holdout_fraction, cfg.data_root)
    project = build_evaluator(splits, "cpu", samples, seed=cfg.seed)(g)
    images = generate(g, eval_noise(samples, cfg.latent_dim, cfg.seed), torch.device("cpu"))
    _, meta = load_or_train(splits)
    return {"checkpoint": str(ckpt), "step": step, "samples": samples, "fid": project["fid"],
            "extractor": project["extractor"], "collapse": project["collapse"], "fid_lenet": second_fid(images, splits),
            "lenet": f"{NAME}-v{VERSION}@{meta['weights']}", "lenet_heldout_accuracy": meta["heldout_accuracy"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="run or checkpoint folders")
    p.add_argument("--samples", type=int, default=5000, help="generated images scored (default 5000)")
    args = p.parse_args()
    for run in args.runs:
        print(json.dumps(score(run, args.samples)), flush=True)


if __name__ == "__main__":
    main()
