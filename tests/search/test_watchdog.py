"""The search tests' watchdog (raysession.watchdog): a hung block fails in one line that says what
the session's Ray held and where the block was."""

from __future__ import annotations

import time

import pytest

from raysession import watchdog


def _spin(seconds: float, swallow: bool = False) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # (Python running on, as Tune's loop does)
        try:
            time.sleep(0.01)
        except Exception:
            if not swallow:
                raise


def test_a_hung_block_fails_in_one_line_naming_ray_and_where(ray_session):
    started = time.monotonic()
    with pytest.raises(Exception) as e:
        with watchdog(1.0, "a planted hang"):
            _spin(30)
    assert time.monotonic() - started < 10
    line = str(e.value)
    assert "\n" not in line and line.startswith("a planted hang ran past 1 s: ")
    assert "of 2 CPUs free" in line and "placement groups" in line
    assert "_spin" in line and "test_watchdog.py:" in line, line


def test_caught_inside_it_is_raised_again_at_the_blocks_end(ray_session):
    with pytest.raises(Exception, match="a swallowed hang ran past 0.5 s"):
        with watchdog(0.5, "a swallowed hang"):
            _spin(2, swallow=True)


def test_a_block_that_ends_in_time_is_left_alone(ray_session):
    with watchdog(2.0, "a quick block"):
        _spin(0.2)
    time.sleep(2.5)  # the timer, cancelled, never fires
