"""`python -m search.train`: train one config (e.g. a search's winner) under Ray Train DDP.

    python -m search.train --config experiments/ratio_lr-.../best_config.json --steps 50000 --workers 8

Checkpoints at every evaluation (a restarted worker group continues from the last one), and a
final evaluation at the last step, written to <storage>/<name>/final_metrics.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Optional

from dcgan.config import ConfigError, TrainConfig, absolute_paths, parse_overrides
from experiment.layout import Experiment, is_uri, join_uri, parent_uri, storage_uri
from search.cluster import connect_ray
from search.plan import SearchError, check_dataset, check_gpus, check_local_machine, check_storage, read_config
from search.trial import MAX_WORKER_FAILURES, Resources, train_worker


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m search.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="a TrainConfig JSON file, e.g. <experiment>/best_config.json")
    p.add_argument("--steps", type=int, help="generator updates (default: the config's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field; repeatable")
    p.add_argument("--workers", type=int, default=1, help="DDP workers (default 1)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0, help="(default 1)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="(default 0)")
    p.add_argument("--storage", default="runs", help="where the run folder goes: a path or a URI (default runs)")
    p.add_argument("--name", help="run name (default: train-<dataset>-<time>)")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    return p


def plan_run(args: argparse.Namespace) -> tuple[TrainConfig, Resources, Experiment]:
    base = read_config(args.config).to_dict()
    overrides = parse_overrides(args.overrides)
    if args.steps is not None:
        overrides["steps"] = args.steps
    cfg = TrainConfig.from_dict(absolute_paths({**base, **overrides}))  # its workers run in folders of their own
    if cfg.eval_every > cfg.steps:  # a shorter run still evaluates at its end
        cfg = cfg.replace(eval_every=cfg.steps)
    if args.workers < 1 or args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
        raise SearchError("--workers must be >= 1, --cpus-per-worker > 0 and --gpus-per-worker >= 0")
    check_gpus(args.gpus_per_worker, args.workers)
    check_dataset(cfg)
    if not (args.address or os.environ.get("RAY_ADDRESS")):
        check_local_machine(cfg, args.gpus_per_worker)
    name = args.name or f"train-{cfg.dataset.replace(':', '_').replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    run = Experiment(join_uri(storage_uri(args.storage), name))
    check_storage(args.storage, run)
    if run.exists("config.json"):
        raise SearchError(f"run '{run.uri}' exists; pass another --name")
    return cfg, Resources(args.workers, args.cpus_per_worker, args.gpus_per_worker), run


def train_with_ray(cfg: TrainConfig, resources: Resources, run: Experiment) -> dict:
    """A TorchTrainer of `resources.workers` workers on `cfg`; returns the final evaluation."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer

    run.write_text(cfg.to_json(), "config.json")
    # rank 0 writes dcgan's own run folder (samples, metrics.jsonl) there when storage is local
    out_dir = None if is_uri(run.uri) else run.path("run")
    storage, name = parent_uri(run.uri)
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"config": cfg.to_dict(), "out_dir": out_dir},
        scaling_config=resources.scaling_config(),
        run_config=RunConfig(name=name, storage_path=storage,
                             failure_config=FailureConfig(max_failures=MAX_WORKER_FAILURES),
                             checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints)),
    )
    result = trainer.fit()
    final = dict(result.metrics or {})
    run.write_json({"metrics": final, "checkpoint": result.checkpoint.path if result.checkpoint else None,
                    "workers": resources.workers}, "final_metrics.json")
    return final


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg, resources, run = plan_run(args)
        started_ray = connect_ray(args.address)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import ray

    try:
        print(f"training {cfg.dataset} at {cfg.image_size}px for {cfg.steps} steps on "
              f"{resources.workers} worker(s) -> {run.uri}")
        final = train_with_ray(cfg, resources, run)
    finally:
        if started_ray:
            ray.shutdown()
    print(json.dumps({k: final.get(k) for k in ("step", "status", "fid", "collapse") if k in final}))
    print(f"run: {run.uri}")
    return 1 if final.get("status") == "diverged" else 0


if __name__ == "__main__":
    sys.exit(main())
