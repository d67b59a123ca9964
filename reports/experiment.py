"""Read an experiment directory (docs/experiment-layout.md) into plain data.

The directory is a local path or a URI that `pyarrow.fs.FileSystem.from_uri` opens
(`file://`, `s3://`, `gs://`). Only the files of the contract are read: never Ray Tune's
own files, which sit beside them. A search that is still running is a valid input:
trials may have no results yet, `finished_at` may be null, the last line of a
`results.jsonl` may be half written.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

import pyarrow.fs as pafs

TRIAL_STATUSES = ("pending", "running", "completed", "stopped", "diverged", "failed")


class ExperimentError(ValueError):
    """The input is not a readable experiment; the message says what to do."""


@dataclass(frozen=True)
class Location:
    """A directory on some filesystem: what `from_uri` returns, kept together."""

    fs: pafs.FileSystem
    path: str  # the filesystem's own path (no scheme)
    display: str  # what the user typed, for messages and commands

    def join(self, *parts: str) -> str:
        return posixpath.join(self.path, *parts)


@dataclass(frozen=True)
class Trial:
    trial_id: str
    params: dict[str, Any]  # what the space sampled
    config: dict[str, Any]  # the full TrainConfig
    status: str  # one of TRIAL_STATUSES
    status_step: int | None
    error: str | None
    results: list[dict[str, Any]]  # results.jsonl rows, in file order; non-finite FIDs are None
    sample_paths: dict[int, str]  # step -> path of the fixed-noise grid PNG (filesystem path)
    unreadable_lines: int = 0

    @property
    def evaluations(self) -> list[dict[str, Any]]:
        """Rows that came from an evaluation (they carry an `fid` key, possibly null), by step.

        A trial resumed from a checkpoint evaluates some steps again: the later row wins.
        """
        by_step = {int(r["step"]): r for r in self.results if "fid" in r}
        return [by_step[s] for s in sorted(by_step)]

    @property
    def steps_reached(self) -> int:
        steps = [int(r["step"]) for r in self.results if isinstance(r.get("step"), (int, float))]
        return max([self.status_step or 0, *steps])

    @property
    def time_s(self) -> float:
        times = [float(r["time_s"]) for r in self.results if _is_number(r.get("time_s"))]
        return max(times, default=0.0)


@dataclass(frozen=True)
class Experiment:
    location: Location
    meta: dict[str, Any]  # experiment.json
    trials: list[Trial]
    best_config: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or posixpath.basename(self.location.path.rstrip("/")))

    def trial(self, trial_id: str) -> Trial:
        for t in self.trials:
            if t.trial_id == trial_id:
                return t
        raise KeyError(trial_id)


# --- locations --------------------------------------------------------------------------------


def is_uri(text: str) -> bool:
    return "://" in text


def open_location(where: str) -> Location:
    """A local path or a URI -> Location. Relative local paths are made absolute."""
    if is_uri(where):
        try:
            fs, path = pafs.FileSystem.from_uri(where)
        except (ValueError, OSError) as e:  # pyarrow.lib.ArrowInvalid is a ValueError
            raise ExperimentError(f"cannot open {where}: {_one_line(e)}") from None
        return Location(fs, path.rstrip("/") or "/", where)
    return Location(pafs.LocalFileSystem(), os.path.abspath(where), where)


def read_bytes(location: Location, path: str) -> bytes:
    with location.fs.open_input_stream(path) as f:
        return f.read()


def _read_text(location: Location, path: str) -> str | None:
    """The file's text, or None when it does not exist."""
    info = location.fs.get_file_info(path)
    if info.type != pafs.FileType.File:
        return None
    return read_bytes(location, path).decode("utf-8")


def _read_json(location: Location, path: str) -> Any | None:
    text = _read_text(location, path)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        # A file rewritten without a rename could be caught half written: say which one.
        raise ExperimentError(f"{path} is not valid JSON ({e.msg}, line {e.lineno}); "
                              "rerun once the search has rewritten it") from None


def copy_to_local(location: Location, path: str) -> str:
    """Copy one file to a temporary local file (SQLite needs a real local file); returns its path.

    The caller deletes it. Local files are copied too, so a live search's database is never
    opened, and so never locked or migrated, by the report.
    """
    fd, tmp = tempfile.mkstemp(suffix=posixpath.splitext(path)[1])
    with os.fdopen(fd, "wb") as out, location.fs.open_input_stream(path) as src:
        shutil.copyfileobj(src, out)
    return tmp


# --- reading ----------------------------------------------------------------------------------


def check_experiment_dir(where: str) -> Location:
    """Cheap checks that `where` is an experiment directory (it holds experiment.json)."""
    location = open_location(where)
    try:
        info = location.fs.get_file_info(location.path)
        has_meta = location.fs.get_file_info(location.join("experiment.json")).type == pafs.FileType.File
    except OSError as e:
        raise ExperimentError(f"cannot read {where}: {_one_line(e)}") from None
    if info.type != pafs.FileType.Directory:
        raise ExperimentError(f"{where} is not a directory; pass an experiment directory "
                              "(the one holding experiment.json)")
    if not has_meta:
        raise ExperimentError(f"{where} is not an experiment: it has no experiment.json; pass "
                              "<storage>/<experiment name>, the directory search.run created")
    return location


def load_experiment(where: str) -> Experiment:
    """Read experiment.json, best_config.json and every trial directory under `where`."""
    location = check_experiment_dir(where)
    meta = _read_json(location, location.join("experiment.json"))
    if not isinstance(meta, dict):
        raise ExperimentError(f"{location.join('experiment.json')} is not a JSON object; it is not an "
                              "experiment.json that search.run wrote")
    trials = [_load_trial(location, trial_dir) for trial_dir in _trial_dirs(location)]
    best = _read_json(location, location.join("best_config.json"))
    return Experiment(location, meta, trials, best if isinstance(best, dict) else None)


def _trial_dirs(location: Location) -> list[str]:
    root = location.join("trials")
    if location.fs.get_file_info(root).type != pafs.FileType.Directory:
        return []
    infos = location.fs.get_file_info(pafs.FileSelector(root, recursive=False))
    return sorted(i.path for i in infos if i.type == pafs.FileType.Directory)


def _load_trial(location: Location, trial_dir: str) -> Trial:
    trial_id = posixpath.basename(trial_dir)
    params = _read_json(location, posixpath.join(trial_dir, "params.json")) or {}
    config = _read_json(location, posixpath.join(trial_dir, "config.json")) or {}
    status = _read_json(location, posixpath.join(trial_dir, "status.json")) or {}
    results, unreadable = _read_results(location, posixpath.join(trial_dir, "results.jsonl"))
    state = status.get("status")
    if state not in TRIAL_STATUSES:
        # No status.json yet (or an unknown word): trust the last row, else it has not started.
        state = results[-1].get("status", "running") if results else "pending"
        state = state if state in TRIAL_STATUSES else "running"
    step = status.get("step")
    return Trial(
        trial_id=trial_id,
        params=params,
        config=config,
        status=state,
        status_step=int(step) if _is_number(step) else None,
        error=status.get("error"),
        results=results,
        sample_paths=_sample_paths(location, posixpath.join(trial_dir, "samples")),
        unreadable_lines=unreadable,
    )


def _read_results(location: Location, path: str) -> tuple[list[dict[str, Any]], int]:
    text = _read_text(location, path)
    if text is None:
        return [], 0
    rows, unreadable = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            unreadable += 1  # most often the last line, still being appended
            continue
        if not isinstance(row, dict) or not _is_number(row.get("step")):
            unreadable += 1
            continue
        if "fid" in row and not (_is_number(row["fid"]) and math.isfinite(row["fid"])):
            row["fid"] = None  # NaN / Infinity / null all mean "no FID": the trial diverged
        rows.append(row)
    return rows, unreadable


def _sample_paths(location: Location, samples_dir: str) -> dict[int, str]:
    if location.fs.get_file_info(samples_dir).type != pafs.FileType.Directory:
        return {}
    out = {}
    for info in location.fs.get_file_info(pafs.FileSelector(samples_dir, recursive=False)):
        name = info.base_name
        if info.type == pafs.FileType.File and name.startswith("step_") and name.endswith(".png"):
            try:
                out[int(name[len("step_"):-len(".png")])] = info.path
            except ValueError:
                continue
    return dict(sorted(out.items()))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
