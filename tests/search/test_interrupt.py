"""Ctrl-C's handling in a search (search/interrupt.py), on real signals to this process. A whole
search stopped by Ctrl-C and resumed: tests/search/test_search.py."""

from __future__ import annotations

import os
import signal

import pytest

from search.interrupt import interruptible


@pytest.fixture
def tune_stop():
    """SIGUSR1, which Tune's run stops on, recorded instead."""
    asked = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: asked.append(signum))
    yield asked
    signal.signal(signal.SIGUSR1, previous)


def test_first_ctrl_c_stops_tune_and_the_steps_after_it_the_second_quits(tune_stop, sigint_as_in_a_terminal):
    ran, term = [], signal.getsignal(signal.SIGTERM)  # Ray's driver sets its own, once ray.init ran
    with interruptible() as interrupt:
        interrupt.run(lambda: ran.append("search"))
        os.kill(os.getpid(), signal.SIGINT)
        assert interrupt.requested and tune_stop == [signal.SIGUSR1]
        interrupt.run(lambda: ran.append("confirmation"))
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert ran == ["search"] and tune_stop == [signal.SIGUSR1]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # as it was
    assert signal.getsignal(signal.SIGTERM) == term


def test_sigterm_stops_tune_as_ctrl_c_does(tune_stop):
    """`ray job stop` sends SIGTERM: the same stop, and a second one goes to the handler there was."""
    terms = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: terms.append(signum))
    try:
        with interruptible() as interrupt:
            os.kill(os.getpid(), signal.SIGTERM)
            assert interrupt.requested and tune_stop == [signal.SIGUSR1] and not terms
            os.kill(os.getpid(), signal.SIGTERM)
            assert terms == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_no_ctrl_c_runs_every_step_and_leaves_the_handler_as_it_was(tune_stop, sigint_as_in_a_terminal):
    ran = []
    with interruptible() as interrupt:
        interrupt.run(lambda: ran.append("search"))
        interrupt.run(lambda: ran.append("confirmation"))
    assert ran == ["search", "confirmation"] and not interrupt.requested and not tune_stop
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored(tune_stop):
    """A search started in the background by a script ignores SIGINT, as its shell set it up."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interruptible() as interrupt:
            os.kill(os.getpid(), signal.SIGINT)
        assert not interrupt.requested and not tune_stop
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
