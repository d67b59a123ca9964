"""The Tune/Optuna wiring of a planned search: the Tuner, its searcher, scheduler and callbacks,
the run, and the end (best_config.json, the table, the report).

Optuna's TPE (multivariate, seeded) proposes the parameters; the first trial is the DCGAN paper's
setting; ASHA stops poor trials early on FID. Everything is written to the experiment directory
(docs/experiment-layout.md) as results arrive.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Optional

from dcgan.config import parse_duration
from dcgan.files import EXIT_DISK_FULL, disk_full, disk_full_line
from dcgan.train import EXIT_INTERRUPTED
from experiment.layout import BEST_CONFIG_JSON, OPTUNA_DB, Experiment, is_uri, parent_uri, ray_trial_dir
from experiment.confirmation import confirmation
from experiment.ranking import rank_trials
from experiment.winner import best_config_json, winner
from experiment.schema import FAILED, PENDING, RUNNING, warm_runs
from search.budget import budgeted, warning
from search.cluster import connect_ray, default_concurrency, settle
from search.interrupt import TUNE_SIGINT_OFF, interruptible
from search.checks import resume_command
from search.plan import DEFAULT_STORAGE, Plan, planned_info
from search.sampling import make_sampler
from search.protocol import MAX_WORKER_FAILURES, METRIC
from spaces import get_space, trial_config

ASHA_REDUCTION_FACTOR = 2
ASHA_GRACE_EVALUATIONS = 2  # FID after one evaluation (a quarter of the run) is too noisy to stop on


def experiment_info(plan: Plan, concurrency: int, started_at: str) -> dict[str, Any]:
    import optuna
    import ray
    import torch

    cfg = trial_config(plan.fixed, plan.baseline)
    return {
        "name": plan.name, "space": plan.space, "dataset": cfg.dataset, "image_size": cfg.image_size,
        "metric": METRIC, "mode": "min", **planned_info(plan), "steps": plan.steps, "seed": plan.seed,
        "concurrency": concurrency,
        "extractor": None, "eval_samples": cfg.eval_samples, "reference": None,  # filled from the first FID
        "baseline_trial_id": None, "baseline_params": plan.baseline, "warm_start": list(plan.warm_start),
        "budget": plan.budget_plan,
        "fixed": plan.fixed,
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


def study_db(plan: Plan) -> tuple[str, bool]:
    """(the SQLite file of the Optuna study, whether it is a local copy): in the experiment for a local
    one (optuna-dashboard opens it); for a URI, a copy in the cache that the callback uploads."""
    if not is_uri(plan.experiment.uri):
        return plan.experiment.path(OPTUNA_DB), False
    from dcgan.metrics.cache import cache_root

    key = hashlib.sha1(plan.experiment.uri.encode()).hexdigest()[:12]
    return os.path.join(cache_root(), "optuna", f"{plan.name}-{key}.db"), True


def optuna_storage(plan: Plan):
    """The study's storage, and the local copy to upload (None when the file is in the experiment).
    A copy starts afresh, or on --resume from the experiment's."""
    import optuna

    path, copy = study_db(plan)
    if copy:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not plan.resume and os.path.exists(path):
            os.remove(path)  # a stale copy from an earlier experiment of this name and place
        if plan.resume and plan.experiment.exists(OPTUNA_DB):
            with open(path, "wb") as dst:
                dst.write(plan.experiment.read_bytes(OPTUNA_DB))
    return optuna.storages.RDBStorage(f"sqlite:///{path}"), path if copy else None


def close_lost_study_trials(plan: Plan) -> None:
    """Optuna trials still RUNNING when the search ends were asked just before a driver was killed and
    lost with it (their folders say "lost"): told FAIL, so the study holds each trial once, finished."""
    import optuna

    path, _ = study_db(plan)
    if not os.path.exists(path):
        return
    study = optuna.load_study(study_name=plan.name, storage=f"sqlite:///{path}")
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    upload_study(plan)


def upload_study(plan: Plan) -> None:
    """The study's local copy, for an experiment in remote storage, uploaded to it (a local
    experiment's study is its own file)."""
    path, copy = study_db(plan)
    if copy and os.path.exists(path):
        plan.experiment.upload(path, OPTUNA_DB)


def build_tuner(plan: Plan, concurrency: int, extra: Optional["Extra"] = None):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from search.callback import ExperimentWriter
    from search.searcher import ExperimentSearch
    from search.trackers import make_trackers
    from search.trial import RestoreFromWhatExists, run_trial

    if plan.pack > 1:
        from search.population import pack_trainable

        trainable = pack_trainable(plan, concurrency)
    else:
        trial_fn = tune.with_parameters(run_trial, fixed=plan.fixed, resources=plan.resources,
                                        experiment_uri=plan.experiment.uri)
        trial_fn.__mixins__ = (RestoreFromWhatExists,)  # Tune's own hook for mixing into a function's trainable
        trainable = tune.with_resources(trial_fn, plan.resources.tune_resources())
    if plan.resume and tune.Tuner.can_restore(plan.experiment.uri):  # Tune restores its searcher, scheduler
        if is_uri(plan.experiment.uri):                                # and callbacks from the experiment
            optuna_storage(plan)  # fetch the study's local copy back first
        return tune.Tuner.restore(plan.experiment.uri, trainable, resume_unfinished=True, resume_errored=False)
    # a new search, or one stopped before Tune first saved its state (no trial had started): as planned
    if not plan.verbose:  # (a population's draws come from a study too)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created ..." and the like
    if plan.is_population:
        from search.population import population_tuner

        return population_tuner(plan, trainable, extra or Extra(), run_config, tune_dirname)
    storage, local_db = optuna_storage(plan)
    writer = ExperimentWriter(plan.experiment, plan.fixed, plan.steps, plan.baseline, optuna_db=local_db,
                              trackers=make_trackers(plan))
    extra = extra or Extra()
    searcher_cls = extra.searcher_cls or ExperimentSearch
    first = [plan.baseline, *(w["params"] for w in warm_runs(plan.warm_start))]  # then the sampler's
    searcher = searcher_cls(space=get_space(plan.space), metric=METRIC, mode="min", steps=plan.steps,
                            points_to_evaluate=first, study_name=plan.name, storage=storage,
                            sampler=make_sampler(plan.sampler, plan.trials, plan.seed, plan.startup_trials))
    eval_every = plan.fixed["eval_every"]
    scheduler = (ASHAScheduler(time_attr="step", metric=METRIC, mode="min", max_t=plan.steps,
                               grace_period=min(ASHA_GRACE_EVALUATIONS * eval_every, plan.steps),
                               reduction_factor=ASHA_REDUCTION_FACTOR)
                 if plan.scheduler == "asha" else FIFOScheduler())
    reporter = None
    if plan.verbose:
        reporter = tune.CLIReporter(metric_columns={"step": "step", METRIC: METRIC, "collapse": "collapse"},
                                    parameter_columns=sorted(plan.baseline), metric=METRIC, mode="min",
                                    sort_by_metric=True, max_report_frequency=30)
    keep = trial_config(plan.fixed, plan.baseline).keep_checkpoints
    return tune.Tuner(
        trainable,
        # reuse_actors: a 1-worker trial runs in its Tune actor, and the next trial reuses that
        # process (torch imported, data and metrics reference in memory; bench/trial_overhead.py)
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=plan.trials,
                                    max_concurrent_trials=concurrency, trial_dirname_creator=tune_dirname,
                                    reuse_actors=plan.resources.inline),
        run_config=run_config(plan, writer, extra, keep, reporter),
    )


def run_config(plan: Plan, writer, extra: "Extra", keep: int, reporter=None, packs: Optional[list] = None):
    """The search's RunConfig: in the experiment, its writer and console, Tune's loggers, what a bench
    adds, and `keep` checkpoints a trial; with `packs`, the writer and the console see their members."""
    from ray import tune

    from search.confirm import planned_runs
    from search.console import Console
    from search.callback import ByMember
    from search.tracking import tune_loggers

    storage_path, name = parent_uri(plan.experiment.uri)
    console = Console(plan.trials, plan.steps, confirm=planned_runs(plan))
    if packs:
        writer = ByMember(writer, packs, plan.experiment, lineage=True)
        console = ByMember(console, packs, plan.experiment, ends_once=True)
    return tune.RunConfig(name=name, storage_path=storage_path,
                          callbacks=[writer, console, *tune_loggers(), *extra.callbacks],
                          stop=extra.stopper, progress_reporter=reporter, verbose=1 if plan.verbose else 0,
                          # a trial whose process or node is lost restarts from its last checkpoint
                          failure_config=tune.FailureConfig(max_failures=MAX_WORKER_FAILURES),
                          checkpoint_config=tune.CheckpointConfig(num_to_keep=keep))


def tune_dirname(trial) -> str:
    return ray_trial_dir(trial.trial_id)


def finish(plan: Plan, t0: float) -> int:
    """best_config.json, the top-5 table, experiment.json's end, and the HTML report."""
    from search.console import format_table

    exp = plan.experiment
    for tid in exp.trial_ids():  # a trial started just before a driver was killed, and not restored
        trial = exp.read_trial(tid)
        if trial.status in (PENDING, RUNNING):
            exp.write_status(tid, FAILED, trial.status_step or 0, "lost: the search driver stopped before this "
                             "trial ended, and Tune's saved state did not include it")
    close_lost_study_trials(plan)
    done = Experiment(exp.uri)  # read afresh, now that every status is final
    ranking = rank_trials(done)
    confirmed = confirmation(done, ranking)
    best = winner(ranking, confirmed)
    changes: dict[str, Any] = {"finished_at": _now(), "wall_time_s": round(time.time() - t0, 1)}
    if best is not None:
        from search.trackers import make_trackers
        from search.tracking import tag_winner

        best_json = best_config_json(done, best, confirmed)
        changes |= {"extractor": best_json["diagnostics"]["extractor"], "reference": best_json["diagnostics"]["reference"]}
        exp.write_json(best_json, BEST_CONFIG_JSON)
        tag_winner(make_trackers(plan), done, plan.name, best.trial_id)
    exp.update_info(**changes)
    print(format_table(ranking))
    if confirmed is not None:
        print(confirmed.note)
    if best is not None:
        print(f"best: trial {best.trial_id}, fid {best.fid:.3f} in the search; config in {exp.uri}/{BEST_CONFIG_JSON}")
        if ranking.gain_over_baseline_pct is not None and confirmed is None:
            print(ranking.gain_note)
    else:
        print("no trial produced a finite FID; no best_config.json written", file=sys.stderr)
    # The report is a view of the files, built by its own CLI: search/ does not import reports/, and
    # a report that fails to build never fails the search.
    built = subprocess.run([sys.executable, "-m", "reports.build", exp.uri], capture_output=True, text=True)
    print((built.stdout or built.stderr).strip() or f"experiment: {exp.uri}",
          file=sys.stdout if built.returncode == 0 else sys.stderr)
    return 0 if best is not None else 1  # a search that found nothing fails, for the scripts that run it


def search_resume_command(plan: Plan) -> str:
    """`python -m search.run --space S --name N [--storage ...] --resume`."""
    return resume_command("search.run", plan.experiment.uri, DEFAULT_STORAGE, "--space", plan.space)


def full_disk(plan: Plan, error: OSError) -> int:
    """A search stopped by a full disk: one line, and the command that goes on once there is room."""
    print(f"error: {disk_full_line(error, f'go on with: {search_resume_command(plan)}')}",
          file=sys.stderr)
    return EXIT_DISK_FULL


def stopped(plan: Plan) -> int:
    """The end of a search stopped by Ctrl-C (or SIGTERM): what it did, and the command that goes
    on. Nothing is marked lost and no winner named: the trials that were running are in Tune's
    saved state, and in the study as RUNNING, and `--resume` restarts them from their last
    checkpoints."""
    exp = Experiment(plan.experiment.uri)
    done = sum(1 for t in exp.trials if t.status not in (PENDING, RUNNING))
    upload_study(plan)  # with the intermediate FIDs told since the writer's last upload
    print(f"stopped: {done} of {plan.trials} trials done; no winner named. To go on from here:\n"
          f"  {search_resume_command(plan)}", file=sys.stderr)
    return EXIT_INTERRUPTED


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


def quiet_environment(plan: Plan) -> dict[str, str]:
    """Tune's settings while a search runs: its own state saved every second (default: every 10 s
    or more), so a killed driver loses little and --resume repeats little; the classic output engine,
    for --verbose; Ctrl-C ours, not Tune's (search/interrupt.py); and no warning when short
    evaluations force a save of that state (num_to_keep does: cheap here); and none of Tune's
    automatic loggers (search.tracking.tune_loggers adds back the ones kept)."""
    quiet = {} if plan.verbose else {"TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}
    return {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_GLOBAL_CHECKPOINT_S": os.environ.get("TUNE_GLOBAL_CHECKPOINT_S", "1"),
            "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", **TUNE_SIGINT_OFF, **quiet}


@dataclass(frozen=True)
class Extra:
    """What benchmarks add to a search: Tune callbacks, a Tune stopper (a budget of trial-steps),
    another searcher class (taking ExperimentSearch's arguments)."""

    callbacks: tuple = ()
    stopper: Any = None
    searcher_cls: Any = None


def run_search(plan: Plan, extra: Optional[Extra] = None, started: Optional[float] = None) -> int:
    """Run the planned search to its end; a wall-time budget counts from `started` (time.monotonic(),
    default now)."""
    import ray

    deadline = (started or time.monotonic()) + parse_duration(plan.budget) if plan.budget else None
    started_ray = connect_ray(plan.address, plan.verbose)
    try:
        if plan.is_population and not plan.resume:  # its size, once the cluster's is known
            plan = plan.with_population(plan.concurrency or default_concurrency(plan.resources, 1 << 30))
        concurrency = plan.concurrency or default_concurrency(plan.resources, plan.trials)
        if plan.budgeted and not plan.resume:  # the trials' steps, from the budget (a wall time: measured now)
            plan = budgeted(plan, concurrency, deadline)
            print(f"budget {plan.budget_plan['summary']}")
            if too_small := warning(plan.budget_plan):
                print(too_small)
        t0 = time.time()
        if plan.resume:
            # (mlflow, wandb: an experiment from before they were fields gets them, null)
            plan.experiment.update_info(finished_at=None, wall_time_s=None, mlflow=plan.mlflow, wandb=plan.wandb)
        else:
            plan.experiment.write_info(experiment_info(plan, concurrency, _now()))
        cfg = trial_config(plan.fixed, plan.baseline)
        what = (f"a population of {plan.population} and the paper's setting ({plan.scheduler})" if plan.is_population
                else f"{plan.trials} trials")
        print(f"search {plan.name}: {what} of {plan.steps} steps on {cfg.dataset} {cfg.image_size}px, "
              f"{concurrency} at a time -> {plan.experiment.uri}" + (" (resumed)" if plan.resume else ""))
        from search.console import format_params

        for w in plan.warm_start if not plan.resume else ():
            print(f"warm start: {w['from']} ({format_params(w['params'])})" + (
                f" is the same as {w['same_as']}: not run twice" if "same_as" in w else ", right after the baseline"))
        tuner = build_tuner(plan, concurrency, extra)
        from search.callback import FULL_DISK, disk_full_in_one_line

        with _environ(**quiet_environment(plan)), interruptible() as interrupt, disk_full_in_one_line():
            interrupt.run(tuner.fit)
            if plan.confirm and not FULL_DISK and not interrupt.requested:
                from search.confirm import confirm

                settle(plan.address, started_ray, plan.verbose)
                interrupt.run(lambda: confirm(plan, concurrency))
        if FULL_DISK:  # a trial's write: Tune stopped as on Ctrl-C
            return full_disk(plan, FULL_DISK[0])
        if interrupt.requested:
            return stopped(plan)
        return finish(plan, t0)
    except Exception as e:  # the driver's own writes (Tune's state too)
        if (full := disk_full(e)) is None:
            raise
        return full_disk(plan, full)
    finally:
        if started_ray:
            ray.shutdown()
