"""A trial's wall time apart from its training and evaluation, split into its parts.

Runs real searches (digits 16 px, the laptop search's model and evaluation: ngf=ndf=32, 1,000
samples per evaluation) of `--trials` trials, one at a time, each trial two steps with an
evaluation after each; once with 1 worker per trial and once with 2 (a Ray Train TorchTrainer).
Every Ray worker process appends the trials' start-up events to a file (`install_marks`, run in
each worker by Ray's worker_process_setup_hook, hooks search/trial.py's `event` and Ray Train's
start-up), and a Tune callback adds the driver's. Prints, per trial, the median of each part and the start-up:
the time from Tune starting the trial to its loop's first step, plus the first report's trip
back to the driver.

    python bench/trial_overhead.py [--trials 4] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict

from ray.tune import Callback

MARKS_ENV = "DCGAN_TRIAL_MARKS"  # the file that every worker appends its marks to

# (label, from event, to event); events missing on a path (no controller inline) are skipped
PARTS = [
    ("Tune: schedule the trial, start its actor (process, imports) or reuse one", "ready", "trial"),
    ("Ray Train: controller actor start, imports", "trial", "controller"),
    ("Ray Train: placement group ready", "placement_group", "worker_process"),
    ("Ray Train: worker actor start, imports, process group", "worker_process", "process_group"),
    ("Ray Train: train function launched", "process_group", "worker"),
    ("imports of the loop (dcgan, metrics)", "*", "imported"),
    ("data load", "imported", "data"),
    ("metrics reference (extractor, real features, k-NN radii)", "data", "reference"),
    ("first report's trip to the driver", "report", "first_result"),
]
WORK = ("setup, 1 step, 1 evaluation, checkpoint (work, not start-up)", "reference", "report")


def write_mark(path: str, trial_id: str, event: str, t: float | None = None) -> None:
    with open(path, "a") as f:
        f.write(json.dumps({"trial": trial_id, "event": event, "t": t or time.time(), "pid": os.getpid()}) + "\n")


def install_marks() -> None:
    """In a Ray worker process (worker_process_setup_hook): every event of search.trial, and Ray
    Train's start-up steps, appended to $DCGAN_TRIAL_MARKS. `worker_process` is when this hook ran:
    the worker process started and Ray set it up."""
    import search.trial

    path, started = os.environ[MARKS_ENV], time.time()

    def mark(trial_id: str, event: str) -> None:
        if event == "worker":
            write_mark(path, trial_id, "worker_process", started)
        write_mark(path, trial_id, event)

    search.trial.EVENT_HOOKS.append(mark)
    search.trial.TRAINER_CALLBACKS.append(lambda trial_id: startup_marks(path, trial_id))


def startup_marks(path: str, trial_id: str):
    """Ray Train's own start-up steps as marks (its internal callback API)."""
    from ray.train.v2._internal.execution.callback import ControllerCallback, WorkerGroupCallback

    class StartupMarks(ControllerCallback, WorkerGroupCallback):
        def after_controller_start(self, train_run_context) -> None:
            write_mark(path, trial_id, "controller")

        def before_worker_group_start(self, worker_group_context) -> None:
            write_mark(path, trial_id, "placement_group")

        def after_worker_group_start(self, worker_group) -> None:
            write_mark(path, trial_id, "process_group")  # workers started, process group set up (earlier callbacks)

    return StartupMarks()


class DriverMarks(Callback):
    """The driver's side of the marks: when Tune is ready for a trial (it started, or the trial
    before ended: trials run one at a time), and when its first result arrives."""

    def __init__(self, path: str):
        self.path = path

    def _mark(self, trial_id: str, event: str) -> None:
        write_mark(self.path, trial_id, event)

    def setup(self, **info) -> None:
        self._mark("", "ready")

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self._mark(trial.trial_id, "result")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._mark("", "ready")


def read_marks(path: str) -> list[dict[str, float]]:
    """Per trial, in order: event -> the first time it happened (`first_result`: the first
    `result`; `ready`: the last time Tune was ready before the trial began)."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    ready = []
    for line in open(path):
        m = json.loads(line)
        if m["event"] == "ready":
            ready.append(m["t"])
            continue
        event = "first_result" if m["event"] == "result" else m["event"]
        out[m["trial"]].setdefault(event, m["t"])
    for events in out.values():
        events["ready"] = max(t for t in ready if t <= events["trial"])
    return sorted(out.values(), key=lambda e: e["trial"])


def parts_of(events: dict[str, float]) -> dict[str, float]:
    out = {}
    for label, a, b in [*PARTS, WORK]:
        if a == "*":  # from the last event before the loop's imports: the worker, else the trial
            a = "worker" if "worker" in events else "trial"
        if a in events and b in events:
            out[label] = max(0.0, events[b] - events[a])
    out["start-up"] = sum(out[label] for label, _, _ in PARTS if label in out)
    return out


def run(workers: int, trials: int, storage: str) -> list[dict[str, float]]:
    from search.plan import plan_search
    from search.run import build_parser
    from search.tuner import Extra, run_search

    import ray

    marks = os.path.join(storage, f"marks-{workers}.jsonl")
    os.environ[MARKS_ENV] = marks  # before Ray starts: its workers inherit it
    ray.shutdown()  # a Ray of its own per run, each worker process marking to this run's file (search.run reuses it)
    ray.init(include_dashboard=True, log_to_driver=False, runtime_env={"worker_process_setup_hook": install_marks})
    args = build_parser().parse_args([
        "--space", "smoke", "--trials", str(trials), "--steps", "2", "--set", "eval_every=1", "--scheduler", "fifo",
        "--concurrency", "1", "--workers-per-trial", str(workers), "--confirm", "0", "--storage", storage,
        "--name", f"w{workers}"])
    run_search(plan_search(args), Extra(callbacks=(DriverMarks(marks),)))
    return [parts_of(e) for e in read_marks(marks)]


def table(workers: int, rows: list[dict[str, float]]) -> None:
    labels = [p[0] for p in PARTS if any(p[0] in r for r in rows)] + [WORK[0], "start-up"]
    print(f"\n{workers} worker(s) per trial, {len(rows)} trials (seconds; first trial cold, then median of the rest)")
    print(f"  {'part':<76} {'first':>7} {'rest':>7}")
    for label in labels:
        first = rows[0].get(label)
        rest = [r[label] for r in rows[1:] if label in r]
        print(f"  {label:<76} {first if first is not None else float('nan'):>7.2f} "
              f"{statistics.median(rest) if rest else float('nan'):>7.2f}")


def warm_disk_cache() -> None:
    """The classifier and the real features on disk, as after a user's first search: trials then
    load them, and no trial's start-up includes training the classifier."""
    from dcgan.data import load_dataset
    from dcgan.metrics import build_evaluator

    build_evaluator(load_dataset("digits", 16), "cpu", 1000)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=4)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    warm_disk_cache()
    with tempfile.TemporaryDirectory(prefix="trial-overhead-") as storage:
        results = {w: run(w, args.trials, storage) for w in args.workers}
    for w, rows in results.items():
        table(w, rows)


if __name__ == "__main__":
    main()
