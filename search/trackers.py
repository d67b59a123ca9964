"""A search's trackers (`make_trackers`), and the optional ones (search/tracking.py says what each
is told, and why not Ray's callbacks): MLflow (`--mlflow URI`, `pip install -e '.[mlflow]'`) and W&B
(`--wandb PROJECT`, `pip install -e '.[wandb]'`). Both run on the driver only.

MLflow: an experiment named after the search; a run per trial and per confirmation run, named after
its folder, tagged search/kind/run (and confirms/seed), with the sampled params as params, the full
config as `config.json`, every number of a row as a metric at its step, the sample grids as
artifacts under `samples/`, and at its end a `status` tag (the word of status.json). The winner's
runs get `winner=true`. A `--resume` finds a trial's run by its `run` tag and goes on in it.

W&B: a run per trial and confirmation run in the project, grouped by the search, its id
`<search>-<folder>-<name>` (so a `--resume` goes on in it), job type trial or confirmation, the
full config as its config, the same numbers and the grid (`samples`) at each step.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from typing import Any, Optional

from dcgan import keys
from experiment.layout import CONFIG_JSON, sample_name
from experiment.schema import ENDED, FAILED
from search.tracking import SAMPLES_TAG, RunInfo, TensorBoard, Tracker, Trackers, grid_array, scalars


def make_trackers(plan) -> Trackers:
    """A search.plan.Plan's trackers: TensorBoard under its experiment, MLflow (a tracking URI) and
    W&B (a project) where planned."""
    trackers: list[Tracker] = [TensorBoard(plan.experiment)]
    if plan.mlflow:
        trackers.append(MLflowTracker(plan.mlflow, plan.name))
    if plan.wandb:
        trackers.append(WandbTracker(plan.wandb, plan.name))
    return Trackers(trackers)


class MLflowTracker(Tracker):
    """Runs in the MLflow experiment named after the search, through mlflow's client (no global run)."""

    label = "MLflow"

    def __init__(self, tracking_uri: str, search: str):
        self.tracking_uri, self.search = tracking_uri, search
        self._client: Any = None
        self._experiment_id: Optional[str] = None
        self._run_ids: dict[str, str] = {}

    def __getstate__(self) -> dict:
        return {"tracking_uri": self.tracking_uri, "search": self.search, "_client": None,
                "_experiment_id": None, "_run_ids": {}}

    @property
    def client(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
            found = self._client.get_experiment_by_name(self.search)
            self._experiment_id = (found.experiment_id if found is not None else
                                   self._client.create_experiment(self.search, mlflow_artifacts(self.tracking_uri)))
        return self._client

    def run_id(self, run: RunInfo, create: bool = True) -> Optional[str]:
        """The run's id: known, found by its `run` tag (a resumed search), or created with its params."""
        if run.key in self._run_ids:
            return self._run_ids[run.key]
        client = self.client
        found = client.search_runs([self._experiment_id], filter_string=f"tags.run = '{run.key}'", max_results=1)
        if found:
            run_id = found[0].info.run_id
        elif not create:
            return None
        else:
            from mlflow.entities import Param

            run_id = client.create_run(self._experiment_id, run_name=run.name, tags=run.tags()).info.run_id
            client.log_batch(run_id, params=[Param(k, str(v)) for k, v in sorted(run.params.items())])
            client.log_dict(run_id, run.config, CONFIG_JSON)
        self._run_ids[run.key] = run_id
        return run_id

    def start(self, run: RunInfo) -> None:
        run_id = self.run_id(run)
        if self.client.get_run(run_id).info.status != "RUNNING":  # going on after a --resume
            self.client.update_run(run_id, status="RUNNING")

    def log(self, run: RunInfo, row: dict, grid: Optional[bytes]) -> None:
        from mlflow.entities import Metric

        run_id, step, now = self.run_id(run), int(row[keys.STEP]), int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in scalars(row).items()])
        if row.get(keys.COLLAPSE):
            self.client.set_tag(run_id, keys.COLLAPSE, row[keys.COLLAPSE])  # the latest verdict
        if grid is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, sample_name(step))
                with open(path, "wb") as f:
                    f.write(grid)
                self.client.log_artifact(run_id, path, SAMPLES_TAG)

    def end(self, run: RunInfo, status: str) -> None:
        run_id = self.run_id(run)
        self.client.set_tag(run_id, "status", status)
        self.client.set_terminated(run_id, "FAILED" if status == FAILED else "FINISHED")

    def tag(self, run: RunInfo, tags: dict[str, str]) -> None:
        run_id = self.run_id(run, create=False)
        for k, v in tags.items():
            if run_id is not None:
                self.client.set_tag(run_id, k, v)


def mlflow_artifacts(tracking_uri: str) -> Optional[str]:
    """Where a new experiment's artifacts go: for a SQLite store, `mlartifacts/` beside its file (MLflow's
    default, ./mlruns, is the working folder's); else None, the server's choice."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return os.path.join(os.path.dirname(os.path.abspath(tracking_uri[len(prefix):])), "mlartifacts")


def wandb_run_id(run: RunInfo) -> str:
    """`<search>-<folder>-<name>` in the characters W&B allows in an id."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{run.search}-{run.folder}-{run.name}")[:128]


class WandbTracker(Tracker):
    """Runs in the W&B project, one wandb Run object each (reinit="create_new": several at once in
    the driver). Offline (WANDB_MODE=offline) they are folders under $WANDB_DIR/wandb/ for `wandb sync`."""

    label = "W&B"

    def __init__(self, project: str, search: str):
        self.project, self.search = project, search
        self._runs: dict[str, Any] = {}

    def __getstate__(self) -> dict:
        return {"project": self.project, "search": self.search, "_runs": {}}

    def _init(self, run: RunInfo, **kwargs: Any):
        import wandb

        # console="off": wandb would otherwise wrap the driver's stdout, where the search prints
        settings = wandb.Settings(console="off", silent=True, x_disable_stats=True)
        return wandb.init(project=self.project, id=wandb_run_id(run), name=run.name, group=self.search,
                          job_type=run.kind, resume="allow", reinit="create_new", settings=settings, **kwargs)

    def start(self, run: RunInfo) -> None:
        if run.key not in self._runs:
            self._runs[run.key] = self._init(run, config={**run.config, "params": run.params, **run.tags()},
                                             tags=[run.kind])

    def log(self, run: RunInfo, row: dict, grid: Optional[bytes]) -> None:
        import wandb

        if run.key not in self._runs:
            self.start(run)
        step = int(row[keys.STEP])
        data: dict[str, Any] = dict(scalars(row))
        if grid is not None:
            data[SAMPLES_TAG] = wandb.Image(grid_array(grid), caption=f"{run.name} step {step}")
        self._runs[run.key].log(data, step=step)
        if row.get(keys.COLLAPSE):
            self._runs[run.key].summary[keys.COLLAPSE] = row[keys.COLLAPSE]

    def end(self, run: RunInfo, status: str) -> None:
        wb = self._runs.pop(run.key, None)
        if wb is not None:
            wb.summary["status"] = status
            wb.finish(exit_code=0 if status in ENDED else 1)

    def tag(self, run: RunInfo, tags: dict[str, str]) -> None:
        # W&B offline cannot read a run's tags back: they are set whole, the kind's tag first
        wb = self._init(run)
        wb.tags = (run.kind, *sorted(tags))
        wb.summary.update(tags)
        wb.finish()

    def close(self) -> None:
        for key in list(self._runs):
            self._runs.pop(key).finish()
