"""The on-disk cache of things computed once per dataset: classifiers and real-data features.

Root: `$DCGAN_CACHE`, else `~/.cache/dcgan-search`. Each entry is a folder named by a readable
slug and a hash of its key (a dict that holds everything the entry depends on, including a
code-version constant, so that a change of code never reads a stale entry). Entries are
written to a temporary folder and renamed, and built under a file lock, so that parallel
trials and DDP ranks neither see half an entry nor build the same one twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Iterator


def cache_root() -> Path:
    return Path(os.environ.get("DCGAN_CACHE") or Path.home() / ".cache" / "dcgan-search")


def entry_dir(kind: str, key: dict) -> Path:
    """The folder for `key`: `<root>/metrics/<kind>-<slug>-<hash12>`."""
    text = json.dumps(key, sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9_.@-]+", "_", str(key.get("dataset", "")))[-40:]
    return cache_root() / "metrics" / f"{kind}-{slug}-{digest}"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `<path>.lock`, held while one process builds `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def get_or_build(path: Path, build: Callable[[Path], None]) -> bool:
    """Make sure the entry at `path` exists, calling `build(tmp_dir)` if not.
    Returns True when it was built now (False: it was already there)."""
    if (path / "done").exists():
        return False
    with locked(path):
        if (path / "done").exists():  # another process built it while we waited
            return False
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            build(tmp)
            (tmp / "done").write_text("")
            shutil.rmtree(path, ignore_errors=True)
            tmp.rename(path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return True
