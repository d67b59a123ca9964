"""`python -m search.train`: train one config (e.g. a search's winner) under Ray Train DDP.

    python -m search.train --config experiments/ratio_lr-.../best_config.json --steps 50000 --workers 8

Checkpoints at every evaluation (a restarted worker group continues from the last one), and a
final evaluation at the last step, written to <storage>/<name>/final_metrics.json. A run stopped
before its end (Ctrl-C, a killed driver, a lost head) goes on from its last checkpoint with

    python -m search.train --name NAME [--storage ...] --resume
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import Optional

from dcgan import keys
from dcgan.checkpoint import CONTINUE_FROM
from dcgan.config import ConfigError, TrainConfig, absolute_paths, parse_overrides
from dcgan.train import EXIT_INTERRUPTED
from experiment.layout import CONFIG_JSON, Experiment, is_uri, join_uri, parent_uri, storage_uri
from experiment.schema import STOPPED, final_status
from search.cluster import connect_ray
from search.lock import DriverLock, refuse_if_held
from search.checks import (SearchError, check_capture, check_dataset, check_gpus, check_local_machine, check_name, check_resumable,
                           check_storage, read_config, resume_command)
from search.protocol import MAX_WORKER_FAILURES, Resources
from search.trial import train_worker

DEFAULT_RUNS = "runs"  # --storage's default
FINAL_METRICS_JSON = "final_metrics.json"  # the run's last evaluation, written when it has ended
CONTINUED_JSON = "continued.json"  # a run started with --continue: the checkpoint it went on from


class RunStopped(Exception):
    """The run ended before its last step without diverging: Ray Train aborted it (Ctrl-C)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m search.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="a TrainConfig JSON file, e.g. <experiment>/best_config.json")
    p.add_argument("--steps", type=int, help="generator updates (default: the config's)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field; repeatable")
    p.add_argument("--workers", type=int, default=1, help="DDP workers (default 1)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0, help="(default 1)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="(default 0)")
    p.add_argument("--storage", default=DEFAULT_RUNS,
                   help=f"where the run folder goes: a path or a URI (default {DEFAULT_RUNS})")
    p.add_argument("--name", help="run name (default: train-<dataset>-<time>)")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else the Ray running on this "
                   "machine, else a new one; local: a new one)")
    p.add_argument("--resume", action="store_true",
                   help="go on with the run --name (in --storage) from its last checkpoint, as it was set up")
    p.add_argument("--continue", dest="continue_run", action="store_true",
                   help="start from the checkpoint that --config names (a search's best_config.json: its winner's "
                        "last checkpoint) and train on to --steps with the config's last hyperparameters")
    return p


def config_from_flags(args: argparse.Namespace, default: Optional[TrainConfig] = None) -> TrainConfig:
    """--config's TrainConfig (without --config, `default`) with --steps and --set."""
    base = (read_config(args.config) if args.config else default).to_dict()
    overrides = parse_overrides(args.overrides)
    if args.steps is not None:
        overrides["steps"] = args.steps
    cfg = TrainConfig.from_dict(absolute_paths({**base, **overrides}))  # its workers run in folders of their own
    if cfg.eval_every > cfg.steps:  # a shorter run still evaluates at its end
        cfg = cfg.replace(eval_every=cfg.steps)
    return cfg


def continued_from(config: str, steps: int) -> str:
    """The checkpoint (a path or a URI) that `config`, a search's best_config.json, names for --continue."""
    from dcgan.checkpoint import continued_checkpoint

    if not is_uri(config):
        return str(continued_checkpoint(config, steps))  # checked here: found, readable, before `steps`
    folder, name = parent_uri(config)
    where = (json.loads(Experiment(folder).read_text(name)) or {}).get(CONTINUE_FROM)
    if not where:
        raise SearchError(f"{config} names no checkpoint to continue from; pass a search's best_config.json, or "
                          "drop --continue to train from step 0")
    return where


def plan_run(args: argparse.Namespace) -> tuple[TrainConfig, Resources, Experiment, Optional[str]]:
    """The run's config, resources and folder, and the checkpoint it continues from (None: step 0)."""
    start = None
    if args.resume:
        if args.continue_run:
            raise SearchError("--resume goes on with a run as it was started (with or without --continue); drop "
                              "--continue")
        cfg, run = resumed_run(args)
        start = (run.read_json(CONTINUED_JSON) or {}).get(CONTINUE_FROM)
    elif not args.config:
        raise SearchError("--config FILE is needed (a search's best_config.json), or --name NAME --resume to go on "
                          "with a run")
    else:
        cfg = config_from_flags(args)
        start = continued_from(args.config, cfg.steps) if args.continue_run else None
    if args.workers < 1 or args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
        raise SearchError("--workers must be >= 1, --cpus-per-worker > 0 and --gpus-per-worker >= 0")
    check_gpus(args.gpus_per_worker, args.workers)
    check_dataset(cfg, args.workers)
    check_capture(cfg, args.gpus_per_worker, args.workers, "--workers")
    if (args.address or os.environ.get("RAY_ADDRESS")) in (None, "", "local"):
        check_local_machine(cfg, args.gpus_per_worker)
    if not args.resume:
        name = args.name or f"train-{re.sub(r'[^A-Za-z0-9_-]+', '_', cfg.dataset)}-{time.strftime('%Y%m%d-%H%M%S')}"
        check_name(name)
        run = Experiment(join_uri(storage_uri(args.storage), name))
        refuse_if_held(run)
        check_storage(args.storage, run)
        if run.exists(CONFIG_JSON):
            raise SearchError(f"run '{run.uri}' exists; pass another --name, or --resume to go on with it")
    return cfg, Resources(args.workers, args.cpus_per_worker, args.gpus_per_worker), run, start


def resumed_run(args: argparse.Namespace) -> tuple[TrainConfig, Experiment]:
    """The run --resume goes on with, and its config (the flags, if given, must give the same)."""
    if not args.name:
        raise SearchError("--resume needs --name NAME, the run to go on with")
    check_name(args.name)
    run = Experiment(join_uri(storage_uri(args.storage), args.name))
    refuse_if_held(run)
    check_resumable(run, CONFIG_JSON, args.storage, "run")
    if run.exists(FINAL_METRICS_JSON):
        raise SearchError(f"run '{run.uri}' has ended (its {FINAL_METRICS_JSON} is written); nothing to resume")
    cfg = TrainConfig.from_json(run.read_text(CONFIG_JSON))
    if args.config or args.steps is not None or args.overrides:
        given, kept = config_from_flags(args, cfg).to_dict(), cfg.to_dict()
        differ = [f"{k} {given[k]!r} (the run's: {kept[k]!r})" for k in kept if given[k] != kept[k]]
        if differ:
            raise SearchError(f"--resume goes on with run '{args.name}' as it was set up, and these flags change "
                              f"{'; '.join(differ)}; drop --config, --steps and --set")
    return cfg, run


def train_resume_command(run: Experiment, resources: Resources) -> str:
    """The command that goes on with `run`, with the resources it was given where not the defaults."""
    parser, flags = build_parser(), []
    for dest, value in (("workers", resources.workers), ("cpus_per_worker", resources.cpus_per_worker),
                        ("gpus_per_worker", resources.gpus_per_worker)):
        flags += [f"--{dest.replace('_', '-')}", f"{value:g}"] if value != parser.get_default(dest) else []
    return resume_command("search.train", run.uri, DEFAULT_RUNS, *flags)


def train_with_ray(cfg: TrainConfig, resources: Resources, run: Experiment, start: Optional[str] = None) -> dict:
    """A TorchTrainer of `resources.workers` workers on `cfg`, from checkpoint `start` if given (until
    the run has checkpoints of its own); returns the final evaluation."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer

    if not run.exists(CONFIG_JSON):  # a resumed run keeps its own
        run.write_text(cfg.to_json(), CONFIG_JSON)
        if start:
            run.write_json({CONTINUE_FROM: start}, CONTINUED_JSON)
    # rank 0 writes dcgan's own run folder (samples, metrics.jsonl) there when storage is local
    out_dir = None if is_uri(run.uri) else run.path("run")
    storage, name = parent_uri(run.uri)
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"config": cfg.to_dict(), "out_dir": out_dir, "start": start},
        scaling_config=resources.scaling_config(),
        run_config=RunConfig(name=name, storage_path=storage,
                             failure_config=FailureConfig(max_failures=MAX_WORKER_FAILURES),
                             checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints)),
    )
    result = trainer.fit()
    final = dict(result.metrics or {})
    if final_status(final, cfg.steps) == STOPPED:  # aborted before its end: Ctrl-C, which Ray Train handles
        raise RunStopped(f"stopped at step {final.get(keys.STEP, 0)} of {cfg.steps}")
    run.write_json({"metrics": final, "checkpoint": result.checkpoint.path if result.checkpoint else None,
                    "workers": resources.workers}, FINAL_METRICS_JSON)
    return final


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg, resources, run, start = plan_run(args)
        with DriverLock(run, "search.train"):  # one driver per run
            return train_run(args, cfg, resources, run, start)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def train_run(args: argparse.Namespace, cfg: TrainConfig, resources: Resources, run: Experiment,
              start: Optional[str] = None) -> int:
    """Train the planned run (from checkpoint `start`, for --continue) and say how it ended."""
    started_ray = connect_ray(args.address)
    import ray

    try:
        print(f"training {cfg.dataset} at {cfg.image_size}px for {cfg.steps} steps on "
              f"{resources.workers} worker(s) -> {run.uri}" + (" (resumed from its last checkpoint)" if args.resume else "")
              + (f" (continuing from {start})" if start and not args.resume else ""))
        final = train_with_ray(cfg, resources, run, start)
    except (KeyboardInterrupt, SystemExit, RunStopped):  # Ctrl-C: Ray Train aborts the run, and may exit the process
        print(f"stopped before step {cfg.steps}; to go on from its last checkpoint:\n  {train_resume_command(run, resources)}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if started_ray:
            ray.shutdown()
    print(json.dumps({k: final.get(k) for k in (keys.STEP, keys.STATUS, keys.FID, keys.COLLAPSE) if k in final}))
    print(f"run: {run.uri}")
    return 1 if final.get(keys.STATUS) == keys.DIVERGED else 0


if __name__ == "__main__":
    sys.exit(main())
