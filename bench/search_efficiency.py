"""Search efficiency: the best FID each search strategy reaches for the trial-steps it spends.

Strategies, each run as a real search (search.run's own code, 2 trials at a time) with the same
budget of trial-steps (generator steps summed over trials, the baseline trial's included):

    random      random sampling, FIFO (every trial runs to the end)
    random_before  random sampling, FIFO, over the space as it was (both learning rates in [1e-5, 1e-2]):
                what the bounds alone buy (not run by default)
    before      TPE + ASHA as the search was before: Optuna's 10 random start-up trials, both learning
                rates in [1e-5, 1e-2], and a trial stopped by ASHA told to Optuna as a finished one
    tpe         search.run's sampled search (TPE, the space's bounds, ASHA's pruning), with the start-up
                a search of the budget's trials gets (a quarter of them, at least 2); search.run's
                default before PBT (named `default` in the CSVs of that time, read as `tpe`)
    gp          tpe with Optuna's GPSampler (not run by default: measured, not better; README)
    warm        tpe with --warm-start: an earlier search's winner tried right after the baseline
                (not run by default; --warm-start DATASET=FILE names the file for each dataset, best
                a search's on other data, else the prior was measured on the data it is scored on)
    pbt, pb2    population-based training (pbt: search.run's default): a population of the budget's
                trials less one, and the paper's setting beside it as the control, each trained for
                the trial steps (the same budget)

A second measure is what the user ends with: after each search, its winner (best_config.json) trained
on at equal total compute (search and long run, in trial-steps: the budget and LONG_RUN x the trial steps),
two ways where the strategy allows both: `retrained` from scratch for LONG_RUN x the trial steps (the user's
path before --continue), and `continued` from the winner's checkpoint (--continue, step 4 of the user's path
today) for what the total compute leaves after the trial-steps the search spent. A population's winner is
only continued. Against them the paper's default trained from scratch for that whole compute. Printed as
a second table, and written to user_generator.csv (a column says which long run).

Data: digits at 16 px (the laptop search's model, ngf=ndf=32, and its digits default, augment=translation,
for every strategy alike) and the MNIST test set from
../shared/data/mnist at 28 px; --seeds seeds each. `mnist32` (not run by default) is issue #9's
MNIST setting, 32 px and 1,500 steps, where the paper default learns within a trial: about 4 minutes
a seed for three strategies on an H100 with 4 trials at a time (not run on this CPU). Every search starts with the paper's setting
(the baseline); its FID at the full steps is the bar, and the baseline's own results are left out
of the best-so-far. Prints, per dataset and strategy, the median (min-max over seeds) trial-steps to
reach the baseline's FID and to reach random search's median final FID, and the best FID at the end;
writes a CSV of the best-so-far curves and a plotly HTML after each search.

    python bench/search_efficiency.py [--seeds 3] [--out bench-results] [--datasets digits mnist]
    python bench/search_efficiency.py --strategies tpe --reuse bench-results/search_efficiency.csv
    python bench/search_efficiency.py --show bench-results/search_efficiency.csv
    python bench/search_efficiency.py --show run1/search_efficiency.csv run2/search_efficiency.csv --out merged
    python bench/search_efficiency.py --datasets mnist32 --concurrency 4 --gpus-per-trial 0.25  # a GPU
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple, Optional

from ray.tune import Callback
from ray.tune.search.optuna import OptunaSearch
from ray.tune.stopper import Stopper

from dcgan import keys
from experiment.schema import is_finite, same_params
from search.console import format_params
from search.sampling import startup_trials
from spaces import baseline_params, get_space, ratio_and_rates, register_space

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
DATASETS = {  # name -> (search.run flags, trial steps, trials' worth of budget)
    "digits": (["--dataset", "digits", "--image-size", "16"], 800, 8),
    "mnist": (["--dataset", f"idx:{MNIST}", "--image-size", "28"], 500, 8),
    # not run by default (too long for this machine's hour): issue #9's MNIST setting, where the paper
    # default learns within a trial (its FID is a bar most trials do not pass at once)
    "mnist32": (["--dataset", f"idx:{MNIST}", "--image-size", "32"], 1500, 8),
}
DEFAULT_DATASETS = ("digits", "mnist")
COMMON = ["--set", "ngf=32", "--set", "ndf=32", "--set", "eval_samples=1000", "--confirm", "0"]


@register_space("ratio_lr_before")
def ratio_lr_before(trial) -> dict[str, Any]:
    """ratio_lr as it was: D updates per G update in {1,2,3,5}; lr_g and lr_d in [1e-5, 1e-2]."""
    return ratio_and_rates(trial, lr_g=(1e-5, 1e-2), lr_d=(1e-5, 1e-2))


class SearchAsBefore(OptunaSearch):
    """Ray's OptunaSearch as the search used it: a stopped trial is told COMPLETE with its last FID."""

    def __init__(self, *args, steps: Optional[int] = None, **kwargs):
        super().__init__(*args, **kwargs)


class Strategy(NamedTuple):
    flags: list[str]  # search.run's flags
    searcher: Optional[type]  # the searcher class; None: search.run's own
    colour: str  # its line in the plot


STRATEGIES = {
    "random": Strategy(["--space", "ratio_lr", "--sampler", "random", "--scheduler", "fifo"], None, "#7f7f7f"),
    "random_before": Strategy(["--space", "ratio_lr_before", "--sampler", "random", "--scheduler", "fifo"], None,
                              "#8c564b"),
    "before": Strategy(["--space", "ratio_lr_before", "--sampler", "tpe", "--startup-trials", "10", "--scheduler", "asha"],
                       SearchAsBefore, "#ff7f0e"),
    "tpe": Strategy(["--space", "ratio_lr", "--sampler", "tpe", "--scheduler", "asha"], None, "#1f77b4"),
    "gp": Strategy(["--space", "ratio_lr", "--sampler", "gp", "--scheduler", "asha"], None, "#2ca02c"),  # a candidate
    "warm": Strategy(["--space", "ratio_lr", "--scheduler", "asha"], None, "#9467bd"),  # not run by default: needs --warm-start DATASET=FILE
    "pbt": Strategy(["--space", "ratio_lr", "--scheduler", "pbt"], None, "#d62728"),
    "pb2": Strategy(["--space", "ratio_lr", "--scheduler", "pb2"], None, "#e377c2"),
}
POPULATION = ("pbt", "pb2")  # the strategies whose winner is continued, not retrained
RETRAINED, CONTINUED = "retrained", "continued"  # the user's long run: from step 0, or from the winner's checkpoint
DEFAULT_STRATEGIES = ("random", "tpe", "pbt", "pb2")
RENAMED = {"default": "tpe"}  # a strategy's name in CSVs of an earlier run -> its name now (strategy_of)
LONG_RUN = 3  # the user's long run: this many times the trial steps


class Budget(Stopper):
    """Stops the whole search once its trials have spent `steps` generator steps in all."""

    def __init__(self, steps: int):
        self.steps, self.spent = steps, {}

    def __call__(self, trial_id: str, result: dict) -> bool:
        self.spent[trial_id] = max(self.spent.get(trial_id, 0), int(result.get(keys.STEP, 0)))
        return False

    def stop_all(self) -> bool:
        return sum(self.spent.values()) >= self.steps


class Recorder(Callback):
    """Every evaluation, in the order the driver received them, with the trial-steps spent so far."""

    def __init__(self):
        self.rows, self.steps_of = [], {}

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.steps_of[trial.trial_id] = int(result.get(keys.STEP, 0))
        self.rows.append({"trial": trial.trial_id, "step": int(result.get(keys.STEP, 0)),
                          "fid": result.get(keys.FID), "verdict": result.get(keys.COLLAPSE),
                          "spent": sum(self.steps_of.values()), "params": dict(trial.config)})


def run_one(strategy: str, dataset: str, seed: int, storage: str, resources: list[str],
            warm: Optional[dict[str, str]] = None) -> list[dict]:
    from dcgan.train import EXIT_INTERRUPTED
    from search.plan import plan_search
    from search.run import build_parser
    from search.tuner import Extra, run_search

    flags, steps, n = DATASETS[dataset]
    strategy_flags, searcher_cls = STRATEGIES[strategy].flags, STRATEGIES[strategy].searcher
    budget = n * steps
    trials = n if "fifo" in strategy_flags else 4 * n  # ASHA's trials stop early: the budget ends the search
    if strategy in POPULATION:  # n - 1 members and the control: the budget, each member to the trial steps
        strategy_flags = [*strategy_flags, "--population", str(n - 1)]
    elif "--startup-trials" not in strategy_flags:  # the start-up of a search of the budget's n trials, as
        strategy_flags = [*strategy_flags, "--startup-trials", str(startup_trials(n))]  # a user would run it
    if strategy == "warm":
        strategy_flags = [*strategy_flags, "--warm-start", (warm or {})[dataset]]
    trials_flag = [] if strategy in POPULATION else ["--trials", str(trials)]
    args = build_parser().parse_args([*flags, *COMMON, *resources, *strategy_flags, *trials_flag, "--steps", str(steps),
                                      "--seed", str(seed), "--storage", storage, "--name", f"{dataset}-{strategy}-{seed}"])
    recorder = Recorder()
    stopper = None if strategy in POPULATION else Budget(budget)  # a population's members are the budget
    if run_search(plan_search(args), Extra(callbacks=(recorder,), stopper=stopper,
                                           searcher_cls=searcher_cls)) == EXIT_INTERRUPTED:
        raise SystemExit(f"stopped by Ctrl-C in {args.name}, which is left out: the CSV holds the searches that ended")
    return recorder.rows


def total_compute(dataset: str) -> int:
    """Trial-steps a user spends in all: the search's budget and a long run of LONG_RUN x the trial steps."""
    _, steps, n = DATASETS[dataset]
    return n * steps + LONG_RUN * steps


def long_runs(strategy: str) -> tuple[str, ...]:
    """How the user's long run may start for a strategy's winner: a population's only continues."""
    return (CONTINUED,) if strategy in POPULATION else (RETRAINED, CONTINUED)


def user_generator(dataset: str, experiment: Path, spent: int, how: str) -> Optional[float]:
    """The FID of the generator the user ends with: the winner retrained from scratch for LONG_RUN x the
    trial steps, or continued from its checkpoint for what the total compute leaves after the `spent`
    trial-steps of the search. None if the search named no winner."""
    from dcgan.checkpoint import continued_checkpoint, read_state
    from dcgan.config import TrainConfig
    from dcgan.train import train

    best_file = experiment / "best_config.json"
    if not best_file.exists():
        return None
    _, steps, _ = DATASETS[dataset]
    start, length = None, LONG_RUN * steps
    if how == CONTINUED:  # from the checkpoint's step, for the compute the search left (at least one evaluation's)
        start = continued_checkpoint(best_file, math.inf)
        length = int(read_state(start, mmap=True)["step"]) + max(steps // 4, total_compute(dataset) - spent)
    cfg = TrainConfig.from_json(best_file).replace(steps=length, eval_every=length)  # one evaluation, at the end
    return train(cfg, None, resume_from=start, log=lambda _: None).metrics.get(keys.FID)


def paper_default(dataset: str, experiment: Path) -> Optional[float]:
    """The paper's setting, as the search's baseline trial trained it (its config.json), trained from
    scratch for the user's whole compute and scored at its end."""
    from dcgan.config import TrainConfig
    from dcgan.train import train

    baseline = json.loads((experiment / "experiment.json").read_text())["baseline_trial_id"]
    length = total_compute(dataset)
    cfg = TrainConfig.from_json(experiment / "trials" / baseline / "config.json").replace(steps=length,
                                                                                          eval_every=length)
    return train(cfg, None, log=lambda _: None).metrics.get(keys.FID)


def baseline_of(rows: list[dict], steps: int) -> tuple[Optional[str], Optional[float]]:
    """The paper-setting trial and its FID at the full steps (None if it did not get there)."""
    paper = baseline_params(get_space("ratio_lr"))
    trial = next((r["trial"] for r in rows if same_params(r["params"], paper)), None)
    final = [r for r in rows if r["trial"] == trial and r["step"] >= steps and is_finite(r["fid"])]
    return trial, (final[-1]["fid"] if final else None)


def good(fid: Optional[float], verdict: Optional[str]) -> bool:
    """An evaluation that counts: a finite FID from a generator not flagged collapsed or never learned."""
    return is_finite(fid) and verdict not in keys.FAILED_VERDICTS


def beats(fid: Optional[float], verdict: Optional[str], bar: Optional[float]) -> bool:
    """An evaluation that counts and is at or below the bar (the baseline's FID)."""
    return bar is not None and good(fid, verdict) and fid <= bar


def best_so_far(rows: list[dict], leave_out: Optional[str]) -> list[tuple[int, float]]:
    """(trial-steps spent, the lowest FID so far among the other trials' good evaluations)."""
    best, curve = math.inf, []
    for r in rows:
        if r["trial"] != leave_out and good(r["fid"], r["verdict"]):
            best = min(best, r["fid"])
        curve.append((r["spent"], best))
    return curve


def first_below(rows: list[dict], leave_out: Optional[str], bar: Optional[float], search: str) -> str:
    """Which trial first reached the bar (trial-steps spent, its step, its params), and which reached
    it at the fewest of its own steps: the start a sampler would have needed."""
    at_bar = [r for r in rows if r["trial"] != leave_out and beats(r["fid"], r["verdict"], bar)]
    if not at_bar:
        return f"{search}: no trial reached the baseline's FID"

    def describe(r: dict) -> str:
        return (f"trial {r['trial']} at its step {r['step']} (FID {r['fid']:.2f}, {r['spent']:,} trial-steps spent), "
                f"{format_params(r['params'])}")

    fastest = min(at_bar, key=lambda r: (r["step"], r["spent"]))
    return (f"{search}: at the baseline's FID ({bar:.2f}) first {describe(at_bar[0])}"
            + ("" if fastest is at_bar[0] else f"; fastest {describe(fastest)}"))


def steps_to_reach(curve: list[tuple[int, float]], bar: Optional[float]) -> float:
    return next((spent for spent, best in curve if bar is not None and best <= bar), math.inf)


def write_outputs(out: Path, results: dict) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "search_efficiency.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "strategy", "seed", "trial_steps", "best_fid", "baseline_fid"])
        for (dataset, strategy, seed), r in results.items():
            for spent, best in r["curve"]:
                w.writerow([dataset, strategy, seed, spent, best if math.isfinite(best) else "", r["bar"]])
    datasets = sorted({k[0] for k in results})
    fig = make_subplots(rows=1, cols=len(datasets), subplot_titles=[f"{d}: best FID vs trial-steps" for d in datasets])
    for col, dataset in enumerate(datasets, 1):
        budget = DATASETS[dataset][1] * DATASETS[dataset][2]
        grid = list(range(0, budget + 1, max(1, budget // 100)))
        for strategy in STRATEGIES:
            curves = [r["curve"] for (d, s, _), r in results.items() if d == dataset and s == strategy]
            if not curves:
                continue
            at = [[_value_at(c, x) for c in curves] for x in grid]
            med = [statistics.median(v) if all(map(math.isfinite, v)) else None for v in at]
            lo = [min(v) if all(map(math.isfinite, v)) else None for v in at]
            hi = [max(v) if all(map(math.isfinite, v)) else None for v in at]
            fig.add_trace(go.Scatter(x=grid + grid[::-1], y=hi + lo[::-1], fill="toself", line=dict(width=0),
                                     fillcolor=STRATEGIES[strategy].colour, opacity=0.15, showlegend=False, hoverinfo="skip"),
                          row=1, col=col)
            fig.add_trace(go.Scatter(x=grid, y=med, name=f"{strategy} (median, min-max over seeds)",
                                     line=dict(color=STRATEGIES[strategy].colour), showlegend=col == 1), row=1, col=col)
        bars = [r["bar"] for (d, _, _), r in results.items() if d == dataset and r["bar"] is not None]
        if bars:
            # a trace, not add_hline: on a log axis an hline's annotation is placed at 10**y
            fig.add_trace(go.Scatter(x=[0, budget], y=[statistics.median(bars)] * 2, name="paper baseline's FID (median)",
                                     line=dict(dash="dash", color="#333"), showlegend=col == 1), row=1, col=col)
        fig.update_yaxes(type="log", title_text="best FID so far", row=1, col=col)
        fig.update_xaxes(title_text="trial-steps spent", row=1, col=col)
    fig.update_layout(template="plotly_white", height=460, title="Search efficiency at an equal budget of trial-steps")
    fig.write_html(out / "search_efficiency.html", include_plotlyjs=True)


def print_table(results: dict) -> None:
    """Per dataset and strategy, the median (min-max over seeds) of: the trial-steps to reach the baseline's
    FID; those to reach random search's median best FID at the end of its budget (a bar random search
    meets only at the end, where the baseline's is often met by its first trials); the best FID at the end."""
    fmt = lambda x: f"{x:,.0f}" if math.isfinite(x) else "never"  # noqa: E731
    fid = lambda x: f"{x:.2f}" if math.isfinite(x) else "none"  # noqa: E731
    spread = lambda v: f"{fmt(statistics.median(v))} ({fmt(v[0])}-{fmt(v[-1])})"  # noqa: E731
    w = max(map(len, STRATEGIES))
    print(f"{'dataset':<8} {'strategy':<{w}} {'to the baseline FID':>22} {'to random final FID':>26} {'best FID at the end':>24}")
    for dataset in sorted({k[0] for k in results}):
        random_ends = [r["curve"][-1][1] for (d, s, _), r in results.items() if (d, s) == (dataset, "random") and r["curve"]]
        random_bar = statistics.median(random_ends) if random_ends else math.inf
        random_bar = random_bar if math.isfinite(random_bar) else None  # no bar: "never"
        for strategy in [s for s in STRATEGIES if any(k[:2] == (dataset, s) for k in results)]:
            runs = [r for (d, s, _), r in results.items() if d == dataset and s == strategy]
            reach = sorted(steps_to_reach(r["curve"], r["bar"]) for r in runs)
            reach_random = sorted(steps_to_reach(r["curve"], random_bar) for r in runs)
            ends = sorted(r["curve"][-1][1] for r in runs if r["curve"])
            print(f"{dataset:<8} {strategy:<{w}} {spread(reach):>22} {spread(reach_random):>26} "
                  f"{fid(statistics.median(ends)):>10} ({fid(ends[0])}-{fid(ends[-1])})")


def write_users(out: Path, users: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "user_generator.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["dataset", "strategy", "seed", "long_run", "total_trial_steps", "fid"])
        for (dataset, strategy, seed, how), fid in users.items():
            w.writerow([dataset, strategy, seed, how, total_compute(dataset), "" if fid is None else fid])


def print_users(users: dict) -> None:
    """Per dataset, strategy and long run, the median (min-max over seeds) FID of the generator the user
    ends with, and how much lower it is than random search's (median, its winner retrained and continued)
    and the paper default's (median)."""
    fid = lambda x: f"{x:.2f}" if x is not None and math.isfinite(x) else "none"  # noqa: E731
    print(f"\nthe user's generator at equal total compute (search + a long run of {LONG_RUN}x the trial steps)")
    print(f"{'dataset':<8} {'strategy':<14} {'long run':<10} {'FID: median (min-max)':>26} {'vs random retrained':>20} "
          f"{'vs random continued':>20} {'vs paper':>9}")
    for dataset in sorted({k[0] for k in users}):
        def med(strategy: str, how: str) -> Optional[float]:
            v = [f for (d, s, _, h), f in users.items() if (d, s, h) == (dataset, strategy, how) and f is not None]
            return statistics.median(v) if v else None

        for strategy in [s for s in (*STRATEGIES, "paper") if any(k[:2] == (dataset, s) for k in users)]:
            for how in [h for h in (RETRAINED, CONTINUED) if any(k[:2] == (dataset, strategy) and k[3] == h for k in users)]:
                v = sorted(f if f is not None else math.inf for (d, s, _, h), f in users.items()
                           if (d, s, h) == (dataset, strategy, how))
                m = statistics.median(v)
                rel = lambda ref: f"{(ref - m) / ref * 100:+.0f}%" if ref and math.isfinite(m) else "-"  # noqa: E731
                print(f"{dataset:<8} {strategy:<14} {how if strategy != 'paper' else 'whole':<10} "
                      f"{fid(m) + f' ({fid(v[0])}-{fid(v[-1])})':>26} {rel(med('random', RETRAINED)):>20} "
                      f"{rel(med('random', CONTINUED)):>20} {rel(med('paper', RETRAINED)):>9}")


def strategy_of(row: dict) -> str:
    """A CSV row's strategy, by its name now (RENAMED)."""
    return RENAMED.get(row["strategy"], row["strategy"])


def read_results(path: Path, rerun: list[str]) -> dict:
    """The curves and bars of a former run's CSV, but those of the strategies run again."""
    results: dict = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = (row["dataset"], strategy_of(row), int(row["seed"]))
            if key[1] in rerun:
                continue
            r = results.setdefault(key, {"curve": [], "bar": float(row["baseline_fid"]) if row["baseline_fid"] else None})
            r["curve"].append((int(row["trial_steps"]), float(row["best_fid"]) if row["best_fid"] else math.inf))
    return results


def read_users(path: Path) -> dict:
    """The user's-generator FIDs of a former run (its user_generator.csv); None where no winner was named.
    A file from before the long_run column: a population's winner was continued, any other retrained."""
    with open(path, newline="") as f:
        return {(row["dataset"], strategy_of(row), int(row["seed"]),
                 row.get("long_run") or (CONTINUED if strategy_of(row) in POPULATION else RETRAINED)):
                float(row["fid"]) if row["fid"] else None for row in csv.DictReader(f)}


def show(paths: list[Path], out: Optional[Path]) -> None:
    """The tables of former runs' CSVs, merged (a bench run in pieces: one seed per process, say), each
    search_efficiency.csv with the user_generator.csv beside it where there is one; a (dataset, strategy,
    seed) in two of them is taken from the later. With `out`, the merged CSVs and plot are written there."""
    results, users = {}, {}
    for path in paths:
        results.update(read_results(path, rerun=[]))
        if path.with_name("user_generator.csv").exists():
            users.update(read_users(path.with_name("user_generator.csv")))
    print_tables(results, users)
    if out is not None:
        write_outputs(out, results)
        write_users(out, users)
        print(f"wrote {out}/search_efficiency.csv, user_generator.csv and search_efficiency.html")


def print_tables(results: dict, users: dict) -> None:
    """Both measures: the best FID at equal trial-steps, and the user's generator where it was measured."""
    print_table(results)
    if users:
        print_users(users)


def _value_at(curve: list[tuple[int, float]], x: int) -> float:
    value = math.inf
    for spent, best in curve:
        if spent > x:
            break
        value = best
    return value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3, help="seeds per strategy (default 3)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds run are first-seed, first-seed + 1, ... (default 0)")
    p.add_argument("--datasets", nargs="+", default=list(DEFAULT_DATASETS), choices=list(DATASETS))
    p.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES), choices=list(STRATEGIES))
    p.add_argument("--out", help="folder for the CSVs and the HTML (default bench-results; with --show, none)")
    p.add_argument("--budget-trials", type=int, help="the budget in trials' worth (default 8 for each dataset)")
    p.add_argument("--concurrency", type=int, default=2, help="trials at once (default 2)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, help="a GPU's share per trial (default 0: CPU)")
    p.add_argument("--warm-start", action="append", default=[], metavar="DATASET=FILE",
                   help="the config the warm strategy starts from on DATASET (a best_config.json); repeatable")
    p.add_argument("--quick", action="store_true", help="tiny budgets: only to see that the script runs")
    p.add_argument("--keep", metavar="DIR", help="keep the searches' experiments in DIR (a new folder), to look at "
                   "or continue their winners later (default: a temporary folder, removed at the end)")
    p.add_argument("--no-long-run", action="store_true", help="skip the second measure (the user's generator)")
    p.add_argument("--reuse", metavar="CSV", help="a former run's search_efficiency.csv: its curves of the strategies "
                   "not run now, and its baseline FIDs, join the table and the plot (to run one strategy again)")
    p.add_argument("--show", metavar="CSV", nargs="+", type=Path,
                   help="print the tables of former runs' search_efficiency.csv (merged, with the user_generator.csv "
                   "beside each) and exit; with --out, write the merged CSVs and plot there")
    args = p.parse_args()
    if args.show:
        missing = [str(path) for path in args.show if not path.is_file()]
        if missing:
            p.error(f"no such file: {', '.join(missing)}")
        out = Path(args.out) if args.out else None
        if out is not None and any(path.parent.resolve() == out.resolve() for path in args.show):
            p.error(f"--out {out} holds a CSV being shown: name a new folder for the merged files")
        return show(args.show, out)
    args.out = args.out or "bench-results"
    if args.keep and Path(args.keep).exists():
        p.error(f"--keep {args.keep} exists: name a new folder for the experiments")
    if args.keep:
        Path(args.keep).mkdir(parents=True)
    warm = dict(w.partition("=")[::2] for w in args.warm_start)
    if "warm" in args.strategies and not all(warm.get(d) for d in args.datasets):
        p.error("the warm strategy needs --warm-start DATASET=FILE for each of --datasets "
                + " ".join(args.datasets))
    for name, (flags, steps, n) in DATASETS.items():
        if args.quick:  # 3 trials' worth of 100 steps, to see that the script runs
            steps, n = 100, 3
        DATASETS[name] = (flags, steps, args.budget_trials or n)
    os.environ.setdefault("DCGAN_NO_DOWNLOAD", "1")
    import ray

    ray.init(include_dashboard=True, log_to_driver=False, logging_level="WARNING")  # one Ray for every search
    resources = ["--concurrency", str(args.concurrency), "--gpus-per-worker", str(args.gpus_per_trial)]
    results, t0 = (read_results(Path(args.reuse), args.strategies) if args.reuse else {}), time.time()
    users: dict = {}
    with contextlib.nullcontext(str(Path(args.keep).resolve())) if args.keep else \
            tempfile.TemporaryDirectory(prefix="search-efficiency-") as storage:
        for dataset in args.datasets:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                bar = next((r["bar"] for (d, _, s), r in results.items() if (d, s) == (dataset, seed)), None)
                for strategy in args.strategies:  # random first: its baseline trial always runs to the end
                    rows = run_one(strategy, dataset, seed, storage, resources, warm)
                    baseline, fid = baseline_of(rows, DATASETS[dataset][1])
                    bar = bar if bar is not None else fid
                    results[(dataset, strategy, seed)] = {"curve": best_so_far(rows, baseline), "bar": bar}
                    print(first_below(rows, baseline, bar, f"{dataset} {strategy} seed {seed}"))
                    write_outputs(Path(args.out), results)  # after each search: a run cut short keeps its figures
                    if not args.no_long_run:
                        spent = rows[-1]["spent"] if rows else 0
                        searched = Path(storage) / f"{dataset}-{strategy}-{seed}"
                        for how in long_runs(strategy):
                            users[(dataset, strategy, seed, how)] = user_generator(dataset, searched, spent, how)
                        if (dataset, "paper", seed, RETRAINED) not in users:
                            users[(dataset, "paper", seed, RETRAINED)] = paper_default(dataset, searched)
                        write_users(Path(args.out), users)
    print(f"\nsearch efficiency: {args.seeds} seeds, budgets of trial-steps " + ", ".join(
        f"{d} {DATASETS[d][1] * DATASETS[d][2]} ({DATASETS[d][2]} trials of {DATASETS[d][1]})" for d in args.datasets)
        + f"; {time.time() - t0:.0f} s in all")
    print_tables(results, users)
    print(f"wrote {args.out}/search_efficiency.csv, user_generator.csv and search_efficiency.html")


if __name__ == "__main__":
    main()
