"""Feature extractors, and the real data's side of every metric, computed once and cached.

An `Extractor` turns uint8 images (N, C, H, W) into float32 features (N, D) and, when it is a
classifier, predicted classes (N,). Which one a dataset gets ("auto"):

- labelled grey data (digits, mnist, fashion-mnist, idx: with labels) -> its own classifier;
- stacked-mnist -> an MNIST classifier applied to each channel: features are the three
  channels' features side by side (3 x 128), the class is 100 a + 10 b + c;
- anything else (RGB, unlabelled: cifar10, folder:) -> Inception-v3 pool3.

`Reference` holds the real side: FID statistics of the TRAINING split (the reference every FID
is measured against), the k-NN radii of a fixed training sample, the held-out split's distance
to the training set (for memorisation) and the class shares. The real features are cached on
disk per (dataset, split, extractor, image size); only the cheap parts are recomputed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from dcgan.config import ConfigError
from dcgan.data import ImageSet, Splits, load_dataset, to_float
from dcgan.metrics import cache, classifier, diagnostics, inception
from dcgan.metrics.stats import feature_stats

EXTRACTORS = ("auto", "classifier", "inception")
FEATURES_VERSION = 1
BATCH = 1000
SUBSET_SEED = 31337

Features = tuple[torch.Tensor, Optional[torch.Tensor]]  # (N, D) float32, predicted classes (N,) int64 or None


@dataclass
class Extractor:
    name: str  # recorded with every FID, e.g. "digits-classifier-v2@3f9a0c1d2e4b" (the classifier's weights)
    num_classes: int  # of the predicted classes; 0 when it predicts none
    extract: Callable[[torch.Tensor], Features]
    stacked: bool = False

    def __call__(self, images: torch.Tensor) -> Features:
        assert images.dtype == torch.uint8 and images.dim() == 4, (images.dtype, images.shape)
        return self.extract(images)


def choose(dataset: str, splits: Splits, kind: str = "auto") -> str:
    """'classifier' or 'inception' for a dataset; see the module docstring."""
    if kind not in EXTRACTORS:
        raise ConfigError(f"unknown extractor '{kind}'; known: {', '.join(EXTRACTORS)}")
    labelled_grey = splits.channels == 1 and splits.num_classes > 0
    if kind == "auto":
        return "classifier" if labelled_grey or _is_stacked(dataset) else "inception"
    if kind == "classifier" and not (labelled_grey or _is_stacked(dataset)):
        raise ConfigError(f"the classifier extractor needs labelled grey data or stacked-mnist; "
                          f"{dataset} is not; use extractor 'inception'")
    return kind


def _is_stacked(dataset: str) -> bool:
    return dataset.partition(":")[0] == "stacked-mnist"


def build_extractor(splits: Splits, device: torch.device, kind: str = "auto",
                    inception_weights: Optional[str] = None) -> Extractor:
    """The feature extractor for `splits` ("auto": see the module docstring)."""
    kind = choose(splits.name, splits, kind)
    if kind == "inception":
        net = inception.load_inception(inception_weights, device=device)
        return Extractor(inception.NAME, 0, lambda x: (inception.inception_features(net, x), None))
    if _is_stacked(splits.name):
        return _stacked_extractor(splits, device)
    net, meta = classifier.load_or_train(splits, device)
    return Extractor(classifier.extractor_name(splits.name, meta), splits.num_classes,
                     lambda x: _classify(net, x, device))


def _stacked_extractor(splits: Splits, device: torch.device) -> Extractor:
    """Per-channel MNIST classifier: trained on the MNIST that stacked-mnist is built from."""
    arg = splits.name.partition(":")[2]
    mnist = load_dataset(f"idx:{arg}" if arg else "mnist", splits.image_size, splits.holdout_fraction,
                         splits.data_root)
    net, meta = classifier.load_or_train(mnist, device)

    def extract(images: torch.Tensor) -> Features:
        n, c, h, w = images.shape
        assert c == 3, images.shape
        feats, digits = _classify(net, images.reshape(n * 3, 1, h, w), device)  # channel-major per image
        digits = digits.view(n, 3)
        return feats.view(n, 3 * feats.shape[1]), digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]

    return Extractor(classifier.extractor_name(mnist.name, meta, "channel-classifier"), 1000, extract, True)


@torch.no_grad()
def _classify(net: classifier.DigitNet, images: torch.Tensor, device: torch.device) -> Features:
    feats, labels = [], []
    for chunk in images.split(BATCH):
        f = net.features(to_float(chunk).to(device))
        feats.append(f.float().cpu())
        labels.append(net.head(f).argmax(1).cpu())
    if not feats:
        return torch.empty(0, classifier.FEATURE_DIM), torch.empty(0, dtype=torch.int64)
    return torch.cat(feats), torch.cat(labels)


# --- the real side ------------------------------------------------------------------------------


@dataclass
class Reference:
    extractor: Extractor
    name: str  # e.g. "digits/train@16px"
    mu: np.ndarray  # (D,) float64, of all training features
    sigma: np.ndarray  # (D, D) float64
    train_features: torch.Tensor  # (N_train, D) float32, for memorisation
    heldout_median: Optional[float]  # median held-out -> nearest training distance
    class_shares: Optional[np.ndarray]  # (K,) of the training labels; None for unlabelled data
    _neighbours: dict = field(default_factory=dict)

    def neighbours(self, n_generated: int) -> diagnostics.RealNeighbours:
        """k-NN radii of a fixed training sample as large as the generated set (capped by the
        training split): precision, recall, density and coverage assume equal sizes, and
        coverage in particular falls when fewer samples must cover more real points."""
        m = min(len(self.train_features), n_generated)
        if m not in self._neighbours:
            perm = torch.randperm(len(self.train_features), generator=torch.Generator().manual_seed(SUBSET_SEED))
            self._neighbours[m] = diagnostics.RealNeighbours.of(self.train_features[perm[:m].sort().values])
        return self._neighbours[m]


def build_reference(splits: Splits, extractor: Extractor, n_generated: int) -> Reference:
    """The real side of the metrics, for scoring `n_generated` samples at a time."""
    train, heldout, heldout_median = _real_features(splits, extractor)
    stats = feature_stats(train)
    mu, sigma = stats.mean_cov()
    shares = None
    if splits.num_classes > 0 and splits.train.labels is not None:
        shares = diagnostics.histogram(splits.train.labels, splits.num_classes)
    ref = Reference(extractor, f"{splits.name}/train@{splits.image_size}px", mu, sigma, train, heldout_median, shares)
    ref.neighbours(n_generated)  # now, not at the first evaluation
    return ref


def _real_features(splits: Splits, extractor: Extractor):
    """(train features, held-out features, held-out median distance), from the cache if there."""
    key = {"dataset": splits.name, "splits": "train+heldout", "extractor": extractor.name,
           "image_size": splits.image_size, "holdout_fraction": splits.holdout_fraction, "version": FEATURES_VERSION,
           "classifier_code": classifier.fingerprint()}
    path = cache.entry_dir("features", key)

    def build(tmp: Path) -> None:
        train, _ = extract_all(extractor, splits.train)
        heldout, _ = extract_all(extractor, splits.heldout)
        median = float(diagnostics.nearest_distance(heldout, train).median()) if len(heldout) else None
        torch.save({"train": train, "heldout": heldout}, tmp / "features.pt")
        (tmp / "meta.json").write_text(json.dumps({**key, "heldout_median": median,
                                                   "n_train": len(train), "n_heldout": len(heldout)}) + "\n")

    cache.get_or_build(path, build)
    saved = torch.load(path / "features.pt", weights_only=True)
    meta = json.loads((path / "meta.json").read_text())
    return saved["train"], saved["heldout"], meta["heldout_median"]


def extract_all(extractor: Extractor, data: ImageSet) -> Features:
    """Features of a whole split, resident or streamed from disk."""
    feats, labels = [], []
    for images in _batches(data):
        f, y = extractor(images)
        feats.append(f)
        labels.append(y)
    if not feats:
        return torch.empty(0, 0), None
    return torch.cat(feats), (torch.cat(labels) if labels[0] is not None else None)


def _batches(data: ImageSet) -> Iterator[torch.Tensor]:
    if data.resident:
        yield from data.images.split(BATCH)
        return
    loader = torch.utils.data.DataLoader(data.stream, batch_size=BATCH, num_workers=0)
    for images, _ in loader:
        yield images
