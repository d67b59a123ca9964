"""Local files written whole, a folder's write probe, an error in one line, a full disk (found in an
error's chain, said in one line, and injected for tests), and the names of a search's two files that
dcgan's commands read: the one copy of each, which every package imports (dcgan is the bottom of the
arrows)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional, Union

ERROR_CHARS = 300  # an error said in one line is cut there
# A search's folder holds EXPERIMENT_JSON, and once it has ended BEST_CONFIG_JSON (its winner's config
# and checkpoint), which `dcgan.sample` and `dcgan.evaluate` follow (experiment.layout writes both)
EXPERIMENT_JSON, BEST_CONFIG_JSON = "experiment.json", "best_config.json"
# Tests' full disk: "N:COUNTER[:PART]" makes the N-th write (counted in the file COUNTER, across every
# process that inherits the variable: a search's Ray workers too) and every one after it fail with
# ENOSPC; with PART, only writes to paths that hold PART count and fail
FAULT_ENV = "DCGAN_FAULT_ENOSPC"
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
EXIT_DISK_FULL = 3  # a command that stopped on a full disk: what it wrote is whole, and it goes on once there is room


def one_line(error: object) -> str:
    """An error as one line: whitespace collapsed, at most ERROR_CHARS; of a traceback (Ray's error
    strings are), its last line, the exception itself."""
    text = str(error).strip()
    if "Traceback (most recent call last)" in text:
        text = [ln for ln in text.splitlines() if ln.strip()][-1]
    return " ".join(text.split())[:ERROR_CHARS] or type(error).__name__


def before_write(target: Union[str, Path]) -> None:
    """Every write of the project's files passes here first: a full disk for tests (FAULT_ENV), else
    nothing."""
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    at, counter, part = (spec.split(":", 2) + [""])[:3]
    if part not in str(target):
        return
    fd = os.open(counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, b".")  # one byte a write: the file's size is the count, whichever process wrote
        count = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if count >= int(at):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))


def disk_full(error: Optional[BaseException]) -> Optional[OSError]:
    """The "no space left" error in `error` or in what it wraps (a trial's error arrives as Ray's
    RayTaskError around it, a failed write while handling it chains it), or None."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            return error
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
    return None


def disk_full_line(error: OSError, then: str) -> str:
    """`error` (a full disk) in one line: the path, the space left where it is, and what to do once
    there is room (`then`: "go on with: <command>", "run it again")."""
    path = os.fsdecode(error.filename) if error.filename else None
    if not path:
        return f"the disk is full ({error.strerror or error}); free some space, then {then}"
    where = os.path.abspath(path)
    while not os.path.exists(where) and os.path.dirname(where) != where:
        where = os.path.dirname(where)
    try:
        free = f"{shutil.disk_usage(where).free / 1e9:.2f} GB free on it now"
    except OSError:  # a path of another machine (a trial on a worker node)
        free = "free space unknown here"
    return f"the disk is full: writing {path} failed ({free}); free some space, then {then}"


def atomic_write(target: Union[str, Path], data: Union[bytes, str, Callable[[str], None]], mode: int = 0o644) -> None:
    """`data` (bytes, text, or a function that writes the file it is given) written to a temporary
    file beside `target`, then renamed: a reader never sees half a file, and a failure leaves none."""
    target = Path(target)
    before_write(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, (bytes, str)):
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        if callable(data):
            data(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def append_jsonl(path: Union[str, Path], row: dict) -> None:
    """One JSON line appended (a reader skips a last line cut short: experiment.layout, dcgan.train)."""
    before_write(path)
    with open(path, "a") as f:
        f.write(json.dumps(row, allow_nan=False) + "\n")


def write_probe(folder: Union[str, Path]) -> Optional[str]:
    """None if a file can be created in `folder`, or in its nearest existing parent when it does
    not exist yet; else why not. A real write: os.access says yes to root even on a read-only mount."""
    probe = os.path.abspath(os.path.expanduser(str(folder)))
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        return f"{probe} is not a folder"
    try:
        tempfile.TemporaryFile(dir=probe).close()
    except OSError as e:
        return f"cannot write to {probe}: {e.strerror or e}"
    return None
