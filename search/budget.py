"""A budget in, a plan out: `search.run --budget 20m` (a wall time) or `--budget-steps N` (trial-steps).

A budget in steps is split at once (`split`); a wall time is converted to steps once, when Ray is up,
from step and evaluation times measured at the start (`measure`: one short Ray task per trial slot,
with a trial's resources, all at once, so that they contend as the trials will), and then split the
same way. experiment.json keeps what it became (`budget`): `--budget-steps` with its steps plans the
same search again, and `--resume` trains the steps that are left.

The split (the rules, and what each stands on, in docs/budget.md):

- PBT or PB2 over the whole budget, the paper's setting among the members as the control: every trial
  trains the same steps, so the winner and the control end at the same step and the user is handed
  whichever is better there (experiment.winner). No confirmation unless asked for (`--confirm K`,
  paid from the budget): its runs train nothing the user keeps.
- The population: `--population`, else the trials that run at once less the control, at least
  MIN_BUDGET_POPULATION (`budget_population`).
- Each trial's steps: the budget's trial-steps shared equally; `eval_every` (the perturbation interval)
  a fraction of them: EVALUATIONS evaluations a trial, fewer where a trial is short (at least
  MIN_EVAL_EVERY steps between two).
- The width: the search's own (LAPTOP_FIXED, ngf=ndf=32) on a CPU, where a step's cost grows with it;
  the paper's (64) on a GPU, where a step of a net this small is bound by kernel launches and the
  width costs almost nothing (`--set ngf=...` decides instead).
- A sampled search (asha, fifo): `--trials` trials, each the budget's steps over them.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from dcgan.config import ConfigError, TrainConfig, parse_duration

MIN_BUDGET_POPULATION = 3  # PBT's bottom quarter is then one member, and 2 slots run the 4 trials in 2 rounds
MIN_BUDGET_S = 30  # a wall time under this cannot hold Ray's start and one evaluation of each trial
EVALUATIONS = 8  # evaluations a trial: PBT perturbs at each, and each costs a FID (budget.md)
MIN_EVALUATIONS = 2  # fewer, and a member is exploited at most once
MIN_EVAL_EVERY = 50  # steps between two evaluations, at least, where the budget allows
GPU_WIDTH = 64  # ngf = ndf on a GPU: the paper's
# What a wall time pays besides the trials' steps and evaluations: each trial's restart at every
# perturbation step (PBT pauses every member there; the trial's own set-up, as a reused Tune actor
# does it again, is measured, `Rates.start_s`, and Tune's pause, checkpoint and restore add RESTART_S:
# 2.0-2.8 s a member and round in 120 s searches at 8 px), and the end (ranking, best_config.json,
# the report). Both measured on the 2-core development machine (docs/budget.md).
RESTART_S = 2.5
END_S = 8.0
# A step in the search costs more than the same step timed alone: Tune's driver, its reports and the
# raylet share the cores, and a trial restarted in a new Tune actor sets up cold. On 2 cores with 2
# trials at once at 8 px, 0.6 ms a step more on average (4.1-6.5 ms timed, 5.7-7.3 in the trials,
# four 120 s searches); at 28 px (58 ms a step) within the timing's own noise (docs/budget.md).
SEARCH_STEP_S = 0.001
# The trials are planned to fill this share of the time they are left: Tune's start and the model's
# own error (the model put the trials of four 120 s searches at 0.94-1.21 of their time on the
# 2-core development machine, docs/budget.md), and a budget is a limit, not a target.
PLANNED_SHARE = 0.9
FEW_STEPS_SHARE = 0.25  # a trial's steps under this share of one run alone's: the plan warns (`warning`)
WARMUP_STEPS = 3  # untimed steps first, per D:G ratio: the first calls allocate
MEASURE_STEPS = 8  # steps a timed run, per D:G ratio
MEASURE_CHUNKS = 5  # timed runs, per D:G ratio, at least: the median is taken
MEASURE_MIN_S = 1.0  # seconds of timed runs, per D:G ratio, at least


class BudgetError(ConfigError):
    """A budget that cannot be planned; the message names the fix."""


@dataclass(frozen=True)
class Split:
    """How a budget of trial-steps is spent."""

    trials: int  # the search's trials (a population: its members and the control)
    steps: int  # each trial's generator updates
    eval_every: int  # steps between evaluations (PBT: between perturbations)
    confirm_runs: int = 0  # confirmation runs of `steps` each, paid from the budget

    @property
    def trial_steps(self) -> int:
        return (self.trials + self.confirm_runs) * self.steps


def split(budget_steps: int, trials: int, confirm_runs: int = 0) -> Split:
    """`budget_steps` shared by `trials` trials and `confirm_runs` confirmation runs, each evaluated
    EVALUATIONS times (fewer where that would leave under MIN_EVAL_EVERY steps between two, at least
    MIN_EVALUATIONS); BudgetError where a trial would not reach MIN_EVALUATIONS evaluations."""
    share = budget_steps // (trials + confirm_runs)
    evaluations = max(MIN_EVALUATIONS, min(EVALUATIONS, share // MIN_EVAL_EVERY))
    eval_every = share // evaluations
    if eval_every < 1:
        need = (trials + confirm_runs) * MIN_EVALUATIONS
        raise BudgetError(f"a budget of {budget_steps:,} trial-steps leaves each of {trials + confirm_runs} trials "
                          f"{share} step{'' if share == 1 else 's'}, too few for {MIN_EVALUATIONS} evaluations; give {need:,} or more "
                          "(or fewer trials)")
    return Split(trials, eval_every * evaluations, eval_every, confirm_runs)


def budget_population(concurrency: int) -> int:
    """A budget's population when --population is not given: the members that run at once beside the
    control, at least MIN_BUDGET_POPULATION. Every member more is a share less of the budget for
    each (docs/budget.md: on 2 cores the trials together train no faster than one run alone)."""
    return max(MIN_BUDGET_POPULATION, concurrency - 1)


def width_for(gpus_per_worker: float) -> Optional[int]:
    """ngf = ndf for the hardware: the paper's on a GPU; None (the search's own) on a CPU."""
    return GPU_WIDTH if gpus_per_worker > 0 else None


# --- a wall time into steps ------------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    """Seconds a trial spends, measured with `concurrency` trials at once: a generator update by D:G
    ratio (a D update more each step costs `per_d_step`), an evaluation, and a (re)start."""

    step_s: float  # a generator update at one D update per G update
    per_d_step: float  # each further D update per G update
    eval_s: float
    measured_s: float  # what the measurement cost
    start_s: float = 0.0  # a trial's set-up: its data, its evaluator, its networks

    @property
    def restart_s(self) -> float:
        return self.start_s + RESTART_S

    def at_ratio(self, d_steps_per_g: int) -> float:
        """Seconds a generator update takes in the search at this D:G ratio."""
        return self.step_s + (d_steps_per_g - 1) * self.per_d_step + SEARCH_STEP_S

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 5) for k, v in self.__dict__.items()}


def wall_time(s: Split, ratios: list[int], rates: Rates, concurrency: int, synchronous: bool) -> float:
    """Seconds the trials of `s` take on `concurrency` slots: each trial a job of its steps at its
    D:G ratio (`ratios`, one per trial, repeated for the confirmation), its evaluations and its
    restarts. A synchronous population waits for its slowest at every perturbation step: a
    schedule per round; a sampled search one schedule of whole trials."""
    evaluations = s.steps // s.eval_every
    if synchronous:
        round_jobs = [s.eval_every * rates.at_ratio(r) + rates.eval_s + rates.restart_s for r in ratios]
        trials = evaluations * _makespan(round_jobs, concurrency)
    else:
        trials = _makespan([s.steps * rates.at_ratio(r) + evaluations * rates.eval_s + rates.restart_s for r in ratios],
                           concurrency)
    confirm = _makespan([s.steps * rates.at_ratio(r) + evaluations * rates.eval_s + rates.restart_s
                         for r in ratios[:s.confirm_runs]], concurrency) if s.confirm_runs else 0.0
    return trials + confirm


def _makespan(jobs: list[float], slots: int) -> float:
    """When the last of `jobs` ends, each started in order on the first free slot (as Tune does)."""
    free = [0.0] * max(1, slots)
    for job in jobs:
        i = free.index(min(free))
        free[i] += job
    return max(free)


def steps_for(seconds: float, plan_split, ratios_of, rates: Rates, concurrency: int, synchronous: bool) -> int:
    """The most trial-steps whose split (`plan_split(steps) -> Split`) the trials (their D:G ratios:
    `ratios_of(split)`) spend in `seconds` at `rates`; BudgetError if not even the smallest fits."""
    def fits(n: int) -> bool:
        try:
            s = plan_split(n)
        except BudgetError:
            return False
        return wall_time(s, ratios_of(s), rates, concurrency, synchronous) <= seconds

    low = 1
    while low < 10**12 and not _splits(plan_split, low):  # the least budget that splits at all
        low *= 2
    if not fits(low):
        raise BudgetError(f"the budget leaves {seconds:.0f} s for the trials, too little for one evaluation of "
                          f"each at the speed measured ({rates.step_s * 1000:.0f} ms a step, {rates.eval_s:.1f} s "
                          "an evaluation); give a longer --budget")
    high = low * 2
    while fits(high) and high < 10**12:  # doubling, then bisection: the wall time grows with the steps
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def _splits(plan_split, n: int) -> bool:
    try:
        plan_split(n)
    except BudgetError:
        return False
    return True


def measure(cfg: TrainConfig, resources, concurrency: int) -> Rates:
    """Rates of `cfg` (the control's config) timed in `concurrency` Ray tasks at once, each with a
    trial's resources: updates at 1 and at 2 D updates per G update (`_time_steps`), and an evaluation."""
    import ray

    task = ray.remote(_time_steps).options(num_cpus=resources.cpus_per_worker, num_gpus=resources.gpus_per_worker)
    t0 = time.monotonic()
    timings = ray.get([task.remote(cfg.to_dict()) for _ in range(max(1, concurrency))])
    step1, step2, eval_s, start_s = (max(t[i] for t in timings) for i in range(4))  # the slowest slot sets the pace
    return Rates(step1, max(0.0, step2 - step1), eval_s, time.monotonic() - t0, start_s)


def _time_steps(config: dict[str, Any]) -> tuple[float, float, float, float]:
    """In a Ray task: seconds per update at D:G 1 and 2, one evaluation's and the set-up's seconds, of
    `config`. Each update's time is the median of timed runs of MEASURE_STEPS (MEASURE_CHUNKS runs
    and MEASURE_MIN_S at least): the measurement runs as Ray starts, whose own processes take the
    cores for moments. The set-up is timed a second time in the process, as a restart in a reused
    Tune actor does it (the first pays the imports and the first data load once)."""
    from dcgan.data import load_splits
    from dcgan.distributed import check_device
    from dcgan.metrics import build_evaluator
    from dcgan.state import setup
    from dcgan.train import fixed_grid_noise, evaluate_and_save, train_step

    cfg = TrainConfig.from_dict(config)

    def set_up():
        splits = load_splits(cfg)
        evaluator = build_evaluator(splits, check_device(cfg), cfg.eval_samples, seed=cfg.seed)  # the classifier cached
        return splits, evaluator, setup(cfg, splits)

    set_up()
    started = time.perf_counter()
    splits, evaluator, own = set_up()
    start_s = time.perf_counter() - started
    out = []
    for ratio in (1, 2):
        gan = own if ratio == cfg.d_steps_per_g else setup(cfg.replace(d_steps_per_g=ratio), splits)
        for _ in range(WARMUP_STEPS):  # first calls allocate
            train_step(gan)
        chunks: list[float] = []
        while len(chunks) < MEASURE_CHUNKS or sum(chunks) * MEASURE_STEPS < MEASURE_MIN_S:
            _sync(gan.device)
            t0 = time.perf_counter()
            for _ in range(MEASURE_STEPS):
                train_step(gan)
            _sync(gan.device)
            chunks.append((time.perf_counter() - t0) / MEASURE_STEPS)
        out.append(statistics.median(chunks))
    with tempfile.TemporaryDirectory() as out_dir:  # an evaluation as a trial's: scored, its grid and checkpoint
        t0 = time.perf_counter()
        evaluate_and_save(gan, Path(out_dir), evaluator, fixed_grid_noise(cfg), "running", None)
        return out[0], out[1], time.perf_counter() - t0, start_s


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def budgeted(plan, concurrency: int, deadline: Optional[float] = None, rates: Optional[Rates] = None):
    """`plan` (search.plan.Plan, its population known) with its budget spent: each trial's steps and
    evaluations, the budget's record for experiment.json (`budget_plan`). A wall time is converted with
    `rates` (measured now in Ray if None) into the steps that fit before `deadline` (time.monotonic()),
    END_S kept for the end."""
    from search.sampling import random_draws
    from spaces import get_space, trial_config

    control = trial_config(plan.fixed, plan.baseline)
    confirm_runs = (plan.confirm + 1) * plan.confirm_seeds if plan.confirm else 0
    draws, _ = random_draws(get_space(plan.space), plan.trials - 1, plan.seed)  # a population's members
    ratios = [control.d_steps_per_g, *(d.get("d_steps_per_g", control.d_steps_per_g) for d in draws)]
    slots = min(concurrency, plan.trials)
    record: dict[str, Any] = {"seconds": None, "source": "--budget-steps", "rates": None, "alone_steps": None}
    if plan.budget_steps is not None:
        steps = plan.budget_steps
    else:
        record["seconds"] = parse_duration(plan.budget)
        rates = rates or measure(control, plan.resources, slots)
        left = deadline - time.monotonic() - END_S
        # what the paper's setting trained alone would reach: at least a slot's measured speed
        record |= {"rates": rates.to_dict(), "source": f"measured at the start in {rates.measured_s:.0f} s",
                   "alone_steps": int(max(0.0, left) / rates.step_s)}
        steps = steps_for(left * PLANNED_SHARE, lambda n: split(n, plan.trials, confirm_runs), lambda s: ratios, rates,
                          slots, synchronous=plan.is_population)
    s = split(steps, plan.trials, confirm_runs)
    record |= {"steps": steps, "trials": s.trials, "trial_steps": s.steps, "eval_every": s.eval_every, "ratios": ratios,
               "confirm_runs": s.confirm_runs, "spent": s.trial_steps,
               "summary": describe(record["seconds"], steps, s, plan.population, record["source"], record["alone_steps"])}
    fixed = {**plan.fixed, "steps": s.steps, "eval_every": s.eval_every}
    return dataclasses.replace(plan, fixed=fixed, steps=s.steps, budget_plan=record)


def warning(record: dict[str, Any]) -> Optional[str]:
    """A line for a wall time too small for a search on these resources: each trial trains under
    FEW_STEPS_SHARE of the steps one run alone would (docs/budget.md: there the paper's setting trained
    alone ended better in most runs, and at 28 px no member learned); None otherwise."""
    alone, steps = record.get("alone_steps"), record["trial_steps"]
    if not alone or steps >= FEW_STEPS_SHARE * alone:
        return None
    return (f"warning: each trial trains {steps:,} steps, {steps / alone:.0%} of the {alone:,} or more that one run "
            f"alone would in this time; at such budgets the paper's setting trained alone (python -m dcgan.train "
            f"--budget {record['seconds']:g}s) did better (docs/budget.md)")


def describe(seconds: Optional[float], steps: int, s: Split, population: Optional[int], source: str,
             alone_steps: Optional[int] = None) -> str:
    """One line: what the budget became and how it is spent (and, for a wall time, how many steps one
    run alone would train in it: on a small machine, far more than a trial does; docs/budget.md)."""
    given = f"{seconds:g} s, {steps:,} trial-steps ({source})" if seconds else f"{steps:,} trial-steps"
    who = f"{population} members and the control" if population else f"{s.trials} trials"
    confirm = f", then {s.confirm_runs} confirmation runs" if s.confirm_runs else ""
    alone = f"; one run alone would train at least {alone_steps:,} steps in this time" if alone_steps else ""
    return (f"{given}: {who} of {s.steps:,} steps each{confirm}, an evaluation every {s.eval_every} "
            f"({s.trial_steps:,} trial-steps spent){alone}")
