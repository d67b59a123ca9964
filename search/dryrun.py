"""`search.run --dry-run`: the plan of a search, in words, before any GPU-hour is spent.

Everything here reads: the plan (search/plan.py has checked the flags), this machine's CPU and GPU
count for a local Ray, and the earlier experiments in the same storage to estimate the wall time.
No Ray is started and no file is written.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Optional

import pyarrow.fs as pafs

from dcgan.config import parse_duration
from experiment.layout import EXPERIMENT_JSON, Experiment, ExperimentError, join_uri, open_fs, parent_uri
from search.budget import EVALUATIONS, SEARCH_STEP_S, Rates, budgeted
from search.confirm import planned_runs
from search.console import duration, format_params
from search.plan import Plan
from search.sampling import startup_trials
from spaces import describe, get_space
from spaces import trial_config

# what must match for an earlier experiment's speed to say something about this one's
SAME_SHAPE = ("workers_per_trial", "cpus_per_worker", "gpus_per_worker", "concurrency")
NOT_SPEED = ("steps", "seed", "eval_every")  # fixed values that do not change a trial-step's time


def describe_plan(plan: Plan) -> str:
    """The plan as lines: the space and its parameters, trials, steps, the budget, resources,
    concurrency, storage, the experiment's path and the estimated wall time (or why there is none)."""
    concurrency, concurrency_note = planned_concurrency(plan)
    plan = plan.with_population(concurrency or 1)  # a population's size, from what runs at once
    concurrency = min(concurrency, plan.trials) if concurrency else concurrency
    plan, budget_words = budget_in_words(plan, concurrency) if plan.budgeted and not plan.resume else (plan, None)
    cfg = trial_config(plan.fixed, plan.baseline)
    runs, confirm_steps = planned_runs(plan)
    search_steps = plan.trials * plan.steps
    res = plan.resources
    lines = [
        f"dry run of search {plan.name}" + (" (resumed)" if plan.resume else "") + ": nothing started, nothing written",
        f"space       {plan.space}: {describe(plan.space)}",
        *(f"  {name:<14}{text}" for name, text in parameters(plan).items()),
        (f"trials      {plan.trials} of {plan.steps} steps on {cfg.dataset} {cfg.image_size}px, an evaluation every "
         f"{cfg.eval_every} steps" if budget_words is None or plan.budget_plan else
         f"trials      {plan.trials} on {cfg.dataset} {cfg.image_size}px, ngf=ndf={cfg.ngf}, their steps planned at "
         "the start") + f"; the baseline first ({format_params(plan.baseline)})"
        + (f", then {len(plan.warm_start)} warm start(s)" if plan.warm_start else ""),
        (f"population  {plan.population} members drawn at random from the space and the baseline beside them, "
         f"never perturbed; {plan.scheduler}: every {plan.perturb_every} evaluation(s) the bottom quarter goes on "
         "from a top member's checkpoint with perturbed values"
         + (f"; packs of at most {plan.pack}, each trained as one model in one trial (exploits within a pack)"
            if plan.pack > 1 else "") if plan.is_population else
         f"searcher    {plan.sampler}, after {plan.startup_trials or startup_trials(plan.trials)} random trials; "
         f"scheduler {plan.scheduler}" + (" (stops trials whose FID lags: fewer steps)" if plan.scheduler == "asha"
                                          else "")),
        "confirm     " + (f"the top {plan.confirm} and the baseline, {plan.confirm_seeds} new seed(s) each: at most "
                           f"{runs} runs of {confirm_steps} steps" if runs else "none (--confirm 0)"),
        budget_words or f"budget      at most {search_steps + runs * confirm_steps:,} trial-steps: {search_steps:,} in the "
                        "search" + (f" + {runs * confirm_steps:,} in the confirmation" if runs else ""),
        f"per trial   {res.workers} worker(s) x ({res.cpus_per_worker:g} CPU, {res.gpus_per_worker:g} GPU)",
        f"at once     {concurrency if concurrency else '?'} trial(s): {concurrency_note}",
        f"storage     {parent_uri(plan.experiment.uri)[0]}",
        f"experiment  {plan.experiment.uri}",
        f"wall time   {estimate_wall_time(plan, concurrency, search_steps + runs * confirm_steps)}"
        if not plan.budget else f"wall time   {plan.budget}, the budget (the report's own process after it)",
    ]
    return "\n".join(lines)


def budget_in_words(plan: Plan, concurrency: Optional[int]) -> tuple[Plan, str]:
    """(the plan with its budget spent where that can be known now, the budget's line): --budget-steps
    at once; a wall time at the speed of earlier experiments in the storage like this one, else in
    shares only (its steps are measured at the start)."""
    if plan.budget_steps is not None:
        plan = budgeted(plan, concurrency or 1)
        return plan, f"budget      {plan.budget_plan['summary']}"
    step_s, sources = earlier_rates(plan, concurrency)
    if step_s is not None:  # a step as the earlier search ran it; as a step timed alone (what `measure` gives)
        rates = Rates(max(0.0, step_s - SEARCH_STEP_S), 0.0, 0.0, 0.0)
        estimated = budgeted(plan, concurrency or 1, time.monotonic() + parse_duration(plan.budget), rates)
        return plan, (f"budget      {estimated.budget_plan['summary']}; estimated from "
                      f"{', '.join(sources[:3])}, measured again at the start")
    who = f"{plan.population} members and the control" if plan.is_population else f"{plan.trials} trials"
    return plan, (f"budget      {plan.budget}: trial-steps measured at the start (no earlier experiment here ran "
                  f"these trials), shared equally by {who}, {EVALUATIONS} evaluations each")


def earlier_rates(plan: Plan, concurrency: Optional[int]) -> tuple[Optional[float], list[str]]:
    """The median seconds per trial-step (evaluations included) of the trials of earlier experiments in
    the storage that ran these trials on the same resources at the same concurrency, and their names."""
    if concurrency is None:
        return None, []
    rates, sources = [], []
    for earlier in earlier_experiments(plan):
        meta = earlier.meta
        if any(meta.get(k) != v for k, v in _shape(plan, concurrency).items()) or not _same_trials(plan, meta):
            continue
        mine = [t.time_s / t.steps_reached for t in earlier.trials if t.time_s > 0 and t.steps_reached > 0]
        if mine:
            rates += mine
            sources.append(earlier.name)
    if not rates:
        return None, []
    return statistics.median(rates), sources


def parameters(plan: Plan) -> dict[str, str]:
    """Each parameter the space samples (on the baseline's path: a conditional one shows when the
    baseline takes its branch) and its distribution, as Optuna records it."""
    import optuna

    trial = optuna.trial.FixedTrial(plan.baseline)
    get_space(plan.space)(trial)
    out = {}
    for name, d in sorted(trial.distributions.items()):
        if isinstance(d, optuna.distributions.CategoricalDistribution):
            out[name] = "one of " + ", ".join(map(str, d.choices))
        else:
            kind = "log-uniform" if d.log else "integer" if isinstance(d, optuna.distributions.IntDistribution) \
                else "uniform"
            out[name] = f"{kind} in [{d.low:g}, {d.high:g}]"
    return out


def planned_concurrency(plan: Plan) -> tuple[Optional[int], str]:
    """(trials at once, where that number comes from); None where only the cluster knows."""
    cap = plan.trials if not plan.is_population else 1 << 30  # a population's size comes from this number
    if plan.concurrency:
        return min(plan.concurrency, cap), "--concurrency"
    if plan.address and plan.address != "local":
        return None, (f"as many as the cluster at {plan.address} fits, known once connected; pass --concurrency "
                      "to plan with a number")
    res = plan.resources
    fits = (os.cpu_count() or 1) // (res.workers * res.cpus_per_worker)
    gpus = ""
    if res.gpus_per_worker:
        import torch

        fits = min(fits, torch.cuda.device_count() // (res.workers * res.gpus_per_worker))
        gpus = f" and {torch.cuda.device_count()} GPU(s)"
    return max(1, int(min(fits, cap))), f"what a local Ray on this machine's {os.cpu_count()} CPUs{gpus} fits"


def estimate_wall_time(plan: Plan, concurrency: Optional[int], trial_steps: int) -> str:
    """The wall time at the seconds per trial-step of the earlier experiments in the same storage
    that ran the same trials on the same resources at the same concurrency; or why it cannot say."""
    if concurrency is None:
        return "cannot estimate: the number of trials at once is unknown (pass --concurrency)"
    rate, sources = earlier_rates(plan, concurrency)
    if rate is None:
        return ("cannot estimate: no earlier experiment in this storage ran these trials (same data, size and "
                "fixed values) on the same resources at the same concurrency; the first one measures it")
    return (f"about {duration(rate * trial_steps / concurrency)} at most: {trial_steps:,} trial-steps, {concurrency} "
            f"at a time, at {rate:.3g} s a trial-step (the median of the trials of "
            f"{', '.join(sources[:3])}{', ...' if len(sources) > 3 else ''}); ASHA's early stops make it shorter, "
            "starting Ray and each trial's process longer")


def earlier_experiments(plan: Plan) -> list[Experiment]:
    """The experiments in the plan's storage (its own, on --resume), read only."""
    storage, _ = parent_uri(plan.experiment.uri)
    try:
        fs, root = open_fs(storage)
        infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    except (OSError, ValueError):
        return []
    out = []
    for info in sorted(infos, key=lambda i: i.base_name):
        if info.type != pafs.FileType.Directory:
            continue
        exp = Experiment(join_uri(storage, info.base_name))
        try:
            if exp.exists(EXPERIMENT_JSON) and exp.meta:
                out.append(exp)
        except (ExperimentError, OSError, ValueError):
            continue
    return out


def _shape(plan: Plan, concurrency: int) -> dict:
    res = plan.resources
    return dict(zip(SAME_SHAPE, (res.workers, res.cpus_per_worker, res.gpus_per_worker, concurrency)))


def _same_trials(plan: Plan, meta: dict) -> bool:
    fixed = meta.get("fixed") or {}
    keep = lambda d: {k: v for k, v in d.items() if k not in NOT_SPEED}  # noqa: E731
    return meta.get("space") == plan.space and keep(fixed) == keep(plan.fixed)
