"""What each section of the report shows, computed as plain NamedTuples (no plotly here).

Each `_get_<section>_info` turns the experiment and its ranking into the data one section
draws; `reports/figures.py` turns an info into a figure and `reports/html.py` into HTML.
Tests check these infos without rendering anything.
"""

from __future__ import annotations

import os
import posixpath
import warnings
from datetime import datetime
from typing import Any, NamedTuple

from dcgan import keys
from experiment.layout import BEST_CONFIG_JSON, CONFIG_JSON, OPTUNA_DB, TRIALS, Experiment
from experiment import schema
from experiment.ranking import COLLAPSED, DIVERGED, RANKED, Ranking, RankedTrial

TOP_K = 4  # trials shown in the sample grids and the class-coverage bars, besides the baseline
LOG_PARAMS = ("lr_g", "lr_d", "lr")  # learning rates span decades: log axes
MIN_TRIALS_FOR_IMPORTANCE = 3


# --- 1 header ---------------------------------------------------------------------------------


class HeaderInfo(NamedTuple):
    name: str
    space: str | None
    dataset: str | None
    image_size: int | None
    extractor: str | None
    eval_samples: int | None
    reference: str | None
    scheduler: str | None
    trials_requested: int | None
    status_counts: dict[str, int]  # completed, stopped, diverged, running, pending, failed
    finished: bool
    started_at: str | None
    finished_at: str | None
    wall_time_s: float | None  # experiment.json's; None while the search runs
    trial_time_s: float  # summed over trials, as far as their results go
    gpu_hours: float  # workers_per_trial * gpus_per_worker * trial time
    cpu_hours: float  # workers_per_trial * cpus_per_worker * trial time
    versions: dict[str, str]
    fixed: dict[str, Any]  # the config every trial shared (experiment.json's "fixed"), less the dataset line's
    budget: str | None = None  # what --budget or --budget-steps became (search/budget.py's summary); None without


def _get_header_info(experiment: Experiment) -> HeaderInfo:
    meta = experiment.meta
    counts = {s: 0 for s in schema.TRIAL_STATUSES}
    for t in experiment.trials:
        counts[t.status] = counts.get(t.status, 0) + 1
    trial_time = sum(t.time_s for t in experiment.trials)
    workers = float(meta.get("workers_per_trial") or 1)
    return HeaderInfo(
        name=experiment.name, space=meta.get("space"), dataset=meta.get("dataset"),
        image_size=meta.get("image_size"), extractor=meta.get("extractor"),
        eval_samples=meta.get("eval_samples"), reference=meta.get("reference"),
        scheduler=meta.get("scheduler"), trials_requested=meta.get("trials_requested"),
        status_counts=counts, finished=meta.get("finished_at") is not None,
        started_at=meta.get("started_at"), finished_at=meta.get("finished_at"),
        wall_time_s=meta.get("wall_time_s"), trial_time_s=trial_time,
        gpu_hours=workers * float(meta.get("gpus_per_worker") or 0) * trial_time / 3600,
        cpu_hours=workers * float(meta.get("cpus_per_worker") or 0) * trial_time / 3600,
        versions={k: str(v) for k, v in (meta.get("versions") or {}).items()},
        fixed={k: v for k, v in (meta.get("fixed") or {}).items() if k not in ("dataset", "image_size")},
        budget=(meta.get("budget") or {}).get("summary"),
    )


# --- 3 sample grids ---------------------------------------------------------------------------


class SampleGrid(NamedTuple):
    trial_id: str
    title: str  # "#1 t001 · FID 30.0"
    step: int
    png: bytes
    is_baseline: bool


class SampleGridsInfo(NamedTuple):
    grids: list[SampleGrid]
    missing: list[str]  # trial ids that have no sample grid yet


def _get_sample_grids_info(experiment: Experiment, ranking: Ranking, top_k: int = TOP_K) -> SampleGridsInfo:
    """The latest grid of the top trials (never collapsed ones: they are not winners) and the baseline.
    With nothing ranked yet, the first trials that have grids, so there is still something to look at."""
    chosen = ranking.ranked[:top_k] or [r for r in ranking.trials if r.group != COLLAPSED
                                        and experiment.trial(r.trial_id).sample_paths][:top_k]
    if ranking.baseline is not None and ranking.baseline not in chosen:
        chosen = chosen + [ranking.baseline]
    grids, missing = [], []
    for row in chosen:
        paths = experiment.trial(row.trial_id).sample_paths
        if not paths:
            missing.append(row.trial_id)
            continue
        step = max(paths)
        grids.append(SampleGrid(row.trial_id, _short_title(row), step, experiment.read_bytes(paths[step]),
                                row.is_baseline))
    return SampleGridsInfo(grids, missing)


def _short_title(row: RankedTrial) -> str:
    place = f"#{row.position} " if row.position else ""
    fid = f" · FID {row.fid:.1f}" if row.fid is not None else ""
    tag = " (baseline)" if row.is_baseline else ""
    return f"{place}{row.trial_id}{fid}{tag}"


# --- 4 FID vs steps ---------------------------------------------------------------------------


class FidCurve(NamedTuple):
    trial_id: str
    steps: list[int]
    fids: list[float | None]
    group: str
    status: str
    end: str | None  # "stopped" | "diverged" | "running" | None: what the last point shows
    is_baseline: bool
    is_best: bool


class FidCurvesInfo(NamedTuple):
    curves: list[FidCurve]  # leaderboard order
    steps_target: int | None
    # FID's axis: "log", so that trials that never learned (FID 1,000 to 2,100) do not flatten every
    # other curve into the bottom pixels; "linear" only if a FID is 0 or less (no log of it)
    y_axis: str = "log"


def _get_fid_curves_info(ranking: Ranking, steps_target: int | None = None) -> FidCurvesInfo:
    curves = []
    for row in ranking.leaderboard:
        if not row.curve:
            continue
        end = row.status if row.status in (schema.STOPPED, schema.DIVERGED, schema.RUNNING) else None
        if row.group == DIVERGED:
            end = schema.DIVERGED
        curves.append(FidCurve(row.trial_id, [s for s, _ in row.curve], [f for _, f in row.curve],
                               row.group, row.status, end, row.is_baseline,
                               ranking.best is not None and row.trial_id == ranking.best.trial_id))
    fids = [f for c in curves for f in c.fids if f is not None]
    return FidCurvesInfo(curves, steps_target, "log" if all(f > 0 for f in fids) else "linear")


# --- 5 hyperparameters ------------------------------------------------------------------------


class ParamAxis(NamedTuple):
    name: str
    kind: str  # "log" | "linear" | "categorical"
    values: list[Any]  # one per trial of the info, in its order
    categories: list[Any]  # the distinct values, sorted, for categorical axes; else []


class ParamsInfo(NamedTuple):
    trial_ids: list[str]
    fids: list[float]
    groups: list[str]  # RANKED or COLLAPSED, so collapsed points can be told apart
    axes: list[ParamAxis]  # only parameters some trial has


def _get_params_info(ranking: Ranking, include_collapsed: bool = True) -> ParamsInfo:
    """Trials with a comparable FID and their sampled values. Collapsed trials can be left out
    where colour alone encodes FID (parallel coordinates): there their low FID would read as a win."""
    rows = [r for r in ranking.with_fid() if r.params and (include_collapsed or r.group != COLLAPSED)]
    names = [n for n in ranking.param_names if any(n in r.params for r in rows)]
    axes = []
    for name in names:
        values = [r.params.get(name) for r in rows]
        present = [v for v in values if v is not None]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
        if not numeric:
            axes.append(ParamAxis(name, "categorical", values, sorted({str(v) for v in present})))
        elif name in LOG_PARAMS or name.startswith("lr_"):
            axes.append(ParamAxis(name, "log" if all(v > 0 for v in present) else "linear", values, []))
        else:
            axes.append(ParamAxis(name, "linear", values, []))
    return ParamsInfo([r.trial_id for r in rows], [r.fid for r in rows], [r.group for r in rows], axes)


# --- 6 importance -----------------------------------------------------------------------------


class ImportanceInfo(NamedTuple):
    importances: dict[str, float]  # param -> share of FID variance (sums to 1); {} when none
    n_complete: int
    note: str  # how they were computed, or why there are none


def _get_importance_info(experiment: Experiment) -> ImportanceInfo:
    """fANOVA importances from the persisted Optuna study; a note instead when it cannot say."""
    if not experiment.exists(OPTUNA_DB):
        return ImportanceInfo({}, 0, "no optuna.db in the experiment: importances need the Optuna study")
    import optuna  # here, not at the top: only this section needs it, and it is slow to import

    local = experiment.copy_to_local(OPTUNA_DB)
    try:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = f"sqlite:///{local}"
        names = optuna.study.get_all_study_names(storage=storage)
        name = experiment.name if experiment.name in names else (names[0] if len(names) == 1 else None)
        if name is None:
            return ImportanceInfo({}, 0, f"optuna.db has no study named '{experiment.name}' "
                                         f"(it has: {', '.join(names) or 'none'})")
        study = optuna.load_study(storage=storage, study_name=name)
        complete = [t for t in study.get_trials(deepcopy=False)
                    if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
            return ImportanceInfo({}, len(complete), f"only {len(complete)} complete trial(s) in the "
                                  f"Optuna study: importances need at least {MIN_TRIALS_FOR_IMPORTANCE}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warnings are noise in a report
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
        return ImportanceInfo({k: float(v) for k, v in importances.items()}, len(complete),
                              f"fANOVA on {len(complete)} complete trials of the Optuna study "
                              "(trials stopped early are PRUNED in the study, and left out)")
    except Exception as e:  # noqa: BLE001 - optuna raises many kinds; the report must still build
        return ImportanceInfo({}, 0, f"importances unavailable: {' '.join(str(e).split())}")
    finally:
        os.unlink(local)


# --- 7 diagnostics ----------------------------------------------------------------------------


class DiagnosticPoint(NamedTuple):
    trial_id: str
    group: str
    fid: float | None
    precision: float | None
    recall: float | None
    density: float | None
    coverage: float | None


class DiagnosticsInfo(NamedTuple):
    points: list[DiagnosticPoint]  # every leaderboard trial with diagnostics
    class_coverage: list[tuple[str, float]]  # (label, coverage) for the top trials and the baseline
    has_labels: bool


def _get_diagnostics_info(ranking: Ranking, top_k: int = TOP_K) -> DiagnosticsInfo:
    points = [DiagnosticPoint(r.trial_id, r.group, r.fid, *(r.diagnostics.get(k) for k in
                                                            (keys.PRECISION, keys.RECALL, keys.DENSITY, keys.COVERAGE)))
              for r in ranking.leaderboard if any(v is not None for v in r.diagnostics.values())]
    chosen = [r for r in ranking.leaderboard if r.group in (RANKED, COLLAPSED)][:top_k]
    if ranking.baseline is not None and ranking.baseline not in chosen:
        chosen.append(ranking.baseline)
    bars = [(_short_title(r), r.diagnostics[keys.CLASS_COVERAGE]) for r in chosen
            if r.diagnostics.get(keys.CLASS_COVERAGE) is not None]
    return DiagnosticsInfo(points, bars, bool(bars))


# --- 8 reuse ----------------------------------------------------------------------------------


class ReuseInfo(NamedTuple):
    best_trial_id: str | None  # the report's best
    best_config_trial_id: str | None  # whom best_config.json holds (search.run's pick), if written
    config_path: str | None  # best_config.json, or the best trial's config.json while running
    commands: list[tuple[str, str]]  # (what it does, the command)
    note: str


def _get_reuse_info(experiment: Experiment, ranking: Ranking) -> ReuseInfo:
    root = experiment.uri
    best = ranking.best
    written = experiment.best_config.get("trial_id") if experiment.best_config else None
    if experiment.best_config is not None:
        path = posixpath.join(root, BEST_CONFIG_JSON)
        note = "best_config.json holds the winner's full TrainConfig, so the run repeats it exactly."
        if best is None:
            note = (f"best_config.json holds trial {written or '(unnamed)'}, search.run's pick, but this report "
                    "has no winner: no trial has a comparable, non-collapsed FID. Reuse it knowingly.")
        elif written is not None and written != best.trial_id:
            # search.run picks its winner by its own rule; say so rather than silently disagree.
            why = ("the confirmed best (the lowest mean FID over new seeds)"
                   if str(experiment.best_config.get("chosen_by", "")).startswith("confirmation") else "search.run's pick")
            note = (f"best_config.json holds trial {written}, {why}; the leaderboard ranks "
                    f"{best.trial_id} first. To train {best.trial_id} instead, pass --config "
                    f"{posixpath.join(root, TRIALS, best.trial_id, CONFIG_JSON)}.")
    elif best is not None:
        path = posixpath.join(root, TRIALS, best.trial_id, CONFIG_JSON)
        note = ("The search has not written best_config.json yet (it does at the end); until then "
                "these commands use the current best trial's config.json.")
    else:
        return ReuseInfo(None, None, None, [], "No trial has a comparable, non-collapsed FID yet: nothing to reuse.")
    commands = [("A long DDP run on the cluster", f"python -m search.train --config {path} --steps 50000 --workers 8"),
                ("On one device", f"python -m dcgan.train --config {path}")]
    if ranking.baseline is not None:  # the paper default on the same budget and a new seed, for comparison
        baseline = posixpath.join(root, TRIALS, ranking.baseline.trial_id, CONFIG_JSON)
        commands.append(("Against the paper default, on the same budget and a seed neither has seen",
                         f"python -m dcgan.train --config {path} --set steps=5000 --set seed=100 --out runs/winner\n"
                         f"python -m dcgan.train --config {baseline} --set steps=5000 --set seed=100 --out runs/paper\n"
                         "python -m dcgan.evaluate runs/winner --samples 10000; "
                         "python -m dcgan.evaluate runs/paper --samples 10000"))
    return ReuseInfo(best.trial_id if best else None, written, path, commands, note)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def format_timestamp(text: str | None) -> str:
    if not text:
        return "n/a"
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return text


# --- reports.compare --------------------------------------------------------------------------


class ComparisonInfo(NamedTuple):
    labels: tuple[str, str]  # what each experiment is called on the page (names, made distinct)
    comparable: bool  # same extractor, sample count and reference: FIDs may be set side by side
    note: str
    fids: tuple[list[float], list[float]]  # last FIDs of each experiment's ranked trials
    best: tuple[RankedTrial | None, RankedTrial | None]


def _get_comparison_info(a: Ranking, b: Ranking) -> ComparisonInfo:
    labels = (a.experiment_name, b.experiment_name)
    if labels[0] == labels[1]:
        labels = (f"A: {labels[0]}", f"B: {labels[1]}")
    comparable = a.protocol == b.protocol
    if comparable:
        note = f"Both experiments measure FID with {a.protocol.describe()}: their FIDs compare directly."
    else:
        note = (f"The FIDs are NOT comparable: {labels[0]} measures {a.protocol.describe()}, {labels[1]} measures "
                f"{b.protocol.describe()}. Compare rankings within each experiment only.")
    return ComparisonInfo(labels, comparable, note, ([r.fid for r in a.ranked], [r.fid for r in b.ranked]),
                          (a.best, b.best))
