"""Training-step throughput: the project's loop against a bare, inline PyTorch DCGAN loop.

Same model, batch, data and threads, alternating A/B rounds so that machine noise hits both, in
three places: standalone (this process), inside a Tune trial's process (where a 1-worker trial
runs its loop), and inside a Ray Train worker (where each worker of a multi-worker trial runs
it). Prints steps/s of each and the median ratio of paired rounds (target >= 0.95).

    python bench/step_throughput.py [--image-size 32] [--steps 60] [--rounds 5] [--threads 2] [--where standalone tune train]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Optional

import torch
import torch.nn.functional as F

from dcgan.config import TrainConfig
from dcgan.data import Splits, load_splits, to_float
from dcgan.distributed import resolve_device
from dcgan.models import build_models
from dcgan.train import train


def bare_loop(cfg: TrainConfig, steps: int, splits: Optional[Splits] = None) -> float:
    """The pytorch/examples DCGAN step, written inline: the reference. Data resident on the
    device; bf16 autocast when cfg.precision says so. Returns steps/s."""
    torch.manual_seed(cfg.seed)
    splits = splits or load_splits(cfg)
    device = resolve_device(cfg.device)
    data = to_float(splits.train.images.to(device))
    g, d = (m.to(device) for m in build_models(cfg, splits.channels))
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    b = cfg.batch_size
    ones, zeros = torch.ones(b, device=device), torch.zeros(b, device=device)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        real = data[torch.randint(len(data), (b,), device=device)]
        with amp:
            fake = g(torch.randn(b, cfg.latent_dim, device=device))
        # (1) Update D: maximise log D(x) + log(1 - D(G(z)))
        opt_d.zero_grad()
        with amp:
            real_logits, fake_logits = d(real).float(), d(fake.detach()).float()
        loss_d = F.binary_cross_entropy_with_logits(real_logits, ones) + F.binary_cross_entropy_with_logits(fake_logits, zeros)
        loss_d.backward()
        opt_d.step()
        # (2) Update G: maximise log D(G(z))
        opt_g.zero_grad()
        with amp:
            loss_g = F.binary_cross_entropy_with_logits(d(fake).float(), ones)
        loss_g.backward()
        opt_g.step()
    sync()
    return steps / (time.perf_counter() - t0)


def project_loop(cfg: TrainConfig, steps: int, splits: Optional[Splits] = None) -> float:
    """dcgan.train.train as a trial runs it, no evaluation and no files; steps/s of its loop
    (its set-up, model building and data placement, is timed apart by the loop and left out,
    as the bare loop's is; the loop syncs with the device at its end)."""
    result = train(cfg.replace(steps=steps, eval_every=steps), None, evaluator=None, log=lambda _: None, splits=splits)
    return steps / result.loop_s


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def rounds(cfg_dict: dict, steps: int, n: int, threads: int) -> tuple[list[float], list[float]]:
    """Alternating rounds of both loops in this process: (bare steps/s, project steps/s)."""
    torch.set_num_threads(threads)
    cfg = TrainConfig.from_dict(cfg_dict)
    load_splits(cfg)  # load once, outside the timings
    bare_loop(cfg, 5), project_loop(cfg, 5)  # warm up
    bare, ours = [], []
    for _ in range(n):
        bare.append(bare_loop(cfg, steps))
        ours.append(project_loop(cfg, steps))
    return bare, ours


def in_tune_trial(cfg_dict: dict, steps: int, n: int, threads: int) -> tuple[list[float], list[float]]:
    from ray import tune

    def trial(config):
        bare, ours = rounds(cfg_dict, steps, n, threads)
        tune.report({"bare": bare, "ours": ours})

    grid = tune.Tuner(tune.with_resources(trial, {"CPU": threads}),
                      run_config=tune.RunConfig(verbose=0)).fit()
    metrics = grid[0].metrics
    return metrics["bare"], metrics["ours"]


def in_train_worker(cfg_dict: dict, steps: int, n: int, threads: int) -> tuple[list[float], list[float]]:
    import json
    import tempfile

    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    with tempfile.TemporaryDirectory() as tmp:  # Ray Train V2 keeps no metrics without a checkpoint
        path = f"{tmp}/rounds.json"

        def worker(config):
            bare, ours = rounds(cfg_dict, steps, n, threads)
            with open(path, "w") as f:
                json.dump({"bare": bare, "ours": ours}, f)

        TorchTrainer(worker, scaling_config=ScalingConfig(num_workers=1, resources_per_worker={"CPU": threads})).fit()
        with open(path) as f:
            metrics = json.load(f)
    return metrics["bare"], metrics["ours"]


def show(where: str, bare: list[float], ours: list[float]) -> None:
    paired = statistics.median(o / b for o, b in zip(ours, bare))
    print(f"{where:<22} bare {statistics.median(bare):6.2f} steps/s   dcgan.train {statistics.median(ours):6.2f} steps/s"
          f"   ratio {paired:.3f} (median of paired rounds; target >= 0.95)")
    print(f"{'':<22} rounds: bare {', '.join(f'{x:.2f}' for x in bare)}; ours {', '.join(f'{x:.2f}' for x in ours)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--where", nargs="+", default=["standalone", "tune", "train"], choices=("standalone", "tune", "train"))
    args = p.parse_args()
    cfg = TrainConfig(image_size=args.image_size, ngf=64, ndf=64, batch_size=64, device="cpu").to_dict()
    print(f"{args.image_size}px ngf=ndf=64 batch 64, {args.threads} threads, {args.steps} steps x {args.rounds} rounds")
    if "standalone" in args.where:
        show("standalone", *rounds(cfg, args.steps, args.rounds, args.threads))
    if {"tune", "train"} & set(args.where):
        import ray

        ray.init(num_cpus=args.threads, include_dashboard=True, log_to_driver=False, logging_level="WARNING")
        try:
            if "tune" in args.where:
                show("in a Tune trial", *in_tune_trial(cfg, args.steps, args.rounds, args.threads))
            if "train" in args.where:
                show("in a Ray Train worker", *in_train_worker(cfg, args.steps, args.rounds, args.threads))
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
