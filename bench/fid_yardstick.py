"""How much a FID depends on the classifier it is measured with: the yardstick's own noise.

Grey labelled data is scored in the feature space of a classifier trained on the data
(dcgan/metrics/classifier.py). This trains that classifier several times, as the code does
(SEED, on the CPU), again with the same seed, with one layer's initial weights changed by one part
in a million (what a GPU's nondeterministic kernels do to a training run), and with two other
seeds, and prints the FID of the same image sets against the training split under each: held-out
real images, the held-out set with noise, blur or a 2-px shift, one class, and heavy noise.
The spread across classifiers is how far apart two machines' FIDs of the same generator can be.

    python bench/fid_yardstick.py [--dataset digits] [--image-size 16]   # about 40 s for digits here
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from dcgan.data import load_dataset, to_float
from dcgan.metrics import classifier
from dcgan.metrics.fid import frechet_distance
from dcgan.metrics.stats import feature_stats

VARIANTS = (  # name, seed, relative change to the first layer's initial weights
    ("the code's", classifier.SEED, 0.0),
    ("the code's again", classifier.SEED, 0.0),
    ("init x (1 + 1e-6)", classifier.SEED, 1e-6),
    ("seed + 1", classifier.SEED + 1, 0.0),
    ("seed + 2", classifier.SEED + 2, 0.0),
)


def image_sets(held: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    noisy = lambda s: (held + s * torch.randn(held.shape, generator=g)).clamp(-1, 1)  # noqa: E731
    one = held[labels == labels[0]]
    return {"held-out": held, "noise 0.2": noisy(0.2), "noise 0.5": noisy(0.5), "noise 1.0": noisy(1.0),
            "blur 3x3": torch.nn.functional.avg_pool2d(held, 3, 1, 1), "shift 2 px": torch.roll(held, 2, -1),
            "one class": one.repeat(len(held) // len(one) + 1, 1, 1, 1)[:len(held)]}


def train(splits, seed: int, change: float) -> classifier.DigitNet:
    """classifier.train_classifier with another seed, or its first layer's initial weights scaled."""
    seed_before, init_before = classifier.SEED, classifier.DigitNet.__init__

    def init(self, num_classes):
        init_before(self, num_classes)
        with torch.no_grad():
            self.body[0].weight.mul_(1 + change)

    classifier.SEED = seed
    if change:
        classifier.DigitNet.__init__ = init
    try:
        return classifier.train_classifier(splits.train, splits.num_classes)
    finally:
        classifier.SEED, classifier.DigitNet.__init__ = seed_before, init_before


@torch.no_grad()
def stats(net: classifier.DigitNet, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The FID statistics (mean, covariance) of the images' features, as the evaluator takes them."""
    return feature_stats(torch.cat([net.features(x) for x in images.split(512)])).mean_cov()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits", help="a labelled grey dataset (default digits)")
    p.add_argument("--image-size", type=int, default=16, help="(default 16)")
    args = p.parse_args()
    t0 = time.time()
    splits = load_dataset(args.dataset, args.image_size)
    sets = image_sets(to_float(splits.heldout.images), splits.heldout.labels)
    fids = {}
    print(f"{'classifier':<20} {'weights':<13} " + " ".join(f"{name:>10}" for name in sets))
    for name, seed, change in VARIANTS:
        net = train(splits, seed, change)
        real = stats(net, to_float(splits.train.images))
        fids[name] = [frechet_distance(*real, *stats(net, images)) for images in sets.values()]
        print(f"{name:<20} {classifier.weights_hash(net):<13} " + " ".join(f"{v:>10.2f}" for v in fids[name]))
    spread = lambda col: (max(col) - min(col)) / min(col) * 100  # noqa: E731
    print(f"{'spread (max-min)/min':<34} " + " ".join(f"{spread(col):>9.0f}%" for col in zip(*fids.values())))
    init_only = [fids[VARIANTS[0][0]], fids[VARIANTS[2][0]]]
    print(f"{'the 1e-6 change alone':<34} " + " ".join(f"{spread(col):>9.0f}%" for col in zip(*init_only)))
    print(f"{args.dataset} at {args.image_size} px, {len(VARIANTS)} classifiers; {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
