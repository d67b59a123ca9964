"""A search's runs outside the experiment directory: TensorBoard event files (always, under
<experiment>/tensorboard/), an MLflow experiment (`--mlflow`) and a W&B project (`--wandb`).

search/trackers.py holds MLflow's and W&B's, and `make_trackers`. Every tracker is fed by the
experiment's own writer (search.callback.ExperimentWriter, on the driver), with what it writes: a run per trial (and per confirmation run), the trial's params and
config, each results.jsonl row under the keys of dcgan/keys.py at its training step, and the sample
grid the trial put in the experiment. So the three show the same numbers as the report, on the same
step axis, whatever Tune calls them.

Why not Ray's own callbacks (ray.tune.logger.TBXLoggerCallback, ray.air.integrations.mlflow.
MLflowLoggerCallback, ray.air.integrations.wandb.WandbLoggerCallback): they log Tune's result dicts,
with Tune's bookkeeping keys beside ours, at Tune's `training_iteration` (the count of reports, not
the GAN's step); a confirmation run's Tune config is {"run": {...}}, not its params; the sample grid
is not in a result; a run is keyed by Tune's Trial object, so a `--resume` opens a second MLflow run
for a trial (W&B's is started with resume=False); and the winner is named after Tune has ended.
Ray's TBX logger also writes `tune-<id>/events.*` under the experiment, which `tensorboard --logdir
<experiment>` would show beside ours: search.tuner turns Tune's automatic loggers off and keeps its
JSON and CSV ones.

A tracker that fails (a tracking server down) is named once on stderr and left out for the rest of
the search: a search never fails for its tracking.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from dcgan import keys
from experiment.layout import CONFIRM, TRIALS, Experiment, is_uri, parse_confirm_name
from experiment.schema import TIME_S

TENSORBOARD = "tensorboard"  # <experiment>/tensorboard/<trials|confirm>/<name>/events.out.tfevents.*
SAMPLES_TAG = "samples"  # the sample grid's name in TensorBoard and W&B (MLflow: the artifact folder)
WINNER = "winner"  # the tag (MLflow), tag and summary key (W&B) of the winner's runs
TRIAL, CONFIRMATION = "trial", "confirmation"  # a run's kind
# the numbers a row carries, by their names in dcgan/keys.py (strings, and the step, are not scalars)
SCALARS = tuple(k for k in (*keys.ROW_KEYS, TIME_S) if k not in (keys.STEP, keys.STATUS, keys.EXTRACTOR,
                                                                  keys.REFERENCE, keys.COLLAPSE, keys.REASON))
EXTRAS = {"mlflow": "mlflow", "wandb": "wandb"}  # flag -> the package it needs (pyproject's extra of that name)


@dataclass(frozen=True)
class RunInfo:
    """One tracked run: a trial (trials/<id>) or a confirmation run (confirm/<trial>-seed<s>)."""

    search: str  # the experiment's name
    folder: str  # TRIALS or CONFIRM
    name: str  # its folder's name
    params: dict[str, Any] = field(default_factory=dict)  # what the space sampled
    config: dict[str, Any] = field(default_factory=dict)  # its full TrainConfig

    @property
    def kind(self) -> str:
        return CONFIRMATION if self.folder == CONFIRM else TRIAL

    @property
    def key(self) -> str:
        return f"{self.folder}/{self.name}"

    def tags(self) -> dict[str, str]:
        """What names the run in a tracker: the search, its kind, its folder, and a confirmation's trial and seed."""
        tags = {"search": self.search, "kind": self.kind, "run": self.key}
        if self.kind == CONFIRMATION:
            trial, seed = parse_confirm_name(self.name)
            tags |= {"confirms": trial, "seed": str(seed)}
        return tags


def scalars(row: dict) -> dict[str, float]:
    """The row's finite numbers, by the project's names."""
    return {k: float(row[k]) for k in SCALARS
            if isinstance(row.get(k), (int, float)) and not isinstance(row[k], bool) and math.isfinite(row[k])}


def grid_array(png: bytes):
    """A sample grid PNG as an RGB array, (H, W, 3) uint8."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def missing_package(flag: str) -> Optional[str]:
    """One line naming the install when `flag`'s package is not importable, else None."""
    import importlib.util

    package = EXTRAS[flag]
    try:
        found = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return f"--{flag} needs the {package} package; install it with pip install -e '.[{package}]' (or drop --{flag})"
    return None


class Tracker:
    """What a tracker is told, in order: start, log (each evaluation), end; `tag` after Tune has
    ended; `close` at the end of each Tune run. Each one pickles without its live state (Tune
    pickles callbacks) and opens it again on first use."""

    label = "tracker"

    def start(self, run: RunInfo) -> None:
        pass

    def log(self, run: RunInfo, row: dict, grid: Optional[bytes]) -> None:
        pass

    def end(self, run: RunInfo, status: str) -> None:
        pass

    def tag(self, run: RunInfo, tags: dict[str, str]) -> None:
        pass

    def close(self) -> None:
        pass


class Trackers:
    """Every tracker of a search, told the same thing; one that raises is named once on stderr and
    left out from then on."""

    def __init__(self, trackers: list[Tracker]):
        self.trackers = list(trackers)

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def _each(self, method: str, *args: Any) -> None:
        for tracker in list(self.trackers):
            try:
                getattr(tracker, method)(*args)
            except Exception as e:  # a tracker's own error, whatever its kind: never the search's
                self.trackers.remove(tracker)
                print(f"warning: {tracker.label} tracking stopped ({type(e).__name__}: {' '.join(str(e).split())[:300]}); "
                      "the experiment directory has everything", file=sys.stderr)

    def start(self, run: RunInfo) -> None:
        self._each("start", run)

    def log(self, run: RunInfo, row: dict, grid: Optional[bytes]) -> None:
        self._each("log", run, row, grid)

    def end(self, run: RunInfo, status: str) -> None:
        self._each("end", run, status)

    def tag(self, run: RunInfo, tags: dict[str, str]) -> None:
        self._each("tag", run, tags)

    def close(self) -> None:
        self._each("close")


def tune_loggers() -> list:
    """Tune's JSON and CSV loggers (tune-<id>/result.json, progress.csv), which Tune adds by itself
    unless TUNE_DISABLE_AUTO_CALLBACK_LOGGERS is set: search.tuner sets it, to leave out Tune's
    TensorBoard logger, and passes these."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [JsonLoggerCallback(), CSVLoggerCallback()]


def tag_winner(trackers: Trackers, experiment: Experiment, search: str, trial_id: str) -> None:
    """The winner's run, and its confirmation runs, tagged `winner` (after Tune has ended)."""
    runs = [RunInfo(search, TRIALS, trial_id)] + [
        RunInfo(search, CONFIRM, name) for name in experiment.trial_ids(CONFIRM)
        if parse_confirm_name(name)[0] == trial_id]
    for run in runs:
        trackers.tag(run, {WINNER: "true"})


class TensorBoard(Tracker):
    """Event files per run under <experiment>/tensorboard/ (tensorboardX, a Ray Tune dependency):
    every scalar of a row at its step, the sample grid as an image, the params as text. For an
    experiment in remote storage they are written to a local cache and uploaded after each
    evaluation (tensorboardX cannot write to every pyarrow URI, e.g. S3 with endpoint_override), a
    file per evaluation.
    A run restarted from a checkpoint opens a new file that purges the steps it trains again."""

    label = "TensorBoard"

    def __init__(self, experiment: Experiment):
        self.experiment = experiment
        self._writers: dict[str, Any] = {}

    def __getstate__(self) -> dict:
        return {"experiment": self.experiment, "_writers": {}}

    def local_dir(self, run: RunInfo) -> str:
        if not is_uri(self.experiment.uri):
            return self.experiment.path(TENSORBOARD, run.folder, run.name)
        from dcgan.metrics.cache import cache_root

        key = hashlib.sha1(self.experiment.uri.encode()).hexdigest()[:12]
        return os.path.join(cache_root(), TENSORBOARD, key, run.folder, run.name)

    def log(self, run: RunInfo, row: dict, grid: Optional[bytes]) -> None:
        step = int(row[keys.STEP])
        writer = self._writers.get(run.key)
        if writer is None:
            from tensorboardX import SummaryWriter

            # a file of its own, named after the last (TensorBoard reads a run's files in name order,
            # and the names tensorboardX gives two writers in one second are the same)
            writer = self._writers[run.key] = SummaryWriter(self.local_dir(run), purge_step=step, flush_secs=10,
                                                            filename_suffix=f".{time.time_ns()}")
            writer.add_text("params", json.dumps(run.params, sort_keys=True), step)
        for name, value in scalars(row).items():
            writer.add_scalar(name, value, step)
        if grid is not None:
            writer.add_image(SAMPLES_TAG, grid_array(grid), step, dataformats="HWC")
        if is_uri(self.experiment.uri):
            # closed, so that the upload holds this evaluation: tensorboardX's flush() does not wait
            # for its writer thread's queue; the next evaluation opens a file of its own
            self.end(run, "")
        else:
            writer.flush()

    def end(self, run: RunInfo, status: str) -> None:
        writer = self._writers.pop(run.key, None)
        if writer is not None:
            writer.close()
            self._upload(run)

    def close(self) -> None:
        for key in list(self._writers):
            folder, name = key.split("/", 1)
            self.end(RunInfo("", folder, name), "")

    def _upload(self, run: RunInfo) -> None:
        if not is_uri(self.experiment.uri):
            return
        local = self.local_dir(run)
        for name in sorted(os.listdir(local)):
            self.experiment.upload(os.path.join(local, name), TENSORBOARD, run.folder, run.name, name)
