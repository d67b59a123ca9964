"""Ctrl-C during a search: stop it so that `--resume` goes on from where it stood.

The first Ctrl-C (SIGINT; or SIGTERM, which `ray job stop` sends) sets `Interrupt.requested` and
asks Tune to stop the way its own SIGINT handler would: Tune saves its state with the running
trials in it, then stops them. The search then ends there: no confirmation, no winner named,
nothing marked lost, and the Optuna study keeps those trials RUNNING, so that `search.run
--resume` restarts them from their last checkpoints and tells the study how they ended. A second
signal quits at once, as a driver killed outright (which `--resume` also survives, losing more).

Tune's own handler would do the stopping but tell nobody that it did (`Tuner.fit` returns as
after a finished run) and print Tune's resume instructions, not ours; so it is switched off
(TUNE_DISABLE_SIGINT_HANDLER) and reached through the SIGUSR1 handler that Tune installs beside it
for each run (ray/tune/tune.py, _setup_signal_catching).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from typing import Callable, Iterator

TUNE_SIGINT_OFF = {"TUNE_DISABLE_SIGINT_HANDLER": "1"}


class TuneStopWords(logging.Filter):
    """Drops Tune's own lines on a stop: said here in ours, and its resume advice (`Tuner.restore`)
    is not how a search goes on."""

    logger = "ray.tune.tune"

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(("Stop signal received", "Experiment has been interrupted"))


class Interrupt:
    def __init__(self) -> None:
        self.requested = False

    def run(self, step: Callable[[], object]) -> None:
        """`step()` unless a stop was asked for (a Ctrl-C between two Tune runs stops the second)."""
        if not self.requested:
            step()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # Ctrl-C; `ray job stop`, a process manager


def stop_tune() -> bool:
    """Ask the Tune run in progress to stop as Ctrl-C does (it saves its state, and the trials that
    were running resume from their checkpoints); False where no run listens (Tune's SIGUSR1 handler is
    set by a run in the main thread; the default would end the process)."""
    if not callable(signal.getsignal(signal.SIGUSR1)):
        return False
    os.kill(os.getpid(), signal.SIGUSR1)
    return True


@contextlib.contextmanager
def interruptible() -> Iterator[Interrupt]:
    """Ctrl-C (or SIGTERM), within the block, stops the current Tune run and sets `requested` (in
    the main thread only: Python delivers signals there, and Tune installs its handlers there).
    Tune's SIGUSR1 handler sets SIGINT's back to the one it found (ours) when it runs, hence
    `requested` decides what a signal does."""
    interrupt = Interrupt()
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    # SIG_IGN: started in the background (`cmd &` in a script), where Ctrl-C is not for it;
    # None: a handler set outside Python; both left alone
    ours = [signum for signum, handler in previous.items() if handler not in (signal.SIG_IGN, None)]
    if threading.current_thread() is not threading.main_thread() or not ours:
        yield interrupt
        return

    def on_stop(signum, frame) -> None:
        if interrupt.requested:  # the second: given to the handlers there were before
            for s in ours:
                signal.signal(s, previous[s])
            os.kill(os.getpid(), signum)
            return
        interrupt.requested = True
        again = "Ctrl-C again" if signum == signal.SIGINT else f"{signal.Signals(signum).name} again"
        print(f"\nstopping: saving the search's state ({again} to quit at once)", file=sys.stderr, flush=True)
        stop_tune()

    words = TuneStopWords()
    logging.getLogger(TuneStopWords.logger).addFilter(words)
    for signum in ours:
        signal.signal(signum, on_stop)
    try:
        yield interrupt
    finally:
        for signum in ours:
            signal.signal(signum, previous[signum])
        logging.getLogger(TuneStopWords.logger).removeFilter(words)
