"""The experiment directory (docs/experiment-layout.md): its one reader and writer.

`Experiment(uri)` opens `<storage>/<name>/` as a local path or a URI (`file://`, `s3://`, `gs://`,
anything `pyarrow.fs.FileSystem.from_uri` opens); every read and write goes through pyarrow.fs,
so the same code serves a laptop disk and a bucket. `search/` writes through it as results arrive;
`reports/` reads it, and a search that is still running is a valid input: trials may have no
results yet, `finished_at` may be null, the last line of a results.jsonl may be half written.
Only the files of the contract are read, never Ray Tune's own files beside them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import posixpath
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pyarrow.fs as pafs

from dcgan import keys
from dcgan.files import BEST_CONFIG_JSON, EXPERIMENT_JSON, before_write, one_line
from experiment.schema import ENDED, EXPERIMENT_FIELDS, PENDING, RUNNING, TIME_S, TRIAL_STATUSES, is_number, json_safe

OPTUNA_DB, REPORT_HTML = "optuna.db", "report.html"
TRIALS, CONFIRM = "trials", "confirm"  # confirm/: the confirmation runs, in the layout of trials/
CONFIG_JSON, PARAMS_JSON, RESULTS_JSONL, STATUS_JSON, SAMPLES = ("config.json", "params.json", "results.jsonl",
                                                                 "status.json", "samples")
LINEAGE_JSON = "lineage.json"  # a PBT member's params and exploits (experiment/lineage.py)
TRAINER_RUN = "train"  # a multi-worker trial's Ray Train run, inside its Ray trial folder
DRIVER_LOCK = "driver.lock"  # the driver that holds the experiment (search/lock.py), while it runs


class ExperimentError(ValueError):
    """The input is not a readable experiment; the message says what to do."""


def is_uri(path: str) -> bool:
    return "://" in path


def storage_uri(storage: str) -> str:
    """A local path becomes absolute (Ray and pyarrow need that); a URI stays as it is."""
    return storage if is_uri(storage) else os.path.abspath(os.path.expanduser(storage))


def open_fs(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or a URI."""
    if is_uri(uri):
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), uri


def join_uri(base: str, *parts: str) -> str:
    """`base/part/...` for a path or a URI; a URI's query (s3://b/x?endpoint_override=...) stays at the end."""
    head, sep, query = base.partition("?")
    return "/".join([head.rstrip("/"), *parts]) + sep + query


def parent_uri(uri: str) -> tuple[str, str]:
    """(parent, name) of a path or a URI, the query kept on the parent."""
    head, sep, query = uri.partition("?")
    parent, _, name = head.rstrip("/").rpartition("/")
    return parent + sep + query, name


def ray_trial_dir(trial_id: str) -> str:
    """The Ray trial folder beside the contract's files: Tune's own files and the trial's checkpoints
    (`checkpoint_*/`, or `train/checkpoint_*/` for a multi-worker trial)."""
    return f"tune-{trial_id}"


def confirm_name(trial_id: str, seed: int) -> str:
    """The folder of the confirmation run of `trial_id` with `seed`, under confirm/."""
    return f"{trial_id}-seed{seed}"


def parse_confirm_name(name: str) -> tuple[str, int]:
    trial_id, _, seed = name.rpartition("-seed")
    return trial_id, int(seed)


def sample_name(step: int) -> str:
    return f"step_{step:07d}.png"


@dataclass(frozen=True)
class Trial:
    """One trial's files, as read."""

    trial_id: str
    params: dict[str, Any]  # what the space sampled
    config: dict[str, Any]  # the full TrainConfig
    status: str  # one of TRIAL_STATUSES
    status_step: int | None
    error: str | None
    results: list[dict[str, Any]]  # results.jsonl rows, in file order; non-finite numbers are None
    sample_paths: dict[int, str]  # step -> the fixed-noise grid, a path inside the experiment
    unreadable_lines: int = 0

    @property
    def evaluations(self) -> list[dict[str, Any]]:
        """Rows that came from an evaluation (they carry an `fid` key, possibly null), by step.
        A trial resumed from a checkpoint evaluates some steps again: the later row wins."""
        by_step = {int(r[keys.STEP]): r for r in self.results if keys.FID in r}
        return [by_step[s] for s in sorted(by_step)]

    @property
    def steps_reached(self) -> int:
        steps = [int(r[keys.STEP]) for r in self.results if is_number(r.get(keys.STEP))]
        return max([self.status_step or 0, *steps])

    @property
    def time_s(self) -> float:
        return max((float(r[TIME_S]) for r in self.results if is_number(r.get(TIME_S))), default=0.0)


class Experiment:
    """One experiment directory: the files' primitives, the writer's methods, and the reader's
    view (`meta`, `trials`, `best_config`), read on first use; a new Experiment reads again."""

    def __init__(self, uri: str, display: Optional[str] = None):
        self.uri = join_uri(storage_uri(uri))  # no trailing slash; a query stays at the end
        self.display = display or uri  # what the user typed, for messages
        self._fs: Optional[pafs.FileSystem] = None
        self._root: Optional[str] = None

    @classmethod
    def open(cls, where: str) -> "Experiment":
        """An existing experiment (a folder holding experiment.json); ExperimentError if not."""
        exp = cls(where)
        try:
            kind = exp.fs.get_file_info(exp.root).type
            has_meta = exp.exists(EXPERIMENT_JSON)
        except (ValueError, OSError) as e:  # pyarrow.lib.ArrowInvalid is a ValueError
            raise ExperimentError(f"cannot read {where}: {one_line(e)}") from None
        if kind != pafs.FileType.Directory:
            raise ExperimentError(f"{where} is not a directory; pass an experiment directory "
                                  "(the one holding experiment.json)")
        if not has_meta:
            raise ExperimentError(f"{where} is not an experiment: it has no experiment.json; pass "
                                  "<storage>/<experiment name>, the directory search.run created")
        return exp

    # pyarrow filesystems do not pickle everywhere; Tune pickles callbacks, so open lazily
    def __getstate__(self) -> dict:
        return {"uri": self.uri, "display": self.display, "_fs": None, "_root": None}

    @property
    def fs(self) -> pafs.FileSystem:
        if self._fs is None:
            self._fs, root = open_fs(self.uri)
            self._root = root.rstrip("/") or "/"
        return self._fs

    @property
    def root(self) -> str:
        self.fs
        return self._root

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or posixpath.basename(self.root))

    # --- primitives ----------------------------------------------------------------------------

    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound

    def read_bytes(self, *parts: str) -> bytes:
        with self.fs.open_input_stream(self.path(*parts)) as f:
            return f.read()

    def read_text(self, *parts: str) -> str:
        return self.read_bytes(*parts).decode("utf-8")

    def write_bytes(self, data: bytes, *parts: str) -> None:
        """Whole-file write via a temporary name where the filesystem can rename (local)."""
        target = self.path(*parts)
        before_write(target)
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        local = isinstance(self.fs, pafs.LocalFileSystem)  # an object store writes a whole object anyway
        tmp = target + ".tmp" if local else target
        try:
            with self.fs.open_output_stream(tmp) as f:
                f.write(data)
            if local:
                self.fs.move(tmp, target)
        except BaseException:  # a full disk: the old file stays, no half-written one beside it
            if local:
                with contextlib.suppress(OSError):
                    self.fs.delete_file(tmp)
            raise

    def write_text(self, text: str, *parts: str) -> None:
        self.write_bytes(text.encode(), *parts)

    def read_json(self, *parts: str, default: Any = None) -> Any:
        """The file's JSON, or `default` when it does not exist."""
        if self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.File:
            return default
        try:
            return json.loads(self.read_text(*parts))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            # every write is whole (a rename, an object): a file that does not parse was damaged
            why = f"{e.msg}, line {e.lineno}" if isinstance(e, json.JSONDecodeError) else "not UTF-8 text"
            raise ExperimentError(f"{self.path(*parts)} is damaged (not valid JSON: {why})") from None

    def write_json(self, value: Any, *parts: str) -> None:
        self.write_text(json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n", *parts)

    def read_jsonl(self, *parts: str) -> tuple[list[dict], int]:
        """(rows that carry a step, count of unreadable lines). Non-finite FIDs read as None."""
        if not self.exists(*parts):
            return [], 0
        rows, unreadable = [], 0
        for line in self.read_bytes(*parts).decode("utf-8", errors="replace").splitlines():  # damage: unreadable
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                unreadable += 1  # most often the last line, still being appended
                continue
            if not isinstance(row, dict) or not is_number(row.get(keys.STEP)):
                unreadable += 1
                continue
            rows.append(json_safe(row))  # NaN, Infinity (Python's json reads them): null
        return rows, unreadable

    def upload(self, local_file: str | Path, *parts: str) -> None:
        self.write_bytes(Path(local_file).read_bytes(), *parts)  # whole, as every write (a grid, the study)

    def copy_to_local(self, *parts: str) -> str:
        """Copy one file to a temporary local file (SQLite needs one); the caller deletes it.
        Local files are copied too, so a live search's database is never opened, so never locked
        or migrated, by a reader."""
        fd, tmp = tempfile.mkstemp(suffix=posixpath.splitext(parts[-1])[1])
        with os.fdopen(fd, "wb") as out, self.fs.open_input_stream(self.path(*parts)) as src:
            shutil.copyfileobj(src, out)
        return tmp

    # --- the writer ----------------------------------------------------------------------------

    def write_info(self, info: dict[str, Any]) -> None:
        """experiment.json, whole: exactly the fields of EXPERIMENT_FIELDS."""
        missing = [k for k in EXPERIMENT_FIELDS if k not in info]
        unknown = [k for k in info if k not in EXPERIMENT_FIELDS]
        if missing or unknown:
            raise ValueError(f"experiment.json fields: missing {missing}, unknown {unknown}")
        self.write_json({k: info[k] for k in EXPERIMENT_FIELDS}, EXPERIMENT_JSON)

    def update_info(self, **changes: Any) -> dict[str, Any]:
        """Read experiment.json, change some fields, write it back; returns the new info. A field the
        file has not got (an experiment from before it existed) is written null."""
        info = {**dict.fromkeys(EXPERIMENT_FIELDS), **self.read_json(EXPERIMENT_JSON), **changes}
        self.write_info(info)
        return info

    def start_trial(self, trial_id: str, params: dict[str, Any], config: dict[str, Any], folder: str = TRIALS) -> None:
        """A trial's params.json, config.json and an empty results.jsonl, so readers find every
        file from its start; status running (at its last step, when restarted). A trial that had
        ended keeps its status: restored by a resumed search, it only reports its end again."""
        self.write_json(params, folder, trial_id, PARAMS_JSON)
        self.write_json(config, folder, trial_id, CONFIG_JSON)
        if not self.exists(folder, trial_id, RESULTS_JSONL):
            self.write_text("", folder, trial_id, RESULTS_JSONL)
        if self.trial_status(trial_id, folder) in ENDED:
            return
        rows, _ = self.read_jsonl(folder, trial_id, RESULTS_JSONL)
        self.write_status(trial_id, RUNNING, max((r[keys.STEP] for r in rows), default=0), folder=folder)

    def trial_status(self, trial_id: str, folder: str = TRIALS) -> Optional[str]:
        """status.json's word, or None before the trial has one."""
        return (self.read_json(folder, trial_id, STATUS_JSON) or {}).get("status")

    def append_result(self, trial_id: str, row: dict, folder: str = TRIALS) -> None:
        """Append one evaluation to results.jsonl. Rows at or after its step are dropped first:
        a trial restarted from a checkpoint reports those steps again. (Read and rewrite, since
        object stores cannot append; the file holds one short line per evaluation.)"""
        rows, _ = self.read_jsonl(folder, trial_id, RESULTS_JSONL)
        rows = [r for r in rows if r[keys.STEP] < row[keys.STEP]] + [json_safe(row)]
        self.write_text("".join(json.dumps(r, allow_nan=False) + "\n" for r in rows), folder, trial_id, RESULTS_JSONL)

    def write_status(self, trial_id: str, status: str, step: int, error: Optional[str] = None,
                     folder: str = TRIALS) -> None:
        assert status in TRIAL_STATUSES, status
        self.write_json({"status": status, "step": int(step), "error": error}, folder, trial_id, STATUS_JSON)

    def last_checkpoint(self, trial_id: str) -> Optional[str]:
        """The path or URI of a trial's last checkpoint folder (Tune's `checkpoint_*`, in its Ray
        trial folder, or in its Ray Train run's for a multi-worker trial), or None."""
        for parts in ((ray_trial_dir(trial_id),), (ray_trial_dir(trial_id), TRAINER_RUN)):
            if self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.Directory:
                continue
            found = sorted(i.base_name for i in self.fs.get_file_info(pafs.FileSelector(self.path(*parts)))
                           if i.type == pafs.FileType.Directory and i.base_name.startswith("checkpoint_"))
            if found:
                return join_uri(self.uri, *parts, found[-1])
        return None

    def sample_parts(self, trial_id: str, step: int, folder: str = TRIALS) -> tuple[str, ...]:
        return folder, trial_id, SAMPLES, sample_name(step)

    # --- the reader ----------------------------------------------------------------------------

    @functools.cached_property
    def meta(self) -> dict[str, Any]:
        """experiment.json."""
        try:
            meta = self.read_json(EXPERIMENT_JSON)
        except ExperimentError as e:
            raise ExperimentError(f"{e}; restore it from a copy, or run the search again under another --name") from None
        if not isinstance(meta, dict):
            raise ExperimentError(f"{self.path(EXPERIMENT_JSON)} is not a JSON object; it is not an "
                                  "experiment.json that search.run wrote")
        return meta

    @functools.cached_property
    def trials(self) -> list[Trial]:
        """The trials whose files read; one whose file is damaged is left out with a warning line."""
        return self._read_trials(TRIALS)

    @functools.cached_property
    def confirmations(self) -> list[Trial]:
        """The confirmation runs (confirm/<trial_id>-seed<seed>/): the top trials and the baseline
        trained again with other seeds at the end of the search."""
        return self._read_trials(CONFIRM)

    def _read_trials(self, folder: str) -> list[Trial]:
        trials = []
        for trial_id in self.trial_ids(folder):
            try:
                trials.append(self.read_trial(trial_id, folder))
            except ExperimentError as e:
                print(f"warning: {folder}/{trial_id} left out: {e}", file=sys.stderr)
        return trials

    @functools.cached_property
    def best_config(self) -> Optional[dict[str, Any]]:
        try:
            best = self.read_json(BEST_CONFIG_JSON)
        except ExperimentError as e:
            raise ExperimentError(f"{e}; restore it from a copy") from None
        return best if isinstance(best, dict) else None

    def trial(self, trial_id: str) -> Trial:
        for t in self.trials:
            if t.trial_id == trial_id:
                return t
        raise KeyError(trial_id)

    def trial_ids(self, folder: str = TRIALS) -> list[str]:
        if self.fs.get_file_info(self.path(folder)).type != pafs.FileType.Directory:
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path(folder)))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def read_trial(self, trial_id: str, folder: str = TRIALS) -> Trial:
        """One trial's files, read now; ExperimentError naming a damaged one (its lineage.json too)."""
        self.read_json(folder, trial_id, LINEAGE_JSON)

        def get(name: str) -> dict:
            value = self.read_json(folder, trial_id, name)
            return value if isinstance(value, dict) else {}

        status = get(STATUS_JSON)
        results, unreadable = self.read_jsonl(folder, trial_id, RESULTS_JSONL)
        state = status.get("status")
        if state not in TRIAL_STATUSES:
            # No status.json yet (or an unknown word): trust the last row, else it has not started.
            state = results[-1].get(keys.STATUS, RUNNING) if results else PENDING
            state = state if state in TRIAL_STATUSES else RUNNING
        step = status.get("step")
        return Trial(trial_id=trial_id, params=get(PARAMS_JSON), config=get(CONFIG_JSON), status=state,
                     status_step=int(step) if is_number(step) else None, error=status.get("error"),
                     results=results, sample_paths=self._sample_paths(trial_id, folder), unreadable_lines=unreadable)

    def _sample_paths(self, trial_id: str, folder: str = TRIALS) -> dict[int, str]:
        samples = "/".join((folder, trial_id, SAMPLES))
        if self.fs.get_file_info(self.path(samples)).type != pafs.FileType.Directory:
            return {}
        out = {}
        for info in self.fs.get_file_info(pafs.FileSelector(self.path(samples), recursive=False)):
            name = info.base_name
            if info.type == pafs.FileType.File and name.startswith("step_") and name.endswith(".png"):
                try:
                    out[int(name[len("step_"):-len(".png")])] = f"{samples}/{name}"
                except ValueError:
                    continue
        return dict(sorted(out.items()))
