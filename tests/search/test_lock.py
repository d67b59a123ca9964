"""One driver per experiment (search/lock.py), on a local folder and in a bucket (moto): a live
holder refuses a second driver in one line naming it; a killed driver's lock is taken over. Whole
drivers, killed and resumed: tests/search/test_search.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from experiment.layout import DRIVER_LOCK, Experiment, join_uri
from search import lock
from search.lock import DriverLock, LockError, refuse_if_held


@pytest.fixture(params=["local", "s3"])
def exp(request, tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "SETTLE_S", 0.05)
    if request.param == "local":
        return Experiment(str(tmp_path / "storage" / "exp"))
    return Experiment(join_uri(request.getfixturevalue("s3_bucket"), "exp"))


def _holder(exp: Experiment, **changes) -> None:
    """A lock as another driver wrote it."""
    held = {"command": "search.run", "host": socket.gethostname(), "pid": os.getpid(), "pid_started": None,
            "boot_id": lock._boot_id(), "started_at": "2026-12-01T10:00:00+0000", "heartbeat": time.time(),
            "token": "theirs"}
    exp.write_text(json.dumps({**held, **changes}), DRIVER_LOCK)


def test_a_held_experiment_refuses_a_second_driver_and_is_freed_at_the_end(exp):
    with DriverLock(exp, "search.run"):
        held = json.loads(exp.read_text(DRIVER_LOCK))
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
        for second in (lambda: refuse_if_held(exp), lambda: DriverLock(exp, "search.train").__enter__()):
            with pytest.raises(LockError) as refused:
                second()
            message = str(refused.value)
            assert "\n" not in message and "'exp' is in use by search.run on host " + socket.gethostname() in message
            assert f"pid {os.getpid()}, since {held['started_at']}" in message and "--resume" in message
        assert json.loads(exp.read_text(DRIVER_LOCK))["token"] == held["token"]  # the refused wrote nothing
    assert not exp.exists(DRIVER_LOCK)
    if exp.uri.startswith("/"):  # the lock was all there was: no empty folder left, the storage's neither
        assert not os.path.exists(os.path.dirname(exp.uri))
    refuse_if_held(exp)


def test_a_dead_drivers_lock_is_taken_over_and_said(exp, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _holder(exp, pid=dead.pid)
    refuse_if_held(exp)  # stale: no refusal
    with DriverLock(exp, "search.run"):
        assert json.loads(exp.read_text(DRIVER_LOCK))["pid"] == os.getpid()
    err = capsys.readouterr().err
    assert f"taking over the lock of search.run on host {socket.gethostname()} (pid {dead.pid}" in err
    assert f"pid {dead.pid} is not running" in err and not exp.exists(DRIVER_LOCK)
    assert exp.exists()  # a folder the lock did not make stays


@pytest.mark.parametrize("case, stale", [("reused pid", True), ("rebooted", True), ("other host, beating", False),
                                         ("other host, silent", True), ("half written", False)])
def test_stale_or_live(exp, case, stale):
    if case == "reused pid":  # this process is alive, but started at another time than the holder's
        _holder(exp, pid_started=1.0)
    elif case == "rebooted":
        _holder(exp, boot_id="another-boot")
    elif case == "other host, beating":
        _holder(exp, host="node-7", pid=1, heartbeat=time.time() - lock.HEARTBEAT_S)
    elif case == "other host, silent":
        _holder(exp, host="node-7", pid=1, heartbeat=time.time() - lock.STALE_AFTER_S - 1)
    else:  # caught while written: its age is the file's
        exp.write_text('{"host": "node', DRIVER_LOCK)
    if stale:
        refuse_if_held(exp)
        with DriverLock(exp, "search.run"):
            pass
    else:
        with pytest.raises(LockError, match="is in use by"):
            refuse_if_held(exp)
        with pytest.raises(LockError):
            DriverLock(exp, "search.run").__enter__()
        assert exp.exists(DRIVER_LOCK)


def test_the_heartbeat_is_rewritten_while_held(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
    exp = Experiment(str(tmp_path / "exp"))
    with DriverLock(exp, "search.run"):
        first = json.loads(exp.read_text(DRIVER_LOCK))["heartbeat"]
        time.sleep(0.5)
        assert json.loads(exp.read_text(DRIVER_LOCK))["heartbeat"] > first
