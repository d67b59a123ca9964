"""A budget in, the best generator out: what a user ends with for a wall time, against the paper's
setting trained alone for the same time on the same machine.

Arms, each run as the user runs it (its own process, its wall time counted from its start):

    a    `dcgan.train --budget B` of the paper's setting (TrainConfig's defaults: no moving average) at
         the search's data, image size and augmentation, at the width a budget plans here (ngf=ndf=32
         on a CPU, 64 on a GPU)
    a64  the same at dcgan.train's own width (ngf=ndf=64), where that differs
    b    the default path: `search.run --space ratio_lr --budget B` (PBT over the whole budget, the
         control among the members); its best_config.json's checkpoint
    c    random search for half of B (`--sampler random --scheduler fifo --trials 4 --budget B/2`), its
         winner continued (`dcgan.train --config best_config.json --continue --budget <what is left>`)

Every final generator is scored again the same way: the project's FID (its classifier, against the
training split) and LeNet-5's (bench/second_extractor.py: never ranked by, against the held-out
split), from --samples images of the evaluator's fixed noise. Writes budget.csv (one row per arm,
data set, budget and seed, appended as each ends) and prints the table: median (min-max) per arm on
both instruments, and each arm against a.

    python bench/budget.py --datasets digits mnist --budget 5m --seeds 3 --out bench-budget
    python bench/budget.py --datasets mnist --budget 20m --seeds 2 --arms a b --out bench-budget20
    python bench/budget.py --show bench-budget/budget.csv [more.csv ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/second_extractor.py beside this file

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
DATASETS = {  # name -> (dataset, image size, the search's augmentation)
    "digits": ("digits", 16, "translation"),
    "mnist": (f"idx:{MNIST}", 28, ""),
}
ARMS = ("a", "a64", "b", "c")
CSV_FIELDS = ["dataset", "budget_s", "seed", "arm", "wall_s", "steps", "fid", "fid_lenet", "checkpoint", "detail"]
RANDOM_TRIALS = 4  # arm c's random search


def run(cmd: list[str], log: Path) -> float:
    """`cmd` in its own process, its output to `log`; its wall time. A failure stops the bench."""
    t0 = time.monotonic()
    with open(log, "w") as f:
        code = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}); see {log}")
    return time.monotonic() - t0


def paper(dataset: str, seed: int, budget: float, width: int, out: Path, log: Path) -> tuple[float, Path, str]:
    data, size, augment = DATASETS[dataset]
    sets = [f"dataset={data}", f"image_size={size}", f"augment={augment}", f"ngf={width}", f"ndf={width}",
            f"seed={seed}"]
    wall = run([sys.executable, "-m", "dcgan.train", *(a for s in sets for a in ("--set", s)), "--budget", f"{budget:g}s",
                "--out", str(out)], log)
    return wall, out, f"ngf=ndf={width}"


def search(dataset: str, seed: int, budget: float, store: Path, name: str, log: Path, *extra: str) -> tuple[float, dict]:
    data, size, _ = DATASETS[dataset]
    wall = run([sys.executable, "-m", "search.run", "--space", "ratio_lr", "--dataset", data, "--image-size", str(size),
                "--budget", f"{budget:g}s", "--seed", str(seed), "--storage", str(store), "--name", name, *extra], log)
    return wall, json.loads((store / name / "best_config.json").read_text())


def arm(which: str, dataset: str, seed: int, budget: float, root: Path) -> dict:
    """Run one arm; its row (before scoring)."""
    tag = f"{dataset}-{budget:g}s-{seed}-{which}"
    log = root / "logs" / f"{tag}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if which in ("a", "a64"):
        wall, ckpt, detail = paper(dataset, seed, budget, 64 if which == "a64" else 32, root / "runs" / tag, log)
    elif which == "b":
        wall, best = search(dataset, seed, budget, root / "experiments", tag, log)
        ckpt = Path(best["checkpoint"])
        detail = f"winner {best['trial_id']} ({json.dumps(best['params'])})"
    else:
        wall, best = search(dataset, seed, budget / 2, root / "experiments", tag, log, "--sampler", "random",
                            "--scheduler", "fifo", "--trials", str(RANDOM_TRIALS))
        left = max(1.0, budget - wall)
        out = root / "runs" / tag
        best_file = root / "experiments" / tag / "best_config.json"
        wall += run([sys.executable, "-m", "dcgan.train", "--config", str(best_file), "--continue", "--budget",
                     f"{left:g}s", "--out", str(out)], log.with_suffix(".continue.log"))
        ckpt, detail = out, f"winner {best['trial_id']} ({json.dumps(best['params'])}), continued {left:.0f} s"
    return {"dataset": dataset, "budget_s": budget, "seed": seed, "arm": which, "wall_s": round(wall, 1),
            "checkpoint": str(ckpt), "detail": detail}


def scored(row: dict, samples: int) -> dict:
    from second_extractor import score

    s = score(row["checkpoint"], samples)
    return {**row, "steps": s["step"], "fid": s["fid"], "fid_lenet": s["fid_lenet"], "checkpoint": s["checkpoint"]}


def append(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, CSV_FIELDS)
        if new:
            w.writeheader()
        w.writerow({k: row.get(k, "") for k in CSV_FIELDS})


def read(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        with open(path, newline="") as f:
            rows += list(csv.DictReader(f))
    return rows


def table(rows: list[dict]) -> str:
    """Per data set and budget, each arm's median (min-max) over seeds on both instruments, its wall
    time and steps, and its median against arm a's (negative: lower FID than the paper alone)."""
    def spread(values: list[float]) -> str:
        v = sorted(values)
        return f"{statistics.median(v):.2f} ({v[0]:.2f}-{v[-1]:.2f})" if v else "-"

    lines = [f"{'data':<7} {'budget':>7} {'arm':<4} {'seeds':>5} {'wall s':>7} {'steps':>8} "
             f"{'FID, project: median (min-max)':>32} {'vs a':>6} {'FID, LeNet-5: median (min-max)':>32} {'vs a':>6}"]
    for dataset, budget in sorted({(r["dataset"], float(r["budget_s"])) for r in rows}):
        mine = [r for r in rows if r["dataset"] == dataset and float(r["budget_s"]) == budget]
        ref = {k: statistics.median([float(r[k]) for r in mine if r["arm"] == "a"] or [math.nan])
               for k in ("fid", "fid_lenet")}
        for which in [a for a in ARMS if any(r["arm"] == a for r in mine)]:
            runs = [r for r in mine if r["arm"] == which]
            cells = []
            for k in ("fid", "fid_lenet"):
                v = [float(r[k]) for r in runs]
                rel = (statistics.median(v) - ref[k]) / ref[k] * 100 if math.isfinite(ref[k]) else math.nan
                cells += [f"{spread(v):>32}", f"{rel:>+5.0f}%" if math.isfinite(rel) else f"{'-':>6}"]
            wall = statistics.median(float(r["wall_s"]) for r in runs)
            steps = statistics.median(int(r["steps"]) for r in runs)
            lines.append(f"{dataset:<7} {budget:>6.0f}s {which:<4} {len(runs):>5} {wall:>7.0f} {steps:>8.0f} "
                         + " ".join(cells))
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> None:
    from dcgan.config import parse_duration

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "mnist"], choices=list(DATASETS))
    p.add_argument("--budget", default="5m", help="the wall time of each arm (default 5m)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--samples", type=int, default=5000, help="images each final generator is scored on (default 5000)")
    p.add_argument("--out", default="bench-budget", help="folder of budget.csv, the runs, experiments and logs")
    p.add_argument("--show", nargs="+", type=Path, metavar="CSV", help="print the table of these CSVs and exit")
    args = p.parse_args(argv)
    if args.show:
        print(table(read(args.show)))
        return
    budget = parse_duration(args.budget)
    root = Path(args.out).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DCGAN_NO_DOWNLOAD", "1")
    for dataset in args.datasets:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for which in args.arms:
                row = scored(arm(which, dataset, seed, budget, root), args.samples)
                append(root / "budget.csv", row)
                print(f"{dataset} seed {seed} {which}: {row['wall_s']:.0f} s, step {row['steps']}, FID {row['fid']:.2f}, "
                      f"LeNet-5 {row['fid_lenet']:.2f} ({row['detail']})", flush=True)
    print(table(read([root / "budget.csv"])))


if __name__ == "__main__":
    main()
