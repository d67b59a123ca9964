"""Planning a search: the flags checked and turned into a `Plan` before Ray starts or a file is written.

Bad input raises `SearchError` (a ConfigError), whose one-line message names the fix.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from dataclasses import dataclass
from typing import Any, Optional

from dcgan.config import ConfigError, TrainConfig, absolute_paths, parse_duration, parse_overrides
from experiment.layout import EXPERIMENT_JSON, Experiment, join_uri, storage_uri
from experiment.schema import same_params, warm_runs
from search.checks import (SearchError, check_capture, check_dataset, check_gpus, check_local_machine, check_name,  # noqa: F401
                           check_resumable, check_storage, check_trackers, mlflow_uri, read_config)
from search.budget import MIN_BUDGET_S, budget_population, width_for
from search.lock import refuse_if_held
from search.sampling import DEFAULT_SAMPLER, startup_trials
from search.protocol import Resources
from spaces import baseline_params, fixed_params, get_space, trial_config, SPACES

# Laptop defaults: digits at 16 px, small nets, a budget of about 10 minutes on 2 cores.
DEFAULT_TRIALS = 12
DEFAULT_STEPS = 800
DEFAULT_IMAGE_SIZE = 16
LAPTOP_FIXED = {"ngf": 32, "ndf": 32, "eval_samples": 1000, "keep_checkpoints": 2}
# Every search, on any data: trials, the baseline and the confirmation are scored on the moving
# average of G's weights, and best_config.json carries it into the long run the user trains next.
# There a winner tuned on short trials, whose high learning rates move G a lot between evaluations,
# keeps its lead over the paper's config where without the average it lost (measured on MNIST:
# README, "The DCGAN on its own" and the user's path, step 4). `--set ema=0` turns it off.
SEARCH_FIXED = {"ema": 0.999}
# Per dataset, on top of LAPTOP_FIXED (and under --set). Digits has 1,617 training images: without
# augmentation D memorises them and nearly every config, the paper's too, peaks at step 400-600 of
# 800 and declines, so the search would rank how fast trials overfit. DiffAugment's translation
# stops the decline (the paper's config: FID 73 -> 24 at 800 steps) and costs nothing measurable per
# step. Not for MNIST (10,000 images): there it costs a little at these budgets (README, "The DCGAN on
# its own"). `--set augment=` turns it off.
DATASET_FIXED = {"digits": {"augment": "translation"}}
EVALUATIONS_PER_TRIAL = 4  # eval_every = steps // 4 unless --set eval_every=...
DEFAULT_STORAGE = "experiments"
DEFAULT_CONFIRM = 2  # the top 2 trials and the baseline, each trained again...
DEFAULT_CONFIRM_SEEDS = 2  # ...with 2 other seeds
SCHEDULERS = ("asha", "fifo", "pbt", "pb2")
POPULATION_SCHEDULERS = ("pbt", "pb2")  # a population trained together: --population, --perturb-every
# Without --scheduler: PBT (its user ended with the better generator at equal compute on digits and MNIST:
# docs/search-efficiency.md), or asha where a flag of a sampled search says that one is meant.
DEFAULT_SCHEDULER = "pbt"
SAMPLED_SCHEDULER = "asha"
SAMPLED_FLAGS = ("trials", "sampler", "startup_trials", "warm_start")  # flags of a sampled search only
DEFAULT_GPU_PACK = 16  # a pbt population's members trained as one model a trial, on GPUs (choose_pack)
MIN_POPULATION = 4  # the default population: the concurrency, at least this
DEFAULT_PERTURB_EVERY = 1  # evaluations between a member's exploits


@dataclass(frozen=True)
class Plan:
    """Everything the search needs, validated before Ray starts or a file is written."""

    name: str
    space: str
    experiment: Experiment
    fixed: dict[str, Any]  # TrainConfig overrides shared by every trial
    baseline: dict[str, Any]
    trials: Optional[int]  # None for a population until with_population
    steps: int
    seed: int
    scheduler: str
    concurrency: Optional[int]
    resources: Resources
    address: Optional[str]
    resume: bool
    verbose: bool = False
    sampler: str = DEFAULT_SAMPLER
    startup_trials: Optional[int] = None  # None: searcher.startup_trials(trials)
    confirm: int = DEFAULT_CONFIRM  # top trials trained again at the end (and the baseline); 0: none
    confirm_seeds: int = DEFAULT_CONFIRM_SEEDS
    confirm_steps: Optional[int] = None  # None: the search's steps
    # configs tried right after the baseline: [{"from": file, "params": {...}}] (experiment.json's warm_start)
    warm_start: tuple[dict[str, Any], ...] = ()
    # pbt, pb2: members drawn from the space (None: the concurrency, at least MIN_POPULATION, known once
    # Ray is up); `trials` is then the population and the control
    population: Optional[int] = None
    perturb_every: int = DEFAULT_PERTURB_EVERY
    pack: int = 1  # pbt: members trained as one model in one trial, at most this many (search/packed.py)
    # --budget (a wall time, as given) or --budget-steps: search.budget plans the trials, steps and
    # evaluations from it once Ray is up; `budget_plan` is what it became (experiment.json's "budget")
    budget: Optional[str] = None
    budget_steps: Optional[int] = None
    budget_plan: Optional[dict] = None

    @property
    def is_population(self) -> bool:
        return self.scheduler in POPULATION_SCHEDULERS

    @property
    def budgeted(self) -> bool:
        return self.budget is not None or self.budget_steps is not None

    def with_population(self, concurrency: int) -> "Plan":
        """A population search's plan with its population known (trials: the members and the control)."""
        if not self.is_population:
            return self
        population = self.population or (budget_population(concurrency) if self.budgeted
                                          else max(MIN_POPULATION, concurrency))
        return dataclasses.replace(self, population=population, trials=population + 1, sampler="random")
    mlflow: Optional[str] = None  # an MLflow tracking URI: a run per trial there (search/tracking.py)
    wandb: Optional[str] = None  # a W&B project: likewise


def plan_search(args: argparse.Namespace, given: frozenset[str] = frozenset()) -> Plan:
    """The search `args` ask for; `given`: the flags (argparse dests) on the command line, which a
    --resume must not change (the defaults of those left out do not count)."""
    if not args.space:
        raise SearchError(f"--space is required; known: {', '.join(sorted(SPACES))}")
    space = get_space(args.space)
    for flag, value, low in (("--trials", args.trials, 1), ("--steps", args.steps, 1),
                             ("--workers-per-trial", args.workers_per_trial, 1), ("--concurrency", args.concurrency, 1),
                             ("--confirm", args.confirm, 0), ("--confirm-seeds", args.confirm_seeds, 1),
                             ("--startup-trials", args.startup_trials, 1), ("--confirm-steps", args.confirm_steps, 1),
                             ("--population", args.population, 2), ("--perturb-every", args.perturb_every, 1),
                             ("--pack", args.pack, 1)):
        if value is not None and value < low:
            raise SearchError(f"{flag} must be >= {low}, got {value}")
    check_budget(args, given)
    if args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
        raise SearchError("--cpus-per-worker must be > 0 and --gpus-per-worker >= 0")
    check_gpus(args.gpus_per_worker, args.workers_per_trial)
    if args.resume and not args.name:
        raise SearchError("--resume needs --name NAME, the experiment to continue")
    if args.resume and args.warm_start:
        raise SearchError("--warm-start starts a new search; a resumed one keeps its own (drop --warm-start)")
    choose_scheduler(args)

    args.mlflow = mlflow_uri(args.mlflow)
    name = args.name or f"{args.space}-{time.strftime('%Y%m%d-%H%M%S')}"
    check_name(name)
    experiment = Experiment(join_uri(storage_uri(args.storage), name))
    refuse_if_held(experiment)  # another driver runs it: said before anything else about it
    if args.resume:
        return _plan_resume(args, experiment, name, given)

    fixed = _fixed_overrides(args)
    width = width_for(args.gpus_per_worker) if args.budget or args.budget_steps else None
    if width and "ngf" not in parse_overrides(args.overrides):  # the budget's width for the hardware
        fixed |= {"ngf": width, "ndf": width}
    baseline = baseline_params(space)
    searched = sorted(set(baseline) & set(parse_overrides(args.overrides)))
    if searched:
        raise SearchError(f"--set {searched[0]} fixes a parameter that space '{args.space}' searches; drop it")
    warm = warm_start(args.space, space, args.warm_start or [], baseline)
    if args.trials is not None and args.trials < 1 + len(warm_runs(warm)):
        raise SearchError(f"--trials {args.trials} leaves no trial for the --warm-start configs after the baseline; "
                          f"pass --trials {1 + len(warm_runs(warm))} or more")
    cfg = trial_config(fixed, baseline)
    check_dataset(cfg, args.workers_per_trial)
    check_capture(cfg, args.gpus_per_worker, args.workers_per_trial, "--workers-per-trial")
    check_trackers(args.mlflow, args.wandb)
    address = args.address or os.environ.get("RAY_ADDRESS")
    if not address or address == "local":
        check_local_machine(cfg, args.gpus_per_worker)
    check_storage(args.storage, experiment)
    if experiment.exists(EXPERIMENT_JSON):  # never overwritten
        raise SearchError(f"experiment '{experiment.uri}' exists; pass --resume to continue it, or another --name")
    return Plan(name, args.space, experiment, fixed, baseline, args.trials, cfg.steps, args.seed,
                args.scheduler, args.concurrency,
                Resources(args.workers_per_trial, args.cpus_per_worker, args.gpus_per_worker),
                address, resume=False, verbose=args.verbose, sampler=args.sampler, startup_trials=args.startup_trials,
                confirm=args.confirm, confirm_seeds=args.confirm_seeds, confirm_steps=args.confirm_steps,
                warm_start=warm, population=args.population, perturb_every=args.perturb_every or DEFAULT_PERTURB_EVERY,
                pack=choose_pack(args, cfg),
                mlflow=args.mlflow, wandb=args.wandb, budget=args.budget, budget_steps=args.budget_steps)


def check_budget(args: argparse.Namespace, given: frozenset[str]) -> None:
    """--budget and --budget-steps: one of them, a wall time that holds a search, and none of the
    values they plan given beside them; a budget's confirmation is none unless --confirm is given."""
    if args.budget is None and args.budget_steps is None:
        return
    if args.budget is not None and args.budget_steps is not None:
        raise SearchError("--budget and --budget-steps both give the budget; pass one")
    planned = [f for f in ("steps", "confirm_steps") if f in given] + \
        [f"set {k}" for k in ("steps", "eval_every") if k in parse_overrides(args.overrides)]
    if planned and not args.resume:
        flag = planned[0].replace("set ", "--set ") if planned[0].startswith("set ") else "--" + planned[0].replace("_", "-")
        raise SearchError(f"{flag} is what the budget plans; drop it (or the budget)")
    if args.budget is not None and parse_duration(args.budget) < MIN_BUDGET_S:
        raise SearchError(f"--budget {args.budget} cannot hold a search: Ray's start and one evaluation of each "
                          f"trial take more; give {MIN_BUDGET_S} s or more")
    address = args.address or os.environ.get("RAY_ADDRESS")
    if address and address != "local" and not args.concurrency and not args.resume:
        raise SearchError("a budget on a cluster needs --concurrency N: the trials at once decide each one's steps, "
                          "and a cluster's size is known only once it runs")
    if args.budget_steps is not None and args.budget_steps < 1:
        raise SearchError(f"--budget-steps must be >= 1, got {args.budget_steps}")
    if "confirm" not in given:
        args.confirm = 0  # the confirmation trains nothing the user keeps: asked for, it is paid from the budget


def choose_scheduler(args: argparse.Namespace) -> None:
    """args.scheduler where it is not given: DEFAULT_SCHEDULER, or SAMPLED_SCHEDULER beside a flag of a
    sampled search (SAMPLED_FLAGS); the flags that do not go with it refused; a sampled search's defaults
    filled in. Nothing on --resume, which goes on with the experiment's own (changed_on_resume)."""
    if args.resume:
        return
    sampled = [flag for flag in SAMPLED_FLAGS if getattr(args, flag) is not None]
    args.scheduler = args.scheduler or (SAMPLED_SCHEDULER if sampled else DEFAULT_SCHEDULER)
    if (args.pack or 1) > 1 and (args.scheduler != "pbt" or args.workers_per_trial > 1):
        raise SearchError("--pack trains a pbt population's members together in one process: it goes with "
                          "--scheduler pbt and one worker a trial; drop it, or those")
    if args.scheduler in POPULATION_SCHEDULERS:
        drawn = "its population is drawn at random from the space; drop it"
        fix = {"trials": "it trains --population N members and the paper's setting; pass --population",
               "warm_start": "it starts from random draws; use --scheduler asha or fifo to try a config first"}
        if sampled:
            raise SearchError(f"--{sampled[0].replace('_', '-')} does not go with --scheduler {args.scheduler}: "
                              f"{fix.get(sampled[0], drawn)}")
        return
    for flag in ("population", "perturb_every"):
        if getattr(args, flag) is not None:
            raise SearchError(f"--{flag.replace('_', '-')} goes with --scheduler pbt or pb2; add one, or drop it")
    args.trials = DEFAULT_TRIALS if args.trials is None else args.trials
    args.sampler = args.sampler or DEFAULT_SAMPLER






def choose_pack(args: argparse.Namespace, cfg: TrainConfig) -> int:
    """--pack, or its default: DEFAULT_GPU_PACK members a trial for a pbt population on GPUs (one worker
    a trial), where one model's tiny kernels leave a GPU idle; one member a trial on CPUs, where a pack
    runs no faster (docs/performance.md). A captured step (cuda_graph) is a lone trial's: no pack."""
    if args.pack is not None:
        if args.pack > 1 and cfg.cuda_graph:
            raise SearchError("--set cuda_graph=true captures a lone trial's step, and a pack's step is not captured; "
                              "drop one of them")
        return args.pack
    on_gpus = args.gpus_per_worker > 0 and args.scheduler == "pbt" and args.workers_per_trial == 1
    return DEFAULT_GPU_PACK if on_gpus and not cfg.cuda_graph else 1


def warm_start(space_name: str, space, sources: list[str], baseline: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The configs of `sources` (best_config.json files, or any TrainConfig JSON: paths or URIs) as
    trials of `space`: each one's values of the parameters the space samples. One with the
    baseline's params, or an earlier one's, says so under "same_as" and is not run again."""
    out: list[dict[str, Any]] = []
    for source in sources:
        try:
            values = read_config(source, "--warm-start").to_dict()
        except SearchError:  # a URI that cannot be read: the message names the flag already
            raise
        except ConfigError as e:  # not found, not JSON, not a TrainConfig
            raise SearchError(f"--warm-start {source}: {e}") from None
        try:
            params = fixed_params(space, values)
        except ConfigError as e:
            raise SearchError(f"--warm-start {source}: {e} of space '{space_name}'; pass a config inside "
                              f"the space, or a space that holds it") from None
        same = ("the baseline" if same_params(params, baseline) else
                next((w["from"] for w in out if same_params(params, w["params"])), None))
        out.append({"from": source, "params": params, **({"same_as": same} if same else {})})
    return tuple(out)




def _fixed_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The search's, laptop and dataset defaults, the flags, then --set: the TrainConfig overrides shared by every trial."""
    fixed = {**SEARCH_FIXED, **LAPTOP_FIXED, **DATASET_FIXED.get(args.dataset, {}), "dataset": args.dataset,
             "image_size": args.image_size, "steps": args.steps, "seed": args.seed}
    fixed |= parse_overrides(args.overrides)
    steps = TrainConfig.from_dict(fixed).steps
    fixed.setdefault("eval_every", max(1, steps // EVALUATIONS_PER_TRIAL))
    coerced = absolute_paths(TrainConfig.from_dict(fixed).to_dict())  # types fixed, unknown keys rejected
    return {k: coerced[k] for k in sorted(fixed)}






# The flags a search is planned with, and the experiment.json key that keeps what each gave: the one
# list that planned_info writes (search.tuner's experiment_info), a --resume reads back, and a flag
# given with --resume is checked against; --set and the flags of FIXED_FLAGS are kept in its "fixed".
PLANNED = {"trials": "trials_requested", "scheduler": "scheduler", "sampler": "sampler",
           "startup_trials": "startup_trials", "workers_per_trial": "workers_per_trial",
           "cpus_per_worker": "cpus_per_worker", "gpus_per_worker": "gpus_per_worker",
           "population": "population", "perturb_every": "perturb_every", "pack": "pack", "mlflow": "mlflow",
           "wandb": "wandb",
           "budget": "budget_requested", "budget_steps": "budget_steps_requested"}
CONFIRM_FLAGS = {"confirm": "top", "confirm_seeds": "seeds", "confirm_steps": "steps"}
FIXED_FLAGS = ("dataset", "image_size", "steps", "seed")
RESOURCE_FLAGS = {"workers_per_trial": "workers", "cpus_per_worker": "cpus_per_worker",
                  "gpus_per_worker": "gpus_per_worker"}  # flag -> its Resources field


def planned_info(plan: Plan) -> dict[str, Any]:
    """experiment.json's entries for the flags of PLANNED and CONFIRM_FLAGS, from `plan` (its
    defaults resolved: the startup trials, the confirmation's steps; perturb_every only for a population)."""
    info = {key: getattr(plan.resources, RESOURCE_FLAGS[dest]) if dest in RESOURCE_FLAGS else getattr(plan, dest)
            for dest, key in PLANNED.items()}
    if plan.startup_trials is None:
        info["startup_trials"] = startup_trials(plan.trials)
    if not plan.is_population:
        info["perturb_every"] = None
    info["confirm"] = {key: getattr(plan, dest) for dest, key in CONFIRM_FLAGS.items()}
    info["confirm"]["steps"] = plan.confirm_steps or plan.steps
    return info


def changed_on_resume(args: argparse.Namespace, given: frozenset[str], info: dict[str, Any]) -> list[str]:
    """The given flags whose values differ from the resumed experiment's, as 'FLAG VALUE (the
    experiment's: VALUE)'."""
    changed = []

    def differs(flag: str, value: Any, kept: Any) -> None:
        if value != kept:
            changed.append(f"{flag} {value} (the experiment's: {kept})")

    for dest, key in PLANNED.items():
        if dest in given:
            differs("--" + dest.replace("_", "-"), getattr(args, dest), info.get(key))
    for dest, key in CONFIRM_FLAGS.items():
        if dest in given:
            differs("--" + dest.replace("_", "-"), getattr(args, dest), (info.get("confirm") or {}).get(key))
    if given & {*FIXED_FLAGS, "overrides"}:
        fixed = _fixed_overrides(args)
        for key in [k for k in FIXED_FLAGS if k in given] + sorted(parse_overrides(args.overrides)):
            differs("--" + key.replace("_", "-") if key in FIXED_FLAGS else f"--set {key}", fixed[key],
                    info["fixed"].get(key))
    return changed


def _plan_resume(args: argparse.Namespace, experiment: Experiment, name: str, given: frozenset[str]) -> Plan:
    check_resumable(experiment, EXPERIMENT_JSON, args.storage, "experiment")
    info = experiment.meta
    if info.get("space") != args.space:
        raise SearchError(f"experiment '{name}' searched space '{info.get('space')}', not '{args.space}'; "
                          f"resume it with --space {info.get('space')}")
    changed = changed_on_resume(args, given, info)
    if changed:
        raise SearchError(f"--resume goes on with experiment '{name}' as it was planned, and these flags change it: "
                          f"{'; '.join(changed)}; drop them (a search with other settings is another --name)")
    fixed = info["fixed"]
    cfg = TrainConfig.from_dict(fixed)
    check_dataset(cfg, info["workers_per_trial"])
    check_trackers(info.get("mlflow"), info.get("wandb"))
    confirm = info.get("confirm") or {"top": 0, "seeds": 1, "steps": None}
    kept = {dest: info.get(key) for dest, key in PLANNED.items()}
    kept["sampler"] = kept["sampler"] or DEFAULT_SAMPLER
    kept["perturb_every"] = kept["perturb_every"] or DEFAULT_PERTURB_EVERY
    kept["pack"] = kept["pack"] or 1
    resources = Resources(**{field: kept.pop(dest) for dest, field in RESOURCE_FLAGS.items()})
    return Plan(name, info["space"], experiment, fixed, info["baseline_params"], steps=cfg.steps, seed=info["seed"],
                concurrency=args.concurrency, resources=resources, address=args.address or os.environ.get("RAY_ADDRESS"),
                resume=True, verbose=args.verbose, warm_start=tuple(info.get("warm_start") or ()),
                **{dest: confirm[key] for dest, key in CONFIRM_FLAGS.items()}, **kept)









