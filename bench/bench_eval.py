"""How much of a trial one evaluation costs: the time of one evaluation (N = 2,000 and 10,000
generated images, 28 px, classifier features, CPU) and its share of a trial at the default
eval_every, eval_time / (eval_time + eval_every / training steps per second). Target: <= 10%.

    python bench/bench_eval.py [--dataset idx:../shared/data/mnist] [--steps 40] [--threads 2]

Uses the real MNIST test set by default. The classifier and the real features come from the
cache ($DCGAN_CACHE), built on first use (that one-off cost is printed separately).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from dcgan.config import TrainConfig
from dcgan.data import load_splits
from dcgan.metrics import build_evaluator
from dcgan.metrics.evaluator import eval_noise, generate
from dcgan.models import build_models
from dcgan.train import setup, train_step


def time_training(cfg: TrainConfig, steps: int) -> float:
    """Training steps per second of `cfg` (after 5 warm-up steps)."""
    gan = setup(cfg)
    for _ in range(5):
        train_step(gan)
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(gan)
    return steps / (time.perf_counter() - t0)


def time_evaluation(cfg: TrainConfig, repeats: int = 2) -> dict:
    splits = load_splits(cfg)
    t0 = time.perf_counter()
    evaluator = build_evaluator(splits, "cpu", cfg.eval_samples, seed=cfg.seed)
    build_s = time.perf_counter() - t0
    torch.manual_seed(0)
    g, _ = build_models(cfg, splits.channels)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = evaluator(g)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    images = generate(g, eval_noise(cfg.eval_samples, cfg.latent_dim, cfg.seed), torch.device("cpu"))
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    evaluator.reference.extractor(images)
    feat_s = time.perf_counter() - t0
    return {"eval_s": statistics.median(times), "build_s": build_s, "generate_s": gen_s, "features_s": feat_s,
            "fid": result["fid"]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default=f"idx:{Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'mnist'}")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    base = TrainConfig(dataset=args.dataset, image_size=28)  # the default config, at 28 px
    rate = time_training(base, args.steps)
    trial_s = base.eval_every / rate
    print(f"training: {rate:.2f} steps/s (default config, 28 px, batch {base.batch_size}, "
          f"{torch.get_num_threads()} threads); {base.eval_every} steps between evaluations = {trial_s:.1f} s")
    for n in (2000, 10000):
        r = time_evaluation(base.replace(eval_samples=n))
        share = r["eval_s"] / (r["eval_s"] + trial_s)
        print(f"N={n:>6}: one evaluation {r['eval_s']:.2f} s (generate {r['generate_s']:.2f} s, features "
              f"{r['features_s']:.2f} s, rest: statistics, FID, k-NN); share of a trial {100 * share:.1f}% "
              f"(target <= 10%); one-off build {r['build_s']:.1f} s")


if __name__ == "__main__":
    main()
