"""The checks of a search's or a run's flags that need no plan: resources, data, names, storage,
trackers, a config to read, a folder to resume. Each raises `SearchError` (a ConfigError) whose one-line
message names the fix. (search.plan turns flags into a Plan with them.)"""

from __future__ import annotations

import os
import shlex
from typing import Optional

from dcgan.config import ConfigError, TrainConfig
from dcgan.files import write_probe
from experiment.layout import Experiment, is_uri, open_fs, parent_uri, storage_uri
from experiment.storage import bad_name
from search.tracking import missing_package


class SearchError(ConfigError):
    """Bad input to the search; the message says how to fix it."""


def mlflow_uri(flag: Optional[str]) -> Optional[str]:
    """--mlflow's tracking URI: as given, $MLFLOW_TRACKING_URI for a bare --mlflow, a local FILE.db
    made sqlite:///<its absolute path> (so that --resume from another folder finds it); None without
    the flag."""
    if flag is None:
        return None
    uri = flag or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise SearchError("--mlflow without a URI takes $MLFLOW_TRACKING_URI, which is not set; pass --mlflow URI "
                          "(http://host:5000, sqlite:///mlflow.db, mlflow.db) or set MLFLOW_TRACKING_URI")
    if ":" in uri:
        return uri
    if not uri.endswith(".db"):
        raise SearchError(f"--mlflow {uri}: a local MLflow store is a SQLite file; pass --mlflow {uri}.db (or "
                          "sqlite:///PATH.db, or a tracking server's http://host:5000)")
    return "sqlite:///" + os.path.abspath(os.path.expanduser(uri))


def check_trackers(mlflow: Optional[str], wandb: Optional[str]) -> None:
    """The packages of the trackers asked for are installed."""
    for flag, value in (("mlflow", mlflow), ("wandb", wandb)):
        problem = missing_package(flag) if value else None
        if problem:
            raise SearchError(problem)


def read_config(where: str, flag: str = "--config") -> TrainConfig:
    """A TrainConfig JSON file (best_config.json, a trial's config.json): a local path or a URI."""
    if not is_uri(where):
        return TrainConfig.from_json(where)
    folder, name = parent_uri(where)
    try:
        text = Experiment(folder).read_text(name)
    except (OSError, ValueError) as e:
        raise SearchError(f"cannot read {flag} {where} ({' '.join(str(e).split())[:200]}); check the URI") from None
    return TrainConfig.from_json(text)


def resume_command(module: str, uri: str, default_storage: str, *flags: str) -> str:
    """The command that goes on with the experiment or run at `uri` (from the same folder):
    `python -m module FLAGS --name NAME [--storage ...] --resume`."""
    storage, name = parent_uri(uri)
    where = ["--storage", storage] if storage != storage_uri(default_storage) else []
    return shlex.join(["python", "-m", module, *flags, "--name", name, *where, "--resume"])


def check_resumable(folder: Experiment, marker: str, storage: str, what: str) -> None:
    """`folder` (an experiment, a run) holds `marker`, the file it starts with, for --resume."""
    try:
        found = folder.exists(marker)
    except OSError as e:
        raise SearchError(f"cannot read storage {storage} ({e}); check --storage") from None
    if not found:
        raise SearchError(f"no {what} '{parent_uri(folder.uri)[1]}' in {storage} to resume; check --name and --storage")


def check_gpus(gpus_per_worker: float, workers: int) -> None:
    """GPU shares Ray can place and NCCL can run."""
    if gpus_per_worker > 1 and not float(gpus_per_worker).is_integer():
        raise SearchError(f"--gpus-per-worker above 1 must be a whole number, got {gpus_per_worker}")
    if 0 < gpus_per_worker < 1 and workers > 1:
        raise SearchError(f"--gpus-per-worker {gpus_per_worker} with --workers-per-trial {workers} would put several "
                          "ranks of one trial on one GPU, which NCCL refuses; share GPUs between 1-worker trials "
                          "(--workers-per-trial 1), or give each worker a whole GPU")


def check_local_machine(cfg: TrainConfig, gpus_per_worker: float) -> None:
    """For a search on a local Ray: this machine has the device the trials ask for."""
    import torch

    from dcgan.distributed import check_device

    if gpus_per_worker and not torch.cuda.is_available():
        raise SearchError("--gpus-per-worker asks for a GPU, and this machine has none; drop it, or run on a GPU "
                          "machine or cluster (ray up cluster.yaml, then --address or RAY_ADDRESS)")
    check_device(cfg)


def check_capture(cfg: TrainConfig, gpus_per_worker: float, workers: int, workers_flag: str) -> None:
    """cuda_graph=true (dcgan/graph.py): each run (a trial, a long run) one process on a GPU."""
    if cfg.cuda_graph and (not gpus_per_worker or workers > 1):
        raise SearchError(f"cuda_graph=true replays each step on a GPU in one process: pass --gpus-per-worker and "
                          f"{workers_flag} 1, or drop it")


def check_dataset(cfg: TrainConfig, workers: int = 1) -> None:
    """The data loads, every image of it reads, and each worker's shard fills a batch (DataError,
    a ConfigError, says what to fix), before a trial starts."""
    from dcgan.data import check_data

    check_data(cfg, workers)


def check_name(name: str, flag: str = "--name") -> None:
    """An experiment's or a run's name: one folder of the storage, never a path out of it."""
    problem = bad_name(name)
    if problem:
        raise SearchError(f"{flag} {problem}; pass a name such as {flag} my-search-1")


def check_storage(storage: str, experiment: Experiment) -> None:
    """A local storage path must be creatable and writable; a URI must name a filesystem."""
    if is_uri(storage):
        try:
            open_fs(experiment.uri)
        except Exception as e:  # pyarrow raises several kinds for a bad URI
            raise SearchError(f"cannot open storage {storage} ({e}); check the URI and credentials") from None
    else:
        why = write_probe(storage)
        if why:
            raise SearchError(f"cannot write to storage {storage} ({why}); pass a writable --storage")
