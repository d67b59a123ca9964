"""`python -m search.run`: a Ray Tune search over a named space, each trial a Ray Train DDP job.

    python -m search.run --space ratio_lr                     # laptop defaults, about 10 minutes
    python -m search.run --space full --dataset mnist --trials 64 --gpus-per-worker 0.25
    python -m search.run --space ratio_lr --name ratio_lr-1 --resume   # continue a killed search

Optuna's TPE (multivariate, seeded) proposes the parameters; the first trial is the DCGAN
paper's setting; ASHA stops poor trials early on FID. The experiment directory
(docs/experiment-layout.md) is written as results arrive; at the end best_config.json holds
the winner, which `python -m search.train --config .../best_config.json` trains further.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import os
import platform
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Optional

from dcgan.config import ConfigError, TrainConfig, parse_overrides
from search.layout import Experiment, is_uri, open_fs, storage_uri
from search.trial import METRIC, Resources
from spaces import SPACES, baseline_params, describe, get_space

# Laptop defaults: digits at 16 px, small nets, a budget of about 10 minutes on 2 cores.
DEFAULT_TRIALS = 12
DEFAULT_STEPS = 800
DEFAULT_IMAGE_SIZE = 16
LAPTOP_FIXED = {"ngf": 32, "ndf": 32, "eval_samples": 1000, "keep_checkpoints": 2}
EVALUATIONS_PER_TRIAL = 4  # eval_every = steps // 4 unless --set eval_every=...
ASHA_REDUCTION_FACTOR = 2
ASHA_GRACE_EVALUATIONS = 2  # FID after one evaluation (a quarter of the run) is too noisy to stop on
DEFAULT_STORAGE = "experiments"
DRIVER_MEMORY = 64 * 1024 * 1024  # the Tune trial only waits on its trainer: no CPU, a little memory


class SearchError(ConfigError):
    """Bad input to the search; the message says how to fix it."""


@dataclass(frozen=True)
class Plan:
    """Everything the search needs, validated before Ray starts or a file is written."""

    name: str
    space: str
    experiment: Experiment
    fixed: dict[str, Any]  # TrainConfig overrides shared by every trial
    baseline: dict[str, Any]
    trials: int
    steps: int
    seed: int
    scheduler: str
    concurrency: Optional[int]
    resources: Resources
    address: Optional[str]
    resume: bool


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m search.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--space", help="search space name (see --list-spaces)")
    p.add_argument("--list-spaces", action="store_true", help="print the known spaces and exit")
    p.add_argument("--dataset", default="digits", help="dataset name (default: digits, embedded)")
    p.add_argument("--trials", type=int, default=DEFAULT_TRIALS, help=f"number of trials (default {DEFAULT_TRIALS})")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"generator updates per trial (default {DEFAULT_STEPS})")
    p.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE, help=f"(default {DEFAULT_IMAGE_SIZE})")
    p.add_argument("--concurrency", type=int, help="trials at once (default: as many as the cluster's resources fit)")
    p.add_argument("--scheduler", choices=("asha", "fifo"), default="asha", help="asha stops poor trials early (default)")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="experiments root: a path or a URI such as s3://bucket/x")
    p.add_argument("--name", help="experiment name (default: <space>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the experiment --name (same --space)")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler and of every trial (default 0)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a TrainConfig field for every trial; repeatable")
    p.add_argument("--workers-per-trial", type=int, default=1, help="DDP workers per trial (default 1)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0, help="(default 1)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="fractions share a GPU (default 0)")
    return p


# --- validation: no Ray, nothing written ---------------------------------------------------------


def plan_search(args: argparse.Namespace) -> Plan:
    if not args.space:
        raise SearchError(f"--space is required; known: {', '.join(sorted(SPACES))}")
    space = get_space(args.space)
    for flag, value, low in (("--trials", args.trials, 1), ("--steps", args.steps, 1),
                             ("--workers-per-trial", args.workers_per_trial, 1)):
        if value < low:
            raise SearchError(f"{flag} must be >= {low}, got {value}")
    if args.concurrency is not None and args.concurrency < 1:
        raise SearchError(f"--concurrency must be >= 1, got {args.concurrency}")
    if args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
        raise SearchError("--cpus-per-worker must be > 0 and --gpus-per-worker >= 0")
    if args.resume and not args.name:
        raise SearchError("--resume needs --name NAME, the experiment to continue")

    name = args.name or f"{args.space}-{time.strftime('%Y%m%d-%H%M%S')}"
    experiment = Experiment(f"{storage_uri(args.storage)}/{name}")
    if args.resume:
        return _plan_resume(args, experiment, name)

    fixed = _fixed_overrides(args)
    baseline = baseline_params(space)
    searched = sorted(set(baseline) & set(parse_overrides(args.overrides)))
    if searched:
        raise SearchError(f"--set {searched[0]} fixes a parameter that space '{args.space}' searches; drop it")
    cfg = TrainConfig.from_dict({**fixed, **baseline})
    _check_dataset(cfg)
    _check_storage(args.storage, experiment)
    return Plan(name, args.space, experiment, fixed, baseline, args.trials, cfg.steps, args.seed,
                args.scheduler, args.concurrency,
                Resources(args.workers_per_trial, args.cpus_per_worker, args.gpus_per_worker),
                args.address or os.environ.get("RAY_ADDRESS"), resume=False)


def _fixed_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The laptop defaults, the flags, then --set: the TrainConfig overrides shared by every trial."""
    fixed = {**LAPTOP_FIXED, "dataset": args.dataset, "image_size": args.image_size, "steps": args.steps,
             "seed": args.seed}
    fixed |= parse_overrides(args.overrides)
    steps = TrainConfig.from_dict(fixed).steps
    fixed.setdefault("eval_every", max(1, steps // EVALUATIONS_PER_TRIAL))
    coerced = TrainConfig.from_dict(fixed).to_dict()  # types fixed, unknown keys rejected
    return {k: coerced[k] for k in sorted(fixed)}


def _plan_resume(args: argparse.Namespace, experiment: Experiment, name: str) -> Plan:
    try:
        found = experiment.exists("experiment.json")
    except OSError as e:
        raise SearchError(f"cannot read storage {args.storage} ({e}); check --storage") from None
    if not found:
        raise SearchError(f"no experiment '{name}' in {args.storage} to resume; check --name and --storage")
    info = experiment.read_json("experiment.json")
    if info["space"] != args.space:
        raise SearchError(f"experiment '{name}' searched space '{info['space']}', not '{args.space}'; "
                          f"resume it with --space {info['space']}")
    fixed = info["fixed"]
    cfg = TrainConfig.from_dict(fixed)
    _check_dataset(cfg)
    return Plan(name, info["space"], experiment, fixed, info["baseline_params"], info["trials_requested"],
                cfg.steps, info["seed"], info["scheduler"], args.concurrency,
                Resources(info["workers_per_trial"], info["cpus_per_worker"], info["gpus_per_worker"]),
                args.address or os.environ.get("RAY_ADDRESS"), resume=True)


def _check_dataset(cfg: TrainConfig) -> None:
    from dcgan.data import load_splits

    load_splits(cfg)  # DataError (a ConfigError) names the known datasets


def _check_storage(storage: str, experiment: Experiment) -> None:
    """A local storage path must be creatable and writable; a URI must name a filesystem.
    An existing experiment is never overwritten."""
    if is_uri(storage):
        try:
            open_fs(experiment.uri)
        except Exception as e:  # pyarrow raises several kinds for a bad URI
            raise SearchError(f"cannot open storage {storage} ({e}); check the URI and credentials") from None
    else:
        probe = os.path.abspath(os.path.expanduser(storage))
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        try:  # a real write: os.access says yes to root even on read-only mounts and /proc
            if not os.path.isdir(probe):
                raise OSError(f"{probe} is not a folder")
            tempfile.TemporaryFile(dir=probe).close()
        except OSError as e:
            raise SearchError(f"cannot write to storage {storage} ({e}); pass a writable --storage") from None
    if experiment.exists("experiment.json"):
        raise SearchError(f"experiment '{experiment.uri}' exists; pass --resume to continue it, or another --name")


def check_address(address: Optional[str], timeout_s: float = 3.0) -> None:
    """Fail fast on an unreachable cluster instead of waiting on it."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SearchError(f"--address must be HOST:PORT or ray://HOST:PORT, got '{address}'")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise SearchError(f"cannot reach Ray at {address} ({e.strerror or e}); start it with `ray start --head` "
                          "or drop --address (and RAY_ADDRESS) for a local Ray") from None


# --- the search ------------------------------------------------------------------------------------


def connect_ray(address: Optional[str]) -> bool:
    """Reuse an initialised Ray (tests share one); else start or join one. True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    check_address(address)
    try:
        ray.init(address=address if address not in (None, "local") else None, include_dashboard=True,
                 log_to_driver=True)
    except ConnectionError as e:
        raise SearchError(f"cannot connect to Ray ({e}); check --address") from None
    return True


def default_concurrency(resources: Resources, trials: int) -> int:
    """As many trials as the cluster's CPUs (or GPUs) hold at once, at most `trials`."""
    import ray

    total = ray.cluster_resources()
    fits = total.get("CPU", 1) // (resources.workers * resources.cpus_per_worker)
    if resources.gpus_per_worker:
        fits = min(fits, total.get("GPU", 0) // (resources.workers * resources.gpus_per_worker))
    return int(max(1, min(fits, trials)))


def experiment_info(plan: Plan, concurrency: int, started_at: str) -> dict[str, Any]:
    import optuna
    import ray
    import torch

    cfg = TrainConfig.from_dict({**plan.fixed, **plan.baseline})
    return {
        "name": plan.name, "space": plan.space, "dataset": cfg.dataset, "image_size": cfg.image_size,
        "metric": METRIC, "mode": "min", "scheduler": plan.scheduler, "trials_requested": plan.trials,
        "steps": plan.steps, "seed": plan.seed, "concurrency": concurrency,
        "workers_per_trial": plan.resources.workers, "cpus_per_worker": plan.resources.cpus_per_worker,
        "gpus_per_worker": plan.resources.gpus_per_worker,
        "extractor": None, "eval_samples": cfg.eval_samples, "reference": None,  # filled from the first FID
        "baseline_trial_id": None, "baseline_params": plan.baseline, "fixed": plan.fixed,
        "started_at": started_at, "finished_at": None, "wall_time_s": None,
        "versions": {"ray": ray.__version__, "torch": torch.__version__, "optuna": optuna.__version__,
                     "python": platform.python_version(), "dcgan_search": _package_version()},
    }


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dcgan-search")
    except PackageNotFoundError:
        return "unknown"


def optuna_storage(plan: Plan):
    """SQLite in the experiment (optuna-dashboard opens it); for a URI, a local copy that the
    callback uploads after every trial."""
    import optuna

    if is_uri(plan.experiment.uri):
        key = hashlib.sha1(plan.experiment.uri.encode()).hexdigest()[:12]
        from dcgan.metrics.cache import cache_root

        local = os.path.join(cache_root(), "optuna", f"{plan.name}-{key}.db")
        os.makedirs(os.path.dirname(local), exist_ok=True)
        if not plan.resume and os.path.exists(local):
            os.remove(local)  # a stale copy from an earlier experiment of this name and place
        if plan.resume and plan.experiment.exists("optuna.db"):
            with plan.experiment.fs.open_input_stream(plan.experiment.path("optuna.db")) as src, open(local, "wb") as dst:
                dst.write(src.read())
        return optuna.storages.RDBStorage(f"sqlite:///{local}"), local
    return optuna.storages.RDBStorage(f"sqlite:///{plan.experiment.path('optuna.db')}"), None


def build_tuner(plan: Plan, concurrency: int):
    from optuna.samplers import TPESampler
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from search.callback import ExperimentWriter
    from search.searcher import OptunaSearchFailingNaN
    from search.trial import run_trial

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, fixed=plan.fixed, resources=plan.resources,
                             experiment_uri=plan.experiment.uri),
        {"CPU": 0, "memory": DRIVER_MEMORY})
    if plan.resume:  # Tune restores its searcher, scheduler and callbacks from the experiment
        if is_uri(plan.experiment.uri):
            optuna_storage(plan)  # fetch the study's local copy back first
        return tune.Tuner.restore(plan.experiment.uri, trainable, resume_unfinished=True, resume_errored=False)
    storage, local_db = optuna_storage(plan)
    writer = ExperimentWriter(plan.experiment, plan.fixed, plan.steps, plan.baseline, optuna_db=local_db)
    searcher = OptunaSearchFailingNaN(space=get_space(plan.space), metric=METRIC, mode="min",
                                      points_to_evaluate=[plan.baseline], study_name=plan.name, storage=storage,
                                      sampler=TPESampler(multivariate=True, seed=plan.seed))
    eval_every = plan.fixed["eval_every"]
    scheduler = (ASHAScheduler(time_attr="step", metric=METRIC, mode="min", max_t=plan.steps,
                               grace_period=min(ASHA_GRACE_EVALUATIONS * eval_every, plan.steps),
                               reduction_factor=ASHA_REDUCTION_FACTOR)
                 if plan.scheduler == "asha" else FIFOScheduler())
    reporter = tune.CLIReporter(metric_columns={"step": "step", METRIC: METRIC, "collapse": "collapse"},
                                parameter_columns=sorted(plan.baseline), metric=METRIC, mode="min",
                                sort_by_metric=True, max_report_frequency=30)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=plan.trials,
                                    max_concurrent_trials=concurrency, trial_dirname_creator=tune_dirname),
        run_config=tune.RunConfig(name=plan.name, storage_path=plan.experiment.uri.rsplit("/", 1)[0],
                                  callbacks=[writer], progress_reporter=reporter, verbose=1,
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )


def tune_dirname(trial) -> str:
    return f"tune-{trial.trial_id}"


def finish(plan: Plan, info: dict[str, Any], t0: float) -> int:
    """best_config.json, the top-5 table, experiment.json's end, and the HTML report."""
    from search.summary import best_config_json, format_table, rank, winner

    exp = plan.experiment
    for tid in exp.trial_ids():  # a trial started just before a driver was killed, and not restored
        status = exp.load_trial(tid)["status"]
        if status["status"] in ("pending", "running"):
            exp.write_status(tid, "failed", status["step"], "lost: the search driver stopped before this "
                             "trial ended, and Tune's saved state did not include it")
    experiment, ranking = rank(exp.uri)
    best = winner(ranking)
    info = exp.read_json("experiment.json")  # the callback may have set baseline_trial_id
    if best is not None:
        best_json = best_config_json(experiment, best)
        info |= {"extractor": best_json["diagnostics"]["extractor"], "reference": best_json["diagnostics"]["reference"]}
        exp.write_json(best_json, "best_config.json")
    info |= {"finished_at": _now(), "wall_time_s": round(time.time() - t0, 1)}
    exp.write_json(info, "experiment.json")
    print(format_table(ranking))
    if best is not None:
        print(f"best: trial {best.trial_id}, fid {best.fid:.3f}; config in {exp.uri}/best_config.json")
        if ranking.gain_over_baseline_pct is not None:
            print(ranking.gain_note)
    else:
        print("no trial produced a finite FID; no best_config.json written", file=sys.stderr)
    print(f"experiment: {exp.uri}")
    try:
        from reports import build
    except ImportError:
        return 0
    try:
        build.main([exp.uri])
        print(f"report: {exp.uri}/report.html")
    except Exception as e:  # the report is a view of the files; the search itself succeeded
        print(f"warning: report not built ({e})", file=sys.stderr)
    return 0


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@contextlib.contextmanager
def _environ(**values: str):
    previous = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in previous.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_search(plan: Plan) -> int:
    import ray

    started_ray = connect_ray(plan.address)
    try:
        concurrency = plan.concurrency or default_concurrency(plan.resources, plan.trials)
        t0 = time.time()
        if plan.resume:
            info = plan.experiment.read_json("experiment.json") | {"finished_at": None, "wall_time_s": None}
        else:
            info = experiment_info(plan, concurrency, _now())
        plan.experiment.write_json(info, "experiment.json")
        tuner = build_tuner(plan, concurrency)
        # The classic table (it shows FID and collapse), and Tune's own state saved every second
        # (default: every 10 s or more), so a killed driver loses little and --resume repeats little.
        with _environ(RAY_AIR_NEW_OUTPUT="0", TUNE_GLOBAL_CHECKPOINT_S=os.environ.get("TUNE_GLOBAL_CHECKPOINT_S", "1")):
            tuner.fit()
        return finish(plan, info, t0)
    finally:
        if started_ray:
            ray.shutdown()


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_spaces:
        for name in sorted(SPACES):
            print(f"{name:<10} {describe(name)}")
        return 0
    try:
        plan = plan_search(args)
        return run_search(plan)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
