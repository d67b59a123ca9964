"""A packed search against today's layout: the same PBT search run with `--pack 1` (a Tune trial per
member) and with `--pack K` (K members as one model in one trial, search/packed.py), each in a
process of its own on a fresh local Ray, interleaved `--repeats` times; the median is printed.

    python bench/packed_search.py --packs 1 4 --repeats 3 -- --population 3 --image-size 28 \
        --dataset idx:../shared/data/mnist --steps 400          # 2 cores (docs/performance.md)
    python bench/packed_search.py --packs 1 16 -- --population 15 --gpus-per-worker 0.0625 \
        --image-size 28 --dataset idx:../shared/data/mnist --steps 1500 --set ngf=64 --set ndf=64   # a GPU

For each run: the training phase's images/s (generator updates x batch of every member between the
first evaluation reported and the last, over that time: set-up and the first interval left out,
as are Ray's start and the report), the end-to-end wall time of the command, and the winner's FID.
Every run is `--confirm 0`; the flags after `--` go to search.run as they are.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ray.tune import Callback


class Clock(Callback):
    """The wall time and step of every member's evaluation, as they reach the driver."""

    def __init__(self, out: Path):
        self.out, self.rows = out, []

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        from search.protocol import MEMBERS

        now = time.monotonic()
        members = result.get(MEMBERS) or {trial.trial_id: result}
        self.rows += [{"t": now, "member": m, "step": int(r.get("step", 0))} for m, r in members.items()]
        self.out.write_text(json.dumps(self.rows))


def one_run(pack: int, search_args: list[str], clock: Path, storage: Path) -> None:
    """In this process: the search, its evaluations timed into `clock`."""
    from search.plan import plan_search
    from search.run import build_parser, given_flags
    from search.tuner import Extra, run_search

    argv = [*search_args, "--pack", str(pack), "--confirm", "0", "--storage", str(storage), "--name", "s",
            "--address", "local"]
    sys.exit(run_search(plan_search(build_parser().parse_args(argv), given_flags(argv)), Extra(callbacks=(Clock(clock),))))


def measure(pack: int, search_args: list[str], batch: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="packed-search-") as tmp:
        clock, storage = Path(tmp, "clock.json"), Path(tmp, "exps")
        t0 = time.monotonic()
        done = subprocess.run([sys.executable, __file__, "--one", str(pack), "--clock", str(clock), "--storage",
                               str(storage), "--", *search_args], capture_output=True, text=True)
        wall = time.monotonic() - t0
        if done.returncode != 0:
            raise SystemExit(f"pack {pack}: the search failed:\n{done.stderr[-2000:]}")
        rows = json.loads(clock.read_text())
        best = json.loads((storage / "s" / "best_config.json").read_text())
    first, last = min(r["t"] for r in rows), max(r["t"] for r in rows)
    steps = {}
    for r in rows:
        lo, hi = steps.get(r["member"], (r["step"], r["step"]))
        steps[r["member"]] = (min(lo, r["step"]), max(hi, r["step"]))
    trained = sum(hi - lo for lo, hi in steps.values())
    return {"pack": pack, "images_per_s": trained * batch / (last - first), "training_s": last - first,
            "wall_s": wall, "members": len(steps), "fid": best["fid"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--packs", type=int, nargs="+", default=[1, 4], help="--pack of each arm (1: today's layout)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--batch", type=int, default=64, help="the searches' batch size (the default config's)")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    p.add_argument("--clock", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--storage", type=Path, help=argparse.SUPPRESS)
    p.add_argument("search_args", nargs="*", help="search.run's flags, after --")
    args = p.parse_args()
    search_args = ["--space", "ratio_lr", *args.search_args] if "--space" not in args.search_args else args.search_args
    if args.one is not None:
        one_run(args.one, search_args, args.clock, args.storage)
    runs = []
    for repeat in range(args.repeats):
        for pack in args.packs:  # interleaved: a slow spell of the machine falls on every arm
            runs.append(measure(pack, search_args, args.batch))
            print(json.dumps({"repeat": repeat, **{k: round(v, 3) if isinstance(v, float) else v
                                                   for k, v in runs[-1].items()}}), flush=True)
    print("\n| --pack | images/s in training (median) | training s | end to end s | runs |\n| ---: | ---: | ---: | ---: | ---: |")
    for pack in args.packs:
        mine = [r for r in runs if r["pack"] == pack]
        print(f"| {pack} | {statistics.median(r['images_per_s'] for r in mine):,.0f} | "
              f"{statistics.median(r['training_s'] for r in mine):.1f} | {statistics.median(r['wall_s'] for r in mine):.1f} "
              f"| {len(mine)} |")


if __name__ == "__main__":
    main()
