"""`python -m dcgan.evaluate`: score a trained generator, or a file of images, and print one JSON object.

    python -m dcgan.evaluate runs/digits-20261122                        # the run's latest checkpoint
    python -m dcgan.evaluate runs/digits-20261122/checkpoints/step_0000500
    python -m dcgan.evaluate experiments/ratio_lr-...                    # the search's winner (best_config.json)
    python -m dcgan.evaluate --images samples.npy --dataset digits --image-size 16

A run folder holds `config.json` and `checkpoints/step_XXXXXXX/{state.pt,config.json}` (see
dcgan/train.py); G's weights are under "g" in state.pt. A search's folder, or its best_config.json,
is scored at its winner's checkpoint (as `dcgan.sample` picks it); stderr says which checkpoint. An .npy file holds (N, C, H, W) images:
uint8 in [0, 255], or floats with their range given (`--range -1,1`, what G outputs; `--range 0,1`,
torchvision's tensors): a float array has no range of its own to go by. The output has the keys of `dcgan.metrics.KEYS`. Bad input
(a wrong shape, an unknown dataset, missing Inception weights) prints one line on stderr and
exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from dcgan.checkpoint import generator_checkpoint, load_generator
from dcgan.config import ConfigError
from dcgan.data import load_dataset
from dcgan.metrics.evaluator import build_evaluator
from dcgan.metrics.features import EXTRACTORS
from dcgan.metrics.inception import MissingWeights


class InputError(ValueError):
    """Input that cannot be scored; the message says what is wrong."""


RANGES = {"-1,1": (-1.0, 1.0), "0,1": (0.0, 1.0)}  # --range: float images' (low, high), mapped to 0 and 255
RANGE_SLACK = 1e-3  # of the range's width: float values a little beyond it (rounding) are clipped


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dcgan.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("run", nargs="?", help="a run folder (latest checkpoint) or a checkpoint folder")
    p.add_argument("--images", help="an .npy file of images (N, C, H, W) instead of a run")
    p.add_argument("--dataset", help="the dataset to compare with (with --images; default: the run's)")
    p.add_argument("--image-size", type=int, help="the images' size (with --images)")
    p.add_argument("--range", dest="value_range", choices=RANGES,
                   help="the values of float --images: -1,1 (G's output) or 0,1 (torchvision's tensors)")
    p.add_argument("--samples", type=int, help="generated samples to score (default: the run's eval_samples)")
    p.add_argument("--extractor", default="auto", choices=EXTRACTORS)
    p.add_argument("--inception-weights", help="path to the Inception FID weights (else $DCGAN_INCEPTION_WEIGHTS)")
    p.add_argument("--device", default="cpu")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(_range_joined(sys.argv[1:] if argv is None else argv))
    try:
        result = _evaluate_images(args) if args.images else _evaluate_run(args)
    except (InputError, ConfigError, MissingWeights) as e:
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        return 2
    print(json.dumps(result, sort_keys=True))
    return 0


def _range_joined(argv: list[str]) -> list[str]:
    """`--range -1,1` as `--range=-1,1`: argparse takes a value that starts with '-' for a flag."""
    out = list(argv)
    for i in range(len(out) - 1):
        if out[i] == "--range" and out[i + 1].startswith("-"):
            out[i:i + 2] = [f"--range={out[i + 1]}"]
            break
    return out


def _evaluate_images(args) -> dict:
    if args.run or not args.dataset or not args.image_size:
        raise InputError("--images needs --dataset NAME and --image-size N, and no run folder")
    images = load_images(Path(args.images), args.image_size, args.value_range)
    splits = load_dataset(args.dataset, args.image_size)
    if images.shape[1] != splits.channels:
        raise InputError(f"{args.images} has {images.shape[1]} channels; {args.dataset} has {splits.channels}")
    evaluator = build_evaluator(splits, args.device, len(images), extractor=args.extractor,
                                inception_weights=args.inception_weights)
    return evaluator.score_images(images)


def load_images(path: Path, image_size: int, value_range: Optional[str] = None) -> torch.Tensor:
    """uint8 (N, C, S, S) from an .npy of uint8 [0, 255] images, or of floats in `value_range` (a key of RANGES)."""
    if not path.is_file():
        raise InputError(f"images file not found: {path}")
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as e:
        raise InputError(f"{path} is not a readable .npy file ({type(e).__name__})") from None
    if array.ndim != 4 or array.shape[1] not in (1, 3) or array.shape[2:] != (image_size, image_size) or len(array) < 6:
        raise InputError(f"{path} holds shape {array.shape}; expected (N >= 6, C in 1|3, {image_size}, {image_size})")
    if array.dtype == np.uint8:
        if value_range:
            raise InputError(f"{path} holds uint8 images, in [0, 255]; --range is for float images: drop it")
        return torch.from_numpy(array.copy())
    if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)):
        raise InputError(f"{path} holds {array.dtype}; expected uint8 in [0, 255] or finite floats")
    seen = f"[{array.min():.3g}, {array.max():.3g}]"
    if not value_range:
        raise InputError(f"{path} holds float images with values in {seen}; say which range they are in: "
                         f"--range -1,1 (G's output) or --range 0,1 (torchvision's tensors)")
    low, high = RANGES[value_range]
    slack = RANGE_SLACK * (high - low)
    if array.min() < low - slack or array.max() > high + slack:
        raise InputError(f"{path} holds values in {seen}, outside --range {value_range}; pass the range they are in")
    x = torch.from_numpy(array.astype(np.float32))
    return x.sub(low).mul(255.0 / (high - low)).round_().clamp_(0, 255).to(torch.uint8)


def _evaluate_run(args) -> dict:
    if not args.run:
        raise InputError("give a run folder, a checkpoint folder, or --images FILE.npy")
    ckpt, which = generator_checkpoint(args.run)
    g, cfg, step = load_generator(ckpt, args.device)
    print(f"scoring {ckpt} (step {step}; {which})", file=sys.stderr)
    splits = load_dataset(args.dataset or cfg.dataset, cfg.image_size, cfg.holdout_fraction, cfg.data_root)
    evaluator = build_evaluator(splits, args.device, args.samples or cfg.eval_samples, extractor=args.extractor,
                                inception_weights=args.inception_weights, seed=cfg.seed)
    return evaluator(g)


if __name__ == "__main__":
    sys.exit(main())
