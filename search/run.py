"""`python -m search.run`: a Ray Tune search over a named space, each trial a Ray Train DDP job.

    python -m search.run --space ratio_lr                     # laptop defaults (PBT): 3.3 minutes on 2 cores
    python -m search.run --space full --dataset mnist --trials 64 --gpus-per-worker 0.25
    python -m search.run --space ratio_lr --name ratio_lr-1 --resume   # continue a killed search
    python -m search.run --space ratio_lr --dry-run           # the plan only: nothing started or written

From Python (a notebook): `from search import run_search; run_search(space="ratio_lr", trials=8)`,
the same options as keyword arguments (`run_from_python`).

The flags are checked first (search/plan.py), then the search runs (search/tuner.py). The
experiment directory (docs/experiment-layout.md) is written as results arrive; at the end
best_config.json holds the winner, which `python -m search.train --config .../best_config.json`
trains further.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional

from dcgan.config import ConfigError
from experiment import ExperimentError
from search.lock import DriverLock
from search.plan import (DEFAULT_CONFIRM, DEFAULT_CONFIRM_SEEDS, DEFAULT_IMAGE_SIZE, DEFAULT_PERTURB_EVERY,
                         DEFAULT_SCHEDULER, DEFAULT_STEPS, DEFAULT_STORAGE, DEFAULT_TRIALS, MIN_POPULATION,
                         SAMPLED_SCHEDULER, SCHEDULERS, SearchError, plan_search)
from search.sampling import DEFAULT_SAMPLER, SAMPLERS
from spaces import SPACES, describe


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m search.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--space", help="search space name (see --list-spaces)")
    p.add_argument("--list-spaces", action="store_true", help="print the known spaces and exit")
    p.add_argument("--dataset", default="digits", help="dataset name (default: digits, embedded)")
    p.add_argument("--trials", type=int, help=f"number of trials of a sampled search (default {DEFAULT_TRIALS}; "
                                              f"given without --scheduler: {SAMPLED_SCHEDULER})")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"generator updates per trial (default {DEFAULT_STEPS})")
    p.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE, help=f"(default {DEFAULT_IMAGE_SIZE})")
    p.add_argument("--concurrency", type=int, help="trials at once (default: as many as the cluster's resources fit)")
    p.add_argument("--scheduler", choices=SCHEDULERS,
                   help=f"pbt and pb2 train a population together, the members that fall behind going on from the "
                        f"leaders' weights with perturbed values; asha stops a sampled search's poor trials early, "
                        f"fifo runs them all to the end (default {DEFAULT_SCHEDULER}; {SAMPLED_SCHEDULER} with "
                        f"--trials, --sampler, --startup-trials or --warm-start)")
    p.add_argument("--population", type=int, help="pbt, pb2: members drawn from the space (default: the trials "
                                                   f"that run at once, at least {MIN_POPULATION}); the paper's "
                                                   "setting trains beside them, never perturbed")
    p.add_argument("--perturb-every", type=int,
                   help=f"pbt, pb2: evaluations between a member's exploits (default {DEFAULT_PERTURB_EVERY})")
    p.add_argument("--pack", type=int, metavar="K",
                   help="pbt: train up to K members as one model in one trial, each still a trial of the "
                        "experiment (fewer, wider kernels, for a GPU: default 16 with --gpus-per-worker, else 1, "
                        "off; docs/architecture.md)")
    p.add_argument("--budget", metavar="TIME", help="the whole search's wall time on the resources given (90s, "
                                                    "20m, 2h): the trials' steps and evaluations are planned from "
                                                    "step times measured at the start (docs/budget.md)")
    p.add_argument("--budget-steps", type=int, metavar="N", help="the budget in trial-steps (generator updates "
                                                                 "summed over the trials): the same N, the same plan")
    p.add_argument("--storage", default=DEFAULT_STORAGE, help="experiments root: a path or a URI such as s3://bucket/x")
    p.add_argument("--name", help="experiment name (default: <space>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the experiment --name (same --space)")
    p.add_argument("--address", help="Ray cluster address (default: $RAY_ADDRESS, else the Ray running on this "
                   "machine, else a new one; local: a new one)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler and of every trial (default 0)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="fix a TrainConfig field for every trial; repeatable")
    p.add_argument("--workers-per-trial", type=int, default=1, help="DDP workers per trial (default 1)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0, help="(default 1)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, help="fractions share a GPU (default 0)")
    p.add_argument("--sampler", choices=SAMPLERS,
                   help=f"Optuna sampler of a sampled search (default {DEFAULT_SAMPLER}; random for a baseline)")
    p.add_argument("--startup-trials", type=int, help="random trials before the sampler proposes (default: a quarter "
                                                      "of --trials, at least 2)")
    p.add_argument("--warm-start", action="append", metavar="FILE",
                   help="try this config right after the baseline: an earlier search's best_config.json (or any "
                        "config JSON; a path or a URI), its values of the parameters the space searches; "
                        "repeatable")
    p.add_argument("--confirm", type=int, default=DEFAULT_CONFIRM, metavar="K",
                   help=f"train the top K trials and the baseline again with other seeds, and name the winner by "
                        f"their mean FID (default {DEFAULT_CONFIRM}; 0: no confirmation)")
    p.add_argument("--confirm-seeds", type=int, default=DEFAULT_CONFIRM_SEEDS,
                   help=f"seeds of each confirmation (default {DEFAULT_CONFIRM_SEEDS})")
    p.add_argument("--confirm-steps", type=int, help="steps of each confirmation run (default: --steps)")
    p.add_argument("--mlflow", nargs="?", const="", metavar="URI",
                   help="an MLflow run per trial, in an MLflow experiment named after the search (docs/tracking.md); "
                        "a bare --mlflow takes $MLFLOW_TRACKING_URI; needs pip install -e '.[mlflow]'")
    p.add_argument("--wandb", metavar="PROJECT", help="a W&B run per trial in PROJECT (docs/tracking.md); needs "
                                                      "pip install -e '.[wandb]'")
    p.add_argument("--verbose", action="store_true", help="Ray's own output too: its INFO lines, its status "
                                                          "table, every worker's lines")
    p.add_argument("--dry-run", action="store_true", help="print the plan (space, budget, resources, storage, "
                                                          "estimated wall time) and exit: no Ray, no file written")
    return p


def given_flags(argv: Optional[list[str]]) -> frozenset[str]:
    """The flags (argparse dests) on the command line, not those left to their defaults."""
    parser = build_parser()
    for action in parser._actions:  # argparse's documented way to leave an absent flag out of the result
        action.default = argparse.SUPPRESS
    return frozenset(vars(parser.parse_args(argv)))


def main(argv: Optional[list[str]] = None) -> int:
    started = time.monotonic()  # a --budget counts from here
    args = build_parser().parse_args(argv)
    if args.list_spaces:
        for name in sorted(SPACES):
            print(f"{name:<10} {describe(name)}")
        return 0
    try:
        plan = plan_search(args, given_flags(argv))
        if args.dry_run or plan.budgeted:  # a budget too small is refused before Ray starts
            from search.dryrun import describe_plan

            words = describe_plan(plan)
    except (ConfigError, ExperimentError) as e:  # bad flags; an experiment to resume that is damaged
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        print(words)
        return 0
    from dcgan.train import EXIT_INTERRUPTED
    from search.tuner import run_search, search_resume_command

    try:
        with DriverLock(plan.experiment, "search.run"):  # one driver per experiment
            return run_search(plan, started=started)
    except (ConfigError, ExperimentError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C: out at once, as if killed
        print(f"\nquit; what Tune had saved goes on with:\n  {search_resume_command(plan)}", file=sys.stderr)
        return EXIT_INTERRUPTED


def argv_of(options: dict[str, Any]) -> list[str]:
    """The command line that keyword arguments stand for, flag by flag through build_parser():
    image_size=8 -> --image-size 8; verbose=True -> --verbose; a repeatable flag takes a list,
    and set= also a dict ({"ngf": 8} -> --set ngf=8); None or False leaves a flag to its default."""
    flags = {a.option_strings[0][2:].replace("-", "_"): a for a in build_parser()._actions if a.option_strings}
    flags.pop("h", None)
    argv: list[str] = []
    for key, value in options.items():
        if key not in flags:
            raise SearchError(f"run_search() has no option {key!r}; known: {', '.join(sorted(flags))}")
        action, flag = flags[key], flags[key].option_strings[0]
        if value is None or value is False:
            continue
        if action.nargs == 0:  # a switch
            argv.append(flag)
        elif isinstance(action, argparse._AppendAction):
            items = ([f"{k}={v}" for k, v in value.items()] if isinstance(value, dict)
                     else [value] if isinstance(value, str) else value)
            for item in items:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


def run_from_python(**options: Any):
    """`search.run_search`: the search the keyword arguments ask for (the CLI's options, see argv_of),
    run to its end; returns its experiment (experiment.load), or None for a dry run, whose plan is
    printed. Bad input raises SearchError (a ConfigError) naming the fix; a search stopped by
    Ctrl-C raises KeyboardInterrupt, after printing the command (or the resume=True call) that goes on."""
    started = time.monotonic()
    argv = argv_of(options)
    parser = build_parser()
    parser.exit_on_error = False
    try:
        args = parser.parse_args(argv)
    except argparse.ArgumentError as e:
        raise SearchError(str(e)) from None
    if args.list_spaces:
        raise SearchError("list_spaces: the spaces are spaces.SPACES (spaces.describe(name) says what each searches)")
    plan = plan_search(args, given_flags(argv))
    if args.dry_run:
        from search.dryrun import describe_plan

        print(describe_plan(plan))
        return None
    from dcgan.train import EXIT_INTERRUPTED
    from experiment import load
    from search.tuner import run_search

    if run_search(plan, started=started) == EXIT_INTERRUPTED:
        raise KeyboardInterrupt(f"search {plan.name} stopped; run_search(..., name={plan.name!r}, resume=True) "
                                "goes on with it")
    return load(plan.experiment.uri)


if __name__ == "__main__":
    sys.exit(main())
