"""Today's code against a base commit's, on the same machine: the README's default search
(`search.run --space ratio_lr`, the embedded digits, its confirmation included) and a lone
`dcgan.train` of its defaults for `--steps`, each run in a process of its own, the two trees
interleaved `--repeats` times, which goes first alternating (a slow spell of the machine falls on
both, and the first run's classifier training on each by turns); the median wall time of each, and
today's speed as a share of the base's.

    python bench/cpu_speed.py --base 3f9c834 --repeats 5          # 57 minutes on 2 cores (2026-12-07)

The base commit's tree is taken with `git archive` into a temporary folder and run from there with
this environment's Python (PYTHONPATH first, so its modules, not the installed ones, are imported:
the run prints which). Both trees run the same work: the same seed, the same steps, PBT's decisions
the same (docs/budget.md). Run it on a quiet machine: Ray's trial workers give way to anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from search.confirm import CONFIRM_DIR

ROOT = Path(__file__).resolve().parents[1]
OWN = "the search's trials' own seconds"  # (trials_own_seconds)


def timed(tree: Path, argv: list[str], env: dict[str, str]) -> float:
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, *argv], cwd=tree, env=env, capture_output=True, text=True)
    took = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return took


def phase_results(storage: Path) -> dict[str, list[dict]]:
    """Tune's result rows of a search, read once, by phase (a line cut short skipped)."""
    phases: dict[str, list[dict]] = {"PBT": [], "confirmation": []}
    for path in storage.rglob("result.json"):
        rows = phases["confirmation" if CONFIRM_DIR in path.parts else "PBT"]
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return phases


def at_once(phases: dict[str, list[dict]]) -> str:
    """How many trials trained at once in each phase of a search: the trials' own seconds over the
    phase's span (its first result's start to its last result). 2.0 on 2 CPUs: both always busy;
    about 1.0: the phase trained one trial at a time."""
    out = []
    for phase, rows in phases.items():
        rows = [r for r in rows if r.get("timestamp") and r.get("time_this_iter_s")]
        if rows:
            span = max(r["timestamp"] for r in rows) - min(r["timestamp"] - r["time_this_iter_s"] for r in rows)
            own = sum(r["time_this_iter_s"] for r in rows)
            out.append(f"{phase} {span:.0f} s, {own / span:.2f} at once")
    return "; ".join(out)


def trials_own_seconds(phases: dict[str, list[dict]]) -> float:
    """The seconds a search's trials reported between their results (Tune's time_this_iter_s, over
    every result of every trial, the confirmation's included): the trials' training and evaluations,
    without Ray's start, the driver's scheduling or the restarts between a member's rounds."""
    return sum(float(r.get("time_this_iter_s") or 0.0) for rows in phases.values() for r in rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="the commit to compare with (today's: the working tree)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=600, help="the lone dcgan.train's steps")
    p.add_argument("--only", choices=("search", "train"), help="time one of the two (default: both)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="cpu-speed-") as tmp:
        base = Path(tmp, "base")
        base.mkdir()
        archive = subprocess.run(["git", "archive", args.base], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        trees = {"base": base, "today": ROOT}
        env_of = {name: {**os.environ, "PYTHONPATH": str(tree), "DCGAN_CACHE": str(Path(tmp, "cache"))}
                  for name, tree in trees.items()}
        for name, tree in trees.items():  # each tree runs its own modules
            where = subprocess.run([sys.executable, "-c", "import dcgan; print(dcgan.__file__)"], cwd=tree,
                                   env=env_of[name], capture_output=True, text=True, check=True).stdout.strip()
            assert where.startswith(str(tree)), where
        times: dict[tuple[str, str], list[float]] = {}
        for repeat in range(args.repeats):
            order = list(trees.items()) if repeat % 2 == 0 else list(trees.items())[::-1]  # who trains the classifier alternates
            for name, tree in order:
                out = Path(tmp, f"{name}-{repeat}")
                runs = {"search": ["-m", "search.run", "--space", "ratio_lr", "--storage", str(out), "--name", "s"],
                        "train": ["-m", "dcgan.train", "--out", str(out / "run"), "--steps", str(args.steps)]}
                for what, argv in runs.items():
                    if args.only and what != args.only:
                        continue
                    took = timed(tree, argv, env_of[name])
                    times.setdefault((name, what), []).append(took)
                    own = ""
                    if what == "search":
                        phases = phase_results(out)
                        own_s = trials_own_seconds(phases)
                        times.setdefault((name, OWN), []).append(own_s)
                        own = f"  (the trials' own {own_s:.1f} s; {at_once(phases)})"
                    print(f"repeat {repeat} {name:5} {what:6} {took:7.1f} s{own}", flush=True)
    print(f"\nbase {args.base} against the working tree, {args.repeats} interleaved runs each (medians)\n")
    print("| run | base s | today s | today's speed / base's |\n| --- | ---: | ---: | ---: |")
    for what in ("search", OWN, "train"):
        if ("base", what) not in times:
            continue
        b, t = (statistics.median(times[(name, what)]) for name in ("base", "today"))
        print(f"| {what} | {b:.1f} | {t:.1f} | {b / t:.2f}x |")


if __name__ == "__main__":
    main()
