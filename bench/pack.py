"""Packs (dcgan/pack.py) against the same members trained one after another, on one device:
images/s (generator updates x batch x members / wall time) of K members of the search's mix (each
its own rates, betas and D:G ratio of 1 or 2), for each K given.

    python bench/pack.py                                  # CPU: 16 px, ngf=ndf=32, K = 1 4
    python bench/pack.py --device cuda --size 28 --width 64 --packs 1 4 16 64 --steps 200

Each arm runs `--steps` updates after `--warmup`, timed with the device synchronised, `--repeats`
times interleaved; the median is printed. Random images (the speed does not depend on the pixels).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from dcgan.config import TrainConfig
from dcgan.data import Splits
from dcgan.pack import Pack
from dcgan.state import setup
from dcgan.train import train_step
from gpu import synthetic


def members(k: int, args: argparse.Namespace, data: Splits) -> list:
    gans = []
    for i in range(k):
        cfg = TrainConfig.from_dict(dict(dataset="digits", image_size=args.size, ngf=args.width, ndf=args.width,
                                         batch_size=args.batch, ema=0.999, device=args.device, seed=i,
                                         lr_g=2e-4 * (1 + i % 3), lr_d=2e-4 * (1 + i % 2), d_steps_per_g=1 + i % 2))
        gans.append(setup(cfg, data))
    return gans


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(step, n: int, device: str) -> float:
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sync(device)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--packs", type=int, nargs="+", default=[1, 4])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    data = synthetic(1, args.size)
    print(f"{args.device}, {args.size} px grey, ngf=ndf={args.width}, batch {args.batch}, {args.steps} updates, "
          f"median of {args.repeats}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| members | one after another, images/s | packed, images/s | packed / one after another |")
    print("| ---: | ---: | ---: | ---: |")
    for k in args.packs:
        alone, packed = members(k, args, data), Pack(members(k, args, data))

        def one_after_another():
            for gan in alone:
                train_step(gan)

        for step in (one_after_another, packed.step):
            timed(step, args.warmup, args.device)
        seconds = {"alone": [], "packed": []}
        for _ in range(args.repeats):
            seconds["alone"].append(timed(one_after_another, args.steps, args.device))
            seconds["packed"].append(timed(packed.step, args.steps, args.device))
        rate = {arm: k * args.batch * args.steps / statistics.median(s) for arm, s in seconds.items()}
        print(f"| {k} | {rate['alone']:,.0f} | {rate['packed']:,.0f} | {rate['packed'] / rate['alone']:.2f}x |")


if __name__ == "__main__":
    main()
