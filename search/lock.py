"""One driver per experiment: a lock file in the experiment's folder (or a search.train run's).

Two `search.run` of one `--name` and storage at once (two terminals, a job submitted twice) would
write one experiment.json, one optuna.db and one set of trial folders. The driver that starts
first holds `driver.lock` (host, pid, boot, since when, a heartbeat) while it runs, written
through the experiment's filesystem, so local disks and buckets alike; a second driver is
refused in one line that names the holder.

A lock left by a driver that was killed (SIGKILL, a lost node) does not block `--resume`: it is
stale, and taken over with a line that says so, when its pid is not running on this host (same
boot; the process's start time tells a reused pid), when this host has rebooted since, or, for a
driver on another host, whose processes cannot be seen from here, when its heartbeat (rewritten
every HEARTBEAT_S) is older than STALE_AFTER_S.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from typing import Any, Optional

import pyarrow.fs as pafs

from dcgan.config import ConfigError
from experiment.layout import DRIVER_LOCK, Experiment, parent_uri

HEARTBEAT_S = 20.0
STALE_AFTER_S = 120.0  # six missed heartbeats: a driver on another host is gone
SETTLE_S = 1.0  # where a file cannot be created exclusively (a bucket): read back after this, the last writer wins


class LockError(ConfigError):
    """The experiment is held by another driver; the message names it."""


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:  # not Linux: a reboot is not told apart, a dead pid still is
        return ""


def _process_start(pid: int) -> Optional[float]:
    """When process `pid` started, in clock ticks since boot (Linux's /proc/PID/stat, field 22);
    None if it is not running or this is not Linux."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return float(f.read().rpartition(")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


def stale_reason(holder: dict[str, Any], now: Optional[float] = None) -> Optional[str]:
    """Why the driver of `holder` (a lock's contents) is gone, or None while it may be running."""
    now = time.time() if now is None else now
    if holder.get("host") == socket.gethostname():
        if holder.get("boot_id") != _boot_id():
            return "this host has restarted since"
        pid = int(holder.get("pid", 0))
        if not _pid_alive(pid):
            return f"pid {pid} is not running"
        started = _process_start(pid)
        if started is not None and holder.get("pid_started") is not None and started != holder["pid_started"]:
            return f"pid {pid} is another process now"
        return None
    age = now - float(holder.get("heartbeat", 0))
    return f"its last heartbeat was {age:.0f} s ago" if age > STALE_AFTER_S else None


def describe(holder: dict[str, Any]) -> str:
    age = time.time() - float(holder.get("heartbeat", 0))
    return (f"{holder.get('command', 'a driver')} on host {holder.get('host')} (pid {holder.get('pid')}, since "
            f"{holder.get('started_at')}, last heartbeat {max(age, 0):.0f} s ago)")


def read_holder(exp: Experiment) -> Optional[dict[str, Any]]:
    """The lock's contents, or None when there is none. A lock caught half written (or emptied)
    reads as a holder that beats no more than the file's age."""
    info = exp.fs.get_file_info(exp.path(DRIVER_LOCK))
    if info.type == pafs.FileType.NotFound:
        return None
    try:
        holder = json.loads(exp.read_text(DRIVER_LOCK))
        if isinstance(holder, dict):
            return holder
    except (ValueError, OSError):
        pass
    written = info.mtime.timestamp() if info.mtime is not None else 0.0
    return {"host": "unknown", "pid": 0, "started_at": "unknown", "heartbeat": written, "token": ""}


def _refusal(exp: Experiment, holder: dict[str, Any]) -> LockError:
    name = parent_uri(exp.uri)[1]
    return LockError(f"'{name}' is in use by {describe(holder)}: one driver at a time; wait for it to end, or "
                     f"stop it and go on with --resume (a killed driver's lock is taken over)")


def refuse_if_held(exp: Experiment) -> None:
    """LockError if a live driver holds `exp`; nothing is written. (Storage that cannot be read is
    left to the checks that say so.)"""
    try:
        holder = read_holder(exp)
    except (OSError, ValueError):
        return
    if holder is not None and stale_reason(holder) is None:
        raise _refusal(exp, holder)


class DriverLock:
    """`with DriverLock(experiment, "search.run"):` holds the experiment while the block runs:
    refused (LockError) if a live driver holds it, a stale lock taken over, heartbeats while held,
    and the lock removed at the end (with the folder, if the lock was all this driver put there)."""

    def __init__(self, exp: Experiment, command: str):
        self.exp, self.command = Experiment(exp.uri), command
        self.mine: dict[str, Any] = {}
        self._stop = threading.Event()
        self._beat: Optional[threading.Thread] = None
        self._made: list[str] = []  # local folders the lock made (the experiment's, the storage's), deepest first

    def __enter__(self) -> "DriverLock":
        held = read_holder(self.exp)
        if held is not None:
            why = stale_reason(held)
            if why is None:
                raise _refusal(self.exp, held)
            print(f"taking over the lock of {describe(held)}: {why}", file=sys.stderr)
        pid = os.getpid()
        self.mine = {"command": self.command, "host": socket.gethostname(), "pid": pid,
                     "pid_started": _process_start(pid), "boot_id": _boot_id(),
                     "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "heartbeat": time.time(),
                     "token": uuid.uuid4().hex}
        self._claim(exclusive=held is None)
        self._beat = threading.Thread(target=self._heartbeat, name="driver-lock-heartbeat", daemon=True)
        self._beat.start()
        return self

    def _claim(self, exclusive: bool) -> None:
        """Write the lock; raise LockError if another driver's claim won."""
        text = json.dumps(self.mine, indent=2) + "\n"
        if exclusive and isinstance(self.exp.fs, pafs.LocalFileSystem):
            folder = self.exp.root
            while not os.path.exists(folder):
                self._made.append(folder)
                folder = os.path.dirname(folder)
            os.makedirs(self.exp.root, exist_ok=True)
            try:  # created only if absent: of two drivers starting at once, one gets it
                fd = os.open(self.exp.path(DRIVER_LOCK), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                raise _refusal(self.exp, read_holder(self.exp) or {}) from None
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return
        self.exp.write_text(text, DRIVER_LOCK)
        time.sleep(SETTLE_S)
        back = read_holder(self.exp)
        if back is None or back.get("token") != self.mine["token"]:
            raise _refusal(self.exp, back or {})

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                held = read_holder(self.exp)
                if held is None or held.get("token") != self.mine["token"]:
                    print(f"warning: the lock of {parent_uri(self.exp.uri)[1]} was taken over"
                          + (f" by {describe(held)}" if held else ""), file=sys.stderr)
                    return
                self.mine["heartbeat"] = time.time()
                self.exp.write_text(json.dumps(self.mine, indent=2) + "\n", DRIVER_LOCK)
            except (OSError, ValueError):  # storage out of reach for a moment: the next beat tries again
                continue

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=30)
        try:
            held = read_holder(self.exp)
            if held is not None and held.get("token") == self.mine["token"]:
                self.exp.fs.delete_file(self.exp.path(DRIVER_LOCK))
        except (OSError, ValueError):
            pass
        for folder in self._made:  # the run never began (Ray out of reach): leave no empty folder
            try:
                os.rmdir(folder)
            except OSError:  # not empty: the experiment's files
                break
