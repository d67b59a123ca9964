"""The search tests' own Ray helpers (raysession): the watchdog, whose hung block fails in one line
that says what the session's Ray held and where the block was; and the check that a placement group
can be placed, which every_cpu_free makes after a killed driver."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from raysession import a_group_placed, watchdog


def _spin(seconds: float, caught: list | None = None) -> None:
    """Python running on for `seconds`, as Tune's loop does; with `caught`, an exception raised in it
    is kept there and the spin goes on (a call that swallows it)."""
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            time.sleep(0.01)
    except Exception as e:
        if caught is None:
            raise
        caught.append(e)
        while time.monotonic() < end:
            time.sleep(0.01)


def test_a_hung_block_fails_in_one_line_naming_ray_and_where(ray_session):
    started = time.monotonic()
    with pytest.raises(Exception) as e:
        with watchdog(1.0, "a planted hang"):
            _spin(30)
    assert time.monotonic() - started < 10
    line = str(e.value)
    assert "\n" not in line and line.startswith("a planted hang ran past 1 s: ")
    assert "of 2 CPUs free" in line and "placement groups" in line
    assert "_spin" in line and f"{Path(__file__).name}:" in line, line


def test_caught_inside_it_is_raised_again_at_the_blocks_end(ray_session):
    caught: list = []
    with pytest.raises(Exception, match="a swallowed hang ran past 0.5 s"):
        with watchdog(0.5, "a swallowed hang"):
            _spin(2, caught)
    assert len(caught) == 1  # swallowed inside, raised again at the end


def test_a_block_that_ends_in_time_is_left_alone(ray_session):
    with watchdog(2.0, "a quick block"):
        _spin(0.2)
    time.sleep(2.5)  # the timer, cancelled, never fires


def test_a_group_is_placed_on_the_free_session_ray_and_removed(ray_session):
    from ray.util import placement_group_table

    assert a_group_placed(30)
    assert all(g["state"] == "REMOVED" for g in placement_group_table().values())


def test_a_group_that_cannot_be_placed_is_not(ray_session):
    """Planted: both CPUs held by actors (as a stalled GCS would leave every group pending)."""
    import ray

    @ray.remote(num_cpus=1)
    class Hold:
        def ping(self) -> int:
            return 1

    holders = [Hold.remote() for _ in range(2)]
    try:
        assert ray.get([h.ping.remote() for h in holders], timeout=60) == [1, 1]
        started = time.monotonic()
        assert not a_group_placed(2)
        assert 2 <= time.monotonic() - started < 10
    finally:
        for h in holders:
            ray.kill(h)
