"""A small CNN trained on a dataset's labels: the feature extractor for grey, labelled data.

Why not Inception for MNIST-like data: Inception-v3 was trained on ImageNet photographs, and on
28 px digits upsampled to 299 px its features are weak and slow on a CPU. A classifier trained
on the data itself separates exactly what matters there (which digit, how it is drawn), trains
in seconds, and its predicted classes give the class-coverage diagnostics. Its penultimate
layer (FEATURE_DIM) is the feature space.

Trained once per (dataset, split, image size, holdout fraction, CLASSIFIER_VERSION) and cached
on disk with its held-out accuracy in `meta.json`. Bump CLASSIFIER_VERSION whenever the
architecture or the training recipe changes: FIDs from different versions are not comparable.

The classifier is the yardstick of every FID on its data, so it is trained on the CPU whatever
device the evaluation runs on: on CUDA the training is not reproducible (adaptive_avg_pool2d's
backward has no deterministic kernel), and each GPU node of a cluster would train, and score its
trials with, a yardstick of its own. Measured (bench/fid_yardstick.py): a change of one part in
10^6 to one layer's initial weights moves FIDs by up to 15% on digits and 28% on MNIST. On the
CPU, nodes of one machine type and one torch build train the same weights. The weights' hash
(`meta.json`'s "weights") is part of the extractor's name recorded with every FID
(`extractor_name`), so FIDs from different yardsticks never rank together.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path
from typing import Iterator, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from dcgan.data import ImageSet, Splits, to_float
from dcgan.metrics import cache

CLASSIFIER_VERSION = 2  # 2: trained on the CPU whatever the device
FEATURE_DIM = 128
MIN_INPUT = 16  # smaller images (8 px digits) are upsized, so that three stride-2 layers fit
MAX_INPUT = 32  # larger images are downsized first: digits need no more, and it keeps 256 px cheap
BATCH = 128
STEPS = 400  # 51,200 images: 98-99% held-out on digits and MNIST, a few seconds on an idle CPU
LR = 3e-3
SEED = 1234


class DigitNet(nn.Module):
    """(B, 1, S, S) in [-1, 1] -> logits (B, K); `features` gives the (B, FEATURE_DIM) penultimate layer.

    One full-resolution and three stride-2 convolutions, no pooling: about 6 MFLOP per 28 px image, so that scoring
    10,000 samples stays cheap on a CPU. Inputs are resized into [MIN_INPUT, MAX_INPUT] first."""

    def __init__(self, num_classes: int):
        super().__init__()

        def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]

        self.body = nn.Sequential(
            *block(1, 16, 1),  # (B, 16, S, S)
            *block(16, 32, 2),  # (B, 32, S/2, S/2)
            *block(32, 64, 2),  # (B, 64, S/4, S/4)
            *block(64, 128, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 128, S/8, S/8) -> (B, 128)
            nn.Linear(128, FEATURE_DIM), nn.ReLU(True),
        )
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        size = min(max(x.shape[-1], MIN_INPUT), MAX_INPUT)
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=x.shape[-1] > size, align_corners=False)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _jitter(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 1/8 of the image (at least 1 px): cheap augmentation that keeps
    the small digits set from being memorised."""
    s = x.shape[-1]
    pad = max(1, s // 8)
    padded = F.pad(x, (pad, pad, pad, pad), value=-1.0)
    dx, dy = torch.randint(0, 2 * pad + 1, (2,), generator=gen).tolist()
    return padded[..., dy : dy + s, dx : dx + s]


def train_classifier(train: ImageSet, num_classes: int) -> DigitNet:
    """Adam with a one-cycle schedule for STEPS steps on the CPU, deterministic (fixed seed, own RNG)."""
    assert train.resident and train.labels is not None, "the classifier needs resident, labelled images"
    images, labels = train.images, train.labels
    assert images.dtype == torch.uint8 and images.dim() == 4 and images.shape[1] == 1, (images.dtype, images.shape)
    with _one_cpu_thread():
        return _train(images, labels, num_classes, STEPS, torch.device("cpu"))


@contextlib.contextmanager
def _one_cpu_thread() -> Iterator[None]:
    """Train on one CPU thread. Why: these convolutions are too small to split, and on a shared
    CPU OpenMP's spin-waiting made 2 threads 20x slower than 1 (0.55 s vs 0.026 s per step)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(images: torch.Tensor, labels: torch.Tensor, num_classes: int, steps: int, device: torch.device) -> DigitNet:
    gen = torch.Generator().manual_seed(SEED)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        net = DigitNet(num_classes).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    net.train()
    for _ in range(steps):
        idx = torch.randint(len(images), (BATCH,), generator=gen)
        x = _jitter(to_float(images[idx]), gen).to(device)
        loss = F.cross_entropy(net(x), labels[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: DigitNet, data: ImageSet, device: torch.device) -> Optional[float]:
    if len(data) == 0 or data.labels is None:
        return None
    correct = 0
    for x, y in zip(data.images.split(1024), data.labels.split(1024)):
        correct += int((net(to_float(x).to(device)).argmax(1).cpu() == y).sum())
    return correct / len(data)


def weights_hash(net: DigitNet) -> str:
    """A hash of the trained weights: which yardstick measured a FID."""
    h = hashlib.sha256()
    for param, tensor in net.state_dict().items():
        h.update(param.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def extractor_name(dataset: str, meta: dict, kind: str = "classifier") -> str:
    """The extractor name a classifier's FIDs record: its data, version and weights, e.g.
    "digits-classifier-v2@f7fab9255b8f"; `meta` is load_or_train's."""
    return f"{dataset}-{kind}-v{CLASSIFIER_VERSION}@{meta['weights']}"


def fingerprint() -> str:
    """A hash of the architecture (parameter shapes) and the training recipe. It is part of every
    cache key, so an entry from other code is never read, even if CLASSIFIER_VERSION was not bumped."""
    shapes = [list(p.shape) for p in DigitNet(10).state_dict().values()]
    text = json.dumps([CLASSIFIER_VERSION, shapes, FEATURE_DIM, MIN_INPUT, MAX_INPUT, BATCH, STEPS, LR, SEED])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def classifier_key(dataset: str, image_size: int, holdout_fraction: float, num_classes: int) -> dict:
    return {"dataset": dataset, "split": "train", "image_size": image_size, "holdout_fraction": holdout_fraction,
            "num_classes": num_classes, "version": CLASSIFIER_VERSION, "code": fingerprint()}


def load_or_train(splits: Splits, device: torch.device) -> tuple[DigitNet, dict]:
    """The cached classifier for this dataset, trained now (on the CPU) if absent, on `device`.
    Returns (net, meta); meta["weights"] is the weights' hash, meta["trained_now"] says whether
    this call trained it."""
    key = classifier_key(splits.name, splits.image_size, splits.holdout_fraction, splits.num_classes)
    path = cache.entry_dir("classifier", key)

    def build(tmp: Path) -> None:
        t0 = time.perf_counter()
        net = train_classifier(splits.train, splits.num_classes)
        meta = {**key, "heldout_accuracy": accuracy(net, splits.heldout, torch.device("cpu")),
                "train_images": len(splits.train), "train_seconds": round(time.perf_counter() - t0, 2),
                "feature_dim": FEATURE_DIM, "weights": weights_hash(net)}
        torch.save(net.state_dict(), tmp / "model.pt")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")

    trained_now = cache.get_or_build(path, build)
    net = DigitNet(splits.num_classes)
    net.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True))
    meta = json.loads((path / "meta.json").read_text())
    return net.to(device).eval(), {**meta, "trained_now": trained_now, "path": str(path)}
