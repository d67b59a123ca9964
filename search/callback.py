"""A driver-side Tune callback that writes the experiment directory (docs/experiment-layout.md)
through `experiment.Experiment` as results arrive: config, params, one results.jsonl row per
evaluation, and status.json on every change. (The sample grids are put there by the trials.) It
tells the search's trackers (search/tracking.py: TensorBoard, MLflow, W&B) what it wrote. A trial
that failed on a full disk ends the search (`stop_if_disk_full`), said in one line."""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Iterator, Optional

from ray import cloudpickle  # Tune's, which wrote a trial's error
from ray.tune import Callback
from ray.tune.experiment import Trial

from dcgan import keys
from dcgan.files import disk_full, one_line
from experiment.layout import (CONFIRM, EXPERIMENT_JSON, OPTUNA_DB, PARAMS_JSON, RESULTS_JSONL, TRIALS, Experiment,
                               confirm_name)
from experiment.lineage import read_lineage, record_exploit, start_lineage
from experiment.schema import DIVERGED, FAILED, RUNNING, final_status, result_row, same_params
from search.interrupt import stop_tune
from search.tracking import RunInfo, Trackers
from search.protocol import EXPLOITS, MEMBERS, PACK, REPLAYED, member_id
from search.trial import confirmation_overrides
from spaces import trial_config


# --- a full disk: the search stops as on Ctrl-C, in one line ----------------------------------------

FULL_DISK: list[OSError] = []  # the full disk that stopped this driver's Tune run, for search.tuner to say


class DiskFullWords(logging.Filter):
    """Drops Tune's traceback of a trial that failed on a full disk: the search says it in one line."""

    logger = "ray.tune.execution.tune_controller"

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and disk_full(record.exc_info[1]))


@contextlib.contextmanager
def disk_full_in_one_line() -> Iterator[None]:
    """Within: Tune's tracebacks of a full disk left out, and FULL_DISK empty at the start."""
    FULL_DISK.clear()
    words = DiskFullWords()
    logging.getLogger(DiskFullWords.logger).addFilter(words)
    try:
        yield
    finally:
        logging.getLogger(DiskFullWords.logger).removeFilter(words)


def stop_if_disk_full(trial) -> bool:
    """A trial that failed on a full disk stops the search at once, as Ctrl-C does (Tune saves its
    state, the trial resumes from its checkpoint with `--resume`), rather than Tune restarting it into
    the same full disk; search.tuner says so in one line (FULL_DISK). Where no Tune run listens for a
    stop, the error is raised out of Tuner.fit instead. True if the disk was full."""
    full = disk_full(trial_error(trial))
    if full is None:
        return False
    stop_on(full)
    return True


def stop_on(full: OSError) -> None:
    """Stop the Tune run as Ctrl-C does, on `full` (once), or raise it where no run listens."""
    if not FULL_DISK:
        FULL_DISK.append(full)
        if not stop_tune():
            raise full


def stops_on_full_disk(hook):
    """A callback hook whose write that fails on a full disk stops the search as a trial's does (Tune
    saves its state with the trial in it) instead of raising out of Tune's loop, which saves nothing."""

    @functools.wraps(hook)
    def guarded(*args, **kwargs):
        try:
            return hook(*args, **kwargs)
        except OSError as e:
            if (full := disk_full(e)) is None:
                raise
            stop_on(full)

    return guarded


def trial_error(trial) -> Optional[BaseException]:
    """The exception a failed trial raised (Ray's RayTaskError around it), from the file Tune has just
    written on the driver; None where there is none or it does not load."""
    path = getattr(trial, "pickled_error_file", None)
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return cloudpickle.load(f)
    except Exception:  # noqa: BLE001 - an error that cannot be read back is no full disk we can name
        return None


# --- the writers ----------------------------------------------------------------------------------

class ExperimentWriter(Callback):
    """Writes trials/<trial_id>/... for every trial of the search."""

    folder = TRIALS

    def __init__(self, experiment: Experiment, fixed: dict, steps: int, baseline_params: dict,
                 optuna_db: Optional[str] = None, trackers: Optional[Trackers] = None):
        self.experiment = experiment
        self.trackers = trackers or Trackers([])
        self.fixed = fixed
        self.steps = steps
        self.baseline_params = baseline_params
        self.optuna_db = optuna_db  # a local SQLite file to copy into remote storage, else None
        self._last_step: dict[str, int] = {}
        self._protocol_known = False

    def name_and_params(self, trial) -> tuple[str, dict]:
        """The trial's folder name and the overrides it trains with."""
        return trial.trial_id, dict(trial.config)

    def run_info(self, trial) -> RunInfo:
        name, params = self.name_and_params(trial)
        return RunInfo(self.experiment.name, self.folder, name, params, trial_config(self.fixed, params).to_dict())

    @stops_on_full_disk
    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        exp, run = self.experiment, self.run_info(trial)
        name, params = run.name, run.params
        exp.start_trial(name, params, run.config, self.folder)
        self._write_missing_last_result(trial, name)
        self.trackers.start(run)
        if self.folder == TRIALS and same_params(params, self.baseline_params) and set(params) == set(self.baseline_params):
            if exp.read_json(EXPERIMENT_JSON).get("baseline_trial_id") is None:
                exp.update_info(baseline_trial_id=name)
        self._sync_optuna_db()  # the study as the searcher just left it: with this trial asked

    def _write_missing_last_result(self, trial, name: str) -> None:
        """A trial restored by --resume whose last result (in Tune's saved state) is past its rows:
        the driver stopped while writing it (a full disk). The trial goes on after it, so write it now."""
        last = trial.last_result or {}
        if not isinstance(last.get(keys.STEP), int) or last.get(REPLAYED):
            return
        rows, _ = self.experiment.read_jsonl(self.folder, name, RESULTS_JSONL)
        if last[keys.STEP] > max((r[keys.STEP] for r in rows), default=0):
            self.experiment.append_result(name, result_row(last, last.get("time_total_s", 0.0)), self.folder)

    @stops_on_full_disk
    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if result.get(REPLAYED):  # already in the files: a resumed trial that had ended
            return
        exp, (name, _) = self.experiment, self.name_and_params(trial)
        row = result_row(result, result.get("time_total_s", 0.0))
        exp.append_result(name, row, self.folder)
        self._last_step[name] = row[keys.STEP]
        if row[keys.STATUS] != DIVERGED:
            exp.write_status(name, RUNNING, row[keys.STEP], folder=self.folder)
        for exploit in result.get(EXPLOITS) or ():
            self._exploited(name, exploit)
        if row.get(keys.EXTRACTOR) and not self._protocol_known:  # the FID protocol, from the first FID
            if exp.read_json(EXPERIMENT_JSON).get("extractor") is None:
                exp.update_info(extractor=row[keys.EXTRACTOR], reference=row.get(keys.REFERENCE),
                                eval_samples=row.get(keys.N))
            self._protocol_known = True
        if self.trackers:
            grid = exp.sample_parts(name, row[keys.STEP], self.folder)
            self.trackers.log(self.run_info(trial), row, exp.read_bytes(*grid) if exp.exists(*grid) else None)

    def _exploited(self, name: str, exploit: dict) -> None:
        """A packed member went on from another's weights (search/packed.py): its lineage and its
        values, as search.pbt records an exploit of Tune's; once, if a restart reports it again."""
        lineage, step = read_lineage(self.experiment, name), int(exploit["step"])
        if lineage and any(e.step == step and e.source == exploit["source"] for e in lineage.exploits):
            return
        record_exploit(self.experiment, name, step, exploit["source"], exploit["from_step"], exploit["params"])
        self.experiment.start_trial(name, exploit["params"], trial_config(self.fixed, exploit["params"]).to_dict(),
                                    self.folder)

    @stops_on_full_disk
    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        # The trial's own rows, not only Tune's last_result: a trial restored by --resume from an
        # older experiment state can end with no new result, and a stale last_result.
        name, _ = self.name_and_params(trial)
        rows, _ = self.experiment.read_jsonl(self.folder, name, RESULTS_JSONL)
        last = max([trial.last_result or {}, *rows], key=lambda r: int(r.get(keys.STEP, 0)))
        step = int(last.get(keys.STEP, self._last_step.get(name, 0)))
        status = final_status(last, self.steps)
        self.experiment.write_status(name, status, step, folder=self.folder)
        self.trackers.end(self.run_info(trial), status)
        self._sync_optuna_db()

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        stop_if_disk_full(trial)

    @stops_on_full_disk
    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        if stop_if_disk_full(trial):
            return  # not the trial's failure: it resumes with the search
        name, _ = self.name_and_params(trial)
        last = trial.last_result or {}
        step = int(last.get(keys.STEP, self._last_step.get(name, 0)))
        error = trial.get_error() if hasattr(trial, "get_error") else None
        self.experiment.write_status(name, FAILED, step, one_line(error or "the trial raised an error"),
                                     folder=self.folder)
        self.trackers.end(self.run_info(trial), FAILED)
        self._sync_optuna_db()

    def on_experiment_end(self, trials, **info) -> None:
        self.trackers.close()

    def _sync_optuna_db(self) -> None:
        if self.optuna_db:
            self.experiment.upload(self.optuna_db, OPTUNA_DB)


class ConfirmationWriter(ExperimentWriter):
    """Writes confirm/<trial_id>-seed<seed>/... for every confirmation run."""

    folder = CONFIRM

    def __init__(self, experiment: Experiment, fixed: dict, steps: int, params_of: dict, steps_override: Optional[int],
                 trackers: Optional[Trackers] = None):
        super().__init__(experiment, fixed, steps, baseline_params={}, trackers=trackers)
        self.params_of, self.steps_override = params_of, steps_override

    def name_and_params(self, trial) -> tuple[str, dict]:
        run = trial.config["run"]
        return confirm_name(run["trial"], run["seed"]), confirmation_overrides(self.params_of[run["trial"]], run["seed"],
                                                                               self.steps_override)


# --- the driver: members shown as trials -------------------------------------------------------------


class MemberView:
    """Member `trial_id` of the pack that Tune trial `pack` trains, as a callback written for trials
    reads one: its id, its values, its latest row; the pack's status and error."""

    def __init__(self, pack, trial_id: str, config: dict, last_result: dict, status: Optional[str] = None):
        self.pack, self.trial_id, self.config, self.last_result = pack, trial_id, config, last_result
        if status is not None:  # a pack that ends now: Tune sets its status only after the callbacks
            self.status = status

    def __getattr__(self, name: str):  # status, error_file, pickled_error_file, get_error, is_finished
        if "pack" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["pack"], name)


class ByMember(Callback):
    """A Tune callback that shows `inner` (the experiment's writer, the console: written for trials)
    every member of each pack as a trial of its own: one call for each member, its row for a pack's
    result, and the list of every member for Tune's list of trials. `lineage`: start each member's
    (search.pbt's schedulers do for Tune's trials); `ends_once`: a pack's end told with its last
    member only (the console's progress line), every member of it ended."""

    def __init__(self, inner, packs: list[list[dict]], experiment: Experiment, lineage: bool = False,
                 ends_once: bool = False):
        self.inner, self.packs, self.experiment = inner, packs, experiment
        self.lineage, self.ends_once = lineage, ends_once
        self.params: dict[str, dict] = {}  # member id -> its values since its last exploit

    def _views(self, trial, status: Optional[str] = None) -> list[MemberView]:
        rows = (trial.last_result or {}).get(MEMBERS) or {}
        views = []
        for k, first in enumerate(self.packs[int(trial.config[PACK])]):
            mid = member_id(trial.trial_id, k)
            if mid not in self.params:  # a resumed search: the values the member's files hold
                self.params[mid] = self.experiment.read_json(TRIALS, mid, PARAMS_JSON) or dict(first)
            row = rows.get(mid)
            last = {**row, "time_total_s": trial.last_result.get("time_total_s", 0.0)} if row else {}
            views.append(MemberView(trial, mid, self.params[mid], last, status))
        return views

    def _everyone(self, trials, ending=None, status: Optional[str] = None) -> list[MemberView]:
        return [v for t in trials for v in self._views(t, status if t is ending else None)]

    def _ended(self, hook: str, iteration, trials, trial, status: str, **info) -> None:
        views, everyone = self._views(trial, status), self._everyone(trials, trial, status)
        for view in views[-1:] if self.ends_once else views:
            getattr(self.inner, hook)(iteration, everyone, view, **info)

    def setup(self, **info) -> None:
        self.inner.setup(**info)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        for view in self._views(trial):
            if self.lineage:  # (search.pbt's schedulers start Tune's members' when Tune adds them)
                start_lineage(self.experiment, view.trial_id, view.config)
            self.inner.on_trial_start(iteration, self._everyone(trials), view, **info)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        for mid, row in (result.get(MEMBERS) or {}).items():
            if row.get(EXPLOITS) and not row.get(REPLAYED):
                self.params[mid] = dict(row[EXPLOITS][-1]["params"])
            row = {**row, "time_total_s": result.get("time_total_s", 0.0)}
            view = next(v for v in self._views(trial) if v.trial_id == mid)
            self.inner.on_trial_result(iteration, self._everyone(trials), view, row, **info)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._ended("on_trial_complete", iteration, trials, trial, Trial.TERMINATED, **info)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        for view in self._views(trial):
            self.inner.on_trial_recover(iteration, self._everyone(trials), view, **info)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._ended("on_trial_error", iteration, trials, trial, Trial.ERROR, **info)

    def on_experiment_end(self, trials, **info) -> None:
        self.inner.on_experiment_end(self._everyone(trials), **info)
