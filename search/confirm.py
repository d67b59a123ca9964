"""The end of a search before its winner is named: the top trials and the baseline trained again
with other seeds (and for longer, where asked), so that best_config.json holds a config whose FID
holds up, not one seed's luck (experiment/confirmation.py sums the runs up).

Runs are Tune trials of their own (FIFO: none is stopped early), written to confirm/<trial>-seed<s>/.
A resumed search runs only the confirmation runs that had not ended.
"""

from __future__ import annotations

from experiment.layout import CONFIRM, Experiment, confirm_name
from experiment.lineage import replay_params
from experiment.ranking import Ranking, rank_trials
from experiment.schema import ENDED
from search.plan import Plan

CONFIRM_DIR = "tune-confirm"  # Tune's own files of the confirmation runs, in the experiment


def confirm_seeds(plan: Plan) -> list[int]:
    """Seeds the search did not use: the search seed + 1, + 2, ..."""
    return [plan.seed + 1 + i for i in range(plan.confirm_seeds)]


def planned_runs(plan: Plan) -> tuple[int, int]:
    """(runs, steps of each) the confirmation will train at most: the top `confirm` trials and the
    baseline (unless it is among them) with each seed; (0, 0) without a confirmation."""
    if not plan.confirm:
        return 0, 0
    return (plan.confirm + 1) * plan.confirm_seeds, plan.confirm_steps or plan.steps


def candidates(ranking: Ranking, top: int) -> list[str]:
    """The top `top` trials of the leaderboard (never collapsed or unlearned ones), then the baseline."""
    ids = [t.trial_id for t in ranking.ranked[:top]]
    if ranking.baseline is not None and ranking.baseline.trial_id not in ids and ranking.baseline.fid is not None:
        ids.append(ranking.baseline.trial_id)
    return ids


def run_name(trial) -> str:
    """A confirmation run's name (its folder under confirm/), from its Tune trial."""
    run = trial.config["run"]
    return confirm_name(run["trial"], run["seed"])


def confirm(plan: Plan, concurrency: int) -> None:
    """Train the candidates again with confirm_seeds(plan); the runs that had ended are kept."""
    from ray import tune

    from search.callback import ConfirmationWriter
    from search.console import Console
    from search.protocol import MAX_WORKER_FAILURES
    from search.trial import run_confirmation
    from search.trackers import make_trackers
    from search.tracking import tune_loggers

    experiment = Experiment(plan.experiment.uri)
    ranking = rank_trials(experiment)
    ids = candidates(ranking, plan.confirm)
    runs = [{"trial": tid, "seed": seed} for tid in ids for seed in confirm_seeds(plan)
            if experiment.trial_status(confirm_name(tid, seed), CONFIRM) not in ENDED]
    if not runs:
        return
    steps = plan.confirm_steps or plan.steps
    print(f"confirming {', '.join(ids)} (the leaderboard's top {plan.confirm} and the baseline) with seeds "
          f"{', '.join(map(str, confirm_seeds(plan)))}: {len(runs)} run(s) of {steps} steps")
    params_of = {tid: replay_params(experiment, tid) for tid in ids}  # a member's with its schedule
    steps_override = plan.confirm_steps if plan.confirm_steps and plan.confirm_steps != plan.steps else None
    trial_fn = tune.with_parameters(run_confirmation, params_of=params_of, fixed=plan.fixed,
                                    resources=plan.resources, experiment_uri=plan.experiment.uri, steps=steps_override)
    trainable = tune.with_resources(trial_fn, plan.resources.tune_resources())
    writer = ConfirmationWriter(plan.experiment, plan.fixed, steps, params_of, steps_override, make_trackers(plan))
    console = Console(len(runs), steps, name_of=run_name, ends_only=True)
    tuner = tune.Tuner(
        trainable, param_space={"run": tune.grid_search(runs)},
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrency, reuse_actors=plan.resources.inline),
        run_config=tune.RunConfig(name=CONFIRM_DIR, storage_path=plan.experiment.uri,
                                  callbacks=[writer, console, *tune_loggers()],
                                  verbose=1 if plan.verbose else 0,
                                  failure_config=tune.FailureConfig(max_failures=MAX_WORKER_FAILURES)),
    )
    tuner.fit()
