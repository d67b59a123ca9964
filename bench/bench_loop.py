"""Training-loop speed: the project's loop against a bare, inline PyTorch DCGAN loop.

Same model, batch, data and threads, in the same process, alternating A/B rounds so that
machine noise hits both. Prints steps/s of each and the ratio (target >= 0.95 on CPU).

    python bench/bench_loop.py [--image-size 32] [--steps 60] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from dcgan.config import TrainConfig
from dcgan.data import load_splits, to_float
from dcgan.models import build_models
from dcgan.train import train


def bare_loop(cfg: TrainConfig, steps: int) -> float:
    """The pytorch/examples DCGAN step, written inline: the reference. Returns steps/s."""
    torch.manual_seed(cfg.seed)
    splits = load_splits(cfg)
    data = to_float(splits.train.images)
    g, d = build_models(cfg, splits.channels)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    b = cfg.batch_size
    t0 = time.perf_counter()
    for _ in range(steps):
        real = data[torch.randint(len(data), (b,))]
        fake = g(torch.randn(b, cfg.latent_dim))
        # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
        opt_d.zero_grad()
        real_logits, fake_logits = d(real), d(fake.detach())
        loss_d = F.binary_cross_entropy_with_logits(real_logits, torch.ones(b)) + \
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros(b))
        loss_d.backward()
        opt_d.step()
        # (2) Update G: maximise log D(G(z))
        opt_g.zero_grad()
        loss_g = F.binary_cross_entropy_with_logits(d(fake), torch.ones(b))
        loss_g.backward()
        opt_g.step()
    return steps / (time.perf_counter() - t0)


def project_loop(cfg: TrainConfig, steps: int) -> float:
    """dcgan.train.train, with no evaluation and no files: the loop as a trial runs it."""
    cfg = cfg.replace(steps=steps, eval_every=steps + 1)
    t0 = time.perf_counter()
    train(cfg, None, evaluator=None, log=lambda _: None)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = TrainConfig(image_size=args.image_size, ngf=64, ndf=64, batch_size=64, device="cpu")
    load_splits(cfg)  # load once, outside the timings
    bare_loop(cfg, 5), project_loop(cfg, 5)  # warm up
    bare, ours = [], []
    for _ in range(args.rounds):
        bare.append(bare_loop(cfg, args.steps))
        ours.append(project_loop(cfg, args.steps))
    b, o = max(bare), max(ours)  # best of rounds: the least disturbed
    print(f"{args.image_size}px ngf=ndf=64 batch 64, {args.threads} threads, {args.steps} steps x {args.rounds} rounds")
    print(f"bare inline loop : {b:6.2f} steps/s ({b * 64:.0f} images/s)  rounds: {', '.join(f'{x:.2f}' for x in bare)}")
    print(f"dcgan.train loop : {o:6.2f} steps/s ({o * 64:.0f} images/s)  rounds: {', '.join(f'{x:.2f}' for x in ours)}")
    paired = sorted(x / y for x, y in zip(ours, bare))
    print(f"ratio            : {o / b:.3f} best/best, {paired[len(paired) // 2]:.3f} median of paired rounds"
          f"  (target >= 0.95)")


if __name__ == "__main__":
    main()
