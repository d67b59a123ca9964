"""The experiment directory of docs/experiment-layout.md, on any pyarrow filesystem.

`Experiment(uri)` opens `<storage>/<name>` as a local path or a URI (s3://, gs://, ...); every
write goes through pyarrow.fs, so the same code writes to a laptop disk and to a bucket.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional

import pyarrow.fs as pafs


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


def json_safe(value: Any) -> Any:
    """NaN and inf become null (JSON has neither); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class Experiment:
    """Reads and writes the files of one experiment directory."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")
        self._fs: Optional[pafs.FileSystem] = None
        self._root: Optional[str] = None

    # pyarrow filesystems do not pickle everywhere; Tune pickles callbacks, so open lazily
    def __getstate__(self) -> dict:
        return {"uri": self.uri, "_fs": None, "_root": None}

    @property
    def fs(self) -> pafs.FileSystem:
        if self._fs is None:
            self._fs, self._root = open_fs(self.uri)
        return self._fs

    @property
    def root(self) -> str:
        self.fs
        return self._root

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    # --- primitives ------------------------------------------------------------------------

    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.path(*parts)).type != pafs.FileType.NotFound

    def read_text(self, *parts: str) -> str:
        with self.fs.open_input_stream(self.path(*parts)) as f:
            return f.read().decode()

    def write_text(self, text: str, *parts: str) -> None:
        """Whole-file write via a temporary name where the filesystem can rename (local)."""
        target = self.path(*parts)
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        if isinstance(self.fs, pafs.LocalFileSystem):
            tmp = target + ".tmp"
            with self.fs.open_output_stream(tmp) as f:
                f.write(text.encode())
            self.fs.move(tmp, target)
        else:  # object stores write a whole object atomically anyway
            with self.fs.open_output_stream(target) as f:
                f.write(text.encode())

    def read_json(self, *parts: str) -> Any:
        return json.loads(self.read_text(*parts))

    def write_json(self, value: Any, *parts: str) -> None:
        self.write_text(json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n", *parts)

    def read_jsonl(self, *parts: str) -> list[dict]:
        if not self.exists(*parts):
            return []
        return [json.loads(line) for line in self.read_text(*parts).splitlines() if line.strip()]

    def copy_from(self, source_path: str, *parts: str) -> None:
        """Copy a file that lies on the same filesystem (e.g. a checkpoint's samples.png)."""
        target = self.path(*parts)
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        self.fs.copy_file(source_path, target)

    def upload(self, local_file: str | Path, *parts: str) -> None:
        target = self.path(*parts)
        self.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        pafs.copy_files(str(local_file), target, source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self.fs)

    # --- the experiment's files -------------------------------------------------------------

    def append_result(self, trial_id: str, row: dict) -> None:
        """Append one evaluation to results.jsonl. Rows at or after its step are dropped first:
        a trial restarted from a checkpoint reports those steps again. (Read and rewrite, since
        object stores cannot append; the file holds one short line per evaluation.)"""
        rows = [r for r in self.read_jsonl("trials", trial_id, "results.jsonl") if r["step"] < row["step"]]
        rows.append(json_safe(row))
        self.write_text("".join(json.dumps(r, allow_nan=False) + "\n" for r in rows),
                        "trials", trial_id, "results.jsonl")

    def write_status(self, trial_id: str, status: str, step: int, error: Optional[str] = None) -> None:
        self.write_json({"status": status, "step": int(step), "error": error}, "trials", trial_id, "status.json")

    def trial_ids(self) -> list[str]:
        if not self.exists("trials"):
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path("trials")))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def load_trial(self, trial_id: str) -> dict:
        """{"trial_id", "status", "config", "params", "results"} from the trial's files."""
        def get(name: str, default: Any) -> Any:
            return self.read_json("trials", trial_id, name) if self.exists("trials", trial_id, name) else default
        return {
            "trial_id": trial_id,
            "status": get("status.json", {"status": "pending", "step": 0, "error": None}),
            "config": get("config.json", None),
            "params": get("params.json", {}),
            "results": self.read_jsonl("trials", trial_id, "results.jsonl"),
        }
