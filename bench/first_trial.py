"""First trials: how soon a fixed start reaches the paper baseline's FID, the figure issue #9's target needs.

search_efficiency.py counts the trial-steps a search spends before some trial (not the baseline)
first reaches the baseline's FID with a verdict that is not `collapsed` or `not_learned`. Random
search needs 600 of them on digits and 1,000 on MNIST (README), so the target, a third of that,
needs the search's first proposed trial to count at its very first evaluation (200 steps on digits,
125 on MNIST: the baseline runs beside it and its steps count too). No sampler can know where that
is before it has seen a trial, so only a fixed start, a prior, could. This script trains candidate
starts, and the baseline for the bar, exactly as a trial of the bench's search would be trained
(search.run's trial config for the bench's flags; no Ray), and prints each one's FID and verdict at
every evaluation and the first step at which it counts.

    python bench/first_trial.py [--seeds 2 --first-seed 10] [--datasets digits mnist]
        [--start lr_g=3e-3,lr_d=1e-4,d_steps_per_g=2 ...]

Seeds 10 and up by default: not the seeds search_efficiency.py scores (0-2). Two trainings at a
time on 2 processes, one thread each: 483 s for the default starts on 2 cores (measured).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from dcgan import keys
from search.console import format_params
from search_efficiency import COMMON, DATASETS, beats  # the bench's trials and rule (bench/: the script's folder)

# The space's centre (geometric middle of ratio_lr's bounds, 1:1), then faster learners like those that
# counted at their first evaluation in the bench's MNIST searches (lr_g 4e-3 to 1e-2, lr_d 1e-4 to 3e-4).
DEFAULT_STARTS = (
    "lr_g=1e-3,lr_d=1e-4,d_steps_per_g=1", "lr_g=3e-3,lr_d=1e-4,d_steps_per_g=1",
    "lr_g=3e-3,lr_d=1e-4,d_steps_per_g=2", "lr_g=5e-3,lr_d=2e-4,d_steps_per_g=2",
    "lr_g=1e-2,lr_d=1e-4,d_steps_per_g=1", "lr_g=3e-3,lr_d=3e-4,d_steps_per_g=1",
    "lr_g=5e-3,lr_d=1e-4,d_steps_per_g=3",
)
SPACE = "ratio_lr"


def trial_configs(dataset: str, seed: int, starts: list[dict[str, Any]]):
    """The baseline's TrainConfig and each start's, as search.run builds them for the bench's flags."""
    from search.plan import plan_search
    from search.run import build_parser
    from spaces import trial_config

    flags, steps, _ = DATASETS[dataset]
    with tempfile.TemporaryDirectory() as storage:
        plan = plan_search(build_parser().parse_args([*flags, *COMMON, "--space", SPACE, "--steps", str(steps),
                                                      "--seed", str(seed), "--storage", storage]))
    return [(p, trial_config(plan.fixed, p)) for p in (plan.baseline, *starts)]


def train_one(cfg) -> list[tuple[int, float, str]]:
    """(step, FID, verdict) at each evaluation of one training (as reported: nothing written to disk)."""
    import torch

    torch.set_num_threads(1)
    from dcgan.train import train

    seen = []
    train(cfg, None, report=lambda metrics, _: seen.append(metrics), evaluator="auto", log=lambda *_: None)
    return [(m[keys.STEP], m[keys.FID], m.get(keys.COLLAPSE)) for m in seen if keys.FID in m]


def parse_start(text: str) -> dict[str, Any]:
    """`lr_g=X,lr_d=Y,d_steps_per_g=K` as the space's parameters; ConfigError if it is not in the space."""
    from dcgan.config import ConfigError, TrainConfig, parse_overrides
    from spaces import fixed_params, get_space

    given = parse_overrides(text.split(","))
    typed = TrainConfig.from_dict(given).to_dict()  # strings to the fields' types; unknown keys refused
    params = fixed_params(get_space(SPACE), {k: typed[k] for k in given})
    if set(given) != set(params):
        raise ConfigError(f"space '{SPACE}' searches {', '.join(sorted(params))}; a start gives exactly those")
    return params


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "mnist"], choices=sorted(DATASETS))
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=10)
    p.add_argument("--start", action="append", metavar="lr_g=X,lr_d=Y,d_steps_per_g=K",
                   help=f"a start to train (repeatable; default: {len(DEFAULT_STARTS)} starts, see the source)")
    args = p.parse_args()
    try:
        starts = [parse_start(s) for s in args.start or DEFAULT_STARTS]
    except ValueError as e:  # ConfigError is one
        p.error(f"--start: {e}")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    t0 = time.time()
    with ProcessPoolExecutor(2) as pool:
        jobs, labels = [], []
        for dataset in args.datasets:
            for seed in seeds:
                for i, (params, cfg) in enumerate(trial_configs(dataset, seed, starts)):
                    jobs.append(cfg)
                    labels.append((dataset, seed, i, params))
        evals = dict(zip(((d, s, i) for d, s, i, _ in labels), pool.map(train_one, jobs)))
    print(f"first trials: {len(jobs)} trainings in {time.time() - t0:.0f} s\n")
    names = {i: ("baseline" if i == 0 else "start") + f" {format_params(params)}" for _, _, i, params in labels}
    for dataset in args.datasets:
        bars = {s: evals[(dataset, s, 0)][-1][1] for s in seeds}  # the baseline's FID at the full steps
        print(f"{dataset}: the bar (the baseline's FID at its last step) "
              + ", ".join(f"seed {s} {bars[s]:.1f}" for s in seeds))
        for i in sorted({i for d, _, i, _ in labels if d == dataset}):
            for s in seeds:
                row = evals[(dataset, s, i)]
                first = next((step for step, fid, verdict in row if beats(fid, verdict, bars[s])), None)
                trace = "  ".join(f"{step}:{fid if fid is None else round(fid)}" + ("" if v in (None, keys.OK) else f"/{v}") for step, fid, v in row)
                print(f"  {names[i]:<46} seed {s}  counts at {first or 'never':>5}  |  {trace}")
        print()


if __name__ == "__main__":
    main()
