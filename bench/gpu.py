"""The GPU fast path, measured: images/s of the loop against the bare loop on the same GPU, the
GPU memory of a trial, and trials packed onto one GPU with fractional --gpus-per-worker.

    python bench/gpu.py                      # tables 1 and 2 (and 3 with --search)
    python bench/gpu.py --search             # also a short real search on MNIST, 0.25 GPU per trial

1. images/s at 32 px grey and 64 px RGB (ngf = ndf = 64, batch --batch), fp32 and bf16, with
   channels_last and torch.compile off and on, each against the bare inline loop (same data on the
   GPU, same precision); peak GPU memory of the loop.
2. trials per GPU: N = 1, 2, 4, 8 single-worker trials of a real search (search.run, FIFO,
   --gpus-per-worker 1/N, all N at once): the GPU's total images/s and each trial's time.
3. (--search) search.run --space ratio_lr --gpus-per-worker 0.25 on MNIST, end to end.

With no GPU it says so and does a dry run on CPU at toy sizes (8 px, a few steps) that goes
through tables 1 and 2's code; its figures are not a GPU's.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from dcgan.config import TrainConfig
from dcgan.data import ImageSet, Splits
from step_throughput import bare_loop, project_loop, sync

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def synthetic(channels: int, size: int, n: int = 4096) -> Splits:
    """Random uint8 images: throughput does not depend on what the pixels hold, and the 64 px
    RGB case needs no download."""
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return Splits("synthetic", ImageSet(images, None), ImageSet(images[:64], None), channels, 0, size, 0.0)


def images_per_s(dry: bool, batch: int, steps: int):
    """Yields one row per option set, as soon as it is measured (a long run shows what it has)."""
    rows = []
    cases = [("32px grey", 1, 32), ("64px RGB", 3, 64)] if not dry else [("8px grey (dry)", 1, 8)]
    for (label, channels, size), precision, channels_last, compiled in itertools.product(
            cases, ("fp32", "bf16"), (False, True), (False, True)):
        splits = synthetic(channels, size)
        torch._dynamo.reset()  # each option set compiles afresh (and never meets the recompile limit)
        cfg = TrainConfig(image_size=size, ngf=64 if not dry else 8, ndf=64 if not dry else 8, batch_size=batch,
                          precision=precision, channels_last=channels_last, compile=compiled, device="auto")
        try:
            project_loop(cfg, 3, splits)  # warm-up: compilation, cuDNN autotuning, allocator
        except Exception as e:  # noqa: BLE001 - a failing option set is a finding: print it, go on
            yield {"data": label, "precision": precision, "channels_last": channels_last, "compile": compiled,
                   "error": f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"}
            continue
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        ours = statistics.median(project_loop(cfg, steps, splits) for _ in range(3))
        memory = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else float("nan")
        bare = statistics.median(bare_loop(cfg.replace(compile=False, channels_last=False), steps, splits)
                                 for _ in range(3)) if not (channels_last or compiled) else None
        row = {"data": label, "precision": precision, "channels_last": channels_last, "compile": compiled,
               "images_per_s": ours * batch, "bare_images_per_s": bare * batch if bare else None, "peak_mib": memory}
        # each option set against the plain bare loop of its data and precision (measured first)
        ref = next(r for r in [*rows, row] if r["data"] == row["data"] and r["precision"] == row["precision"]
                   and r["bare_images_per_s"])
        row["vs_bare"] = row["images_per_s"] / ref["bare_images_per_s"]
        rows.append(row)
        yield row


def packing(counts: list[int], steps: int) -> list[dict]:
    """N trials of a real search at once on one GPU, 1/N of it each."""
    rows = []
    dataset = f"idx:{MNIST}" if MNIST.is_dir() else "digits"
    for n in counts:
        with tempfile.TemporaryDirectory() as storage:
            argv = [sys.executable, "-m", "search.run", "--space", "smoke", "--trials", str(n), "--concurrency", str(n),
                    "--scheduler", "fifo", "--steps", str(steps), "--set", f"eval_every={steps}", "--dataset", dataset,
                    "--image-size", "32", "--set", "ngf=64", "--set", "ndf=64", "--set", "eval_samples=1000",
                    "--gpus-per-worker", f"{1 / n:.4f}", "--storage", storage, "--name", f"pack{n}"]
            t0 = time.time()
            done = subprocess.run(argv, capture_output=True, text=True)
            wall = time.time() - t0
            if done.returncode != 0:
                rows.append({"trials": n, "error": (done.stderr.strip().splitlines() or ["?"])[-1]})
                continue
            times = [json.loads(p.read_text().splitlines()[-1])["time_s"]
                     for p in Path(storage, f"pack{n}", "trials").glob("*/results.jsonl")]
            batch = TrainConfig().batch_size
            rows.append({"trials": n, "wall_s": wall, "trial_s": statistics.median(times),
                         "per_trial_images_per_s": steps * batch / statistics.median(times),
                         "total_images_per_s": n * steps * batch / statistics.median(times)})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--trials-per-gpu", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--skip-images", action="store_true", help="skip table 1")
    p.add_argument("--skip-packing", action="store_true", help="skip table 2")
    p.add_argument("--search", action="store_true", help="also a short real search on MNIST, 0.25 GPU per trial")
    args = p.parse_args()
    dry = not torch.cuda.is_available()
    if dry:
        print("no GPU found (torch.cuda.is_available() is False): a dry run on CPU at toy sizes, through the same "
              "code; none of these figures is a GPU's")
        args.batch, args.steps = 16, 3
    else:
        props = torch.cuda.get_device_properties(0)
        print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, compute capability {props.major}.{props.minor}; "
              f"torch {torch.__version__}, CUDA {torch.version.cuda}")
    print(f"\n1. images/s, ngf=ndf={8 if dry else 64}, batch {args.batch}, {args.steps} steps (median of 3)")
    print(f"   {'data':<16} {'prec':<5} {'ch_last':<8} {'compile':<8} {'images/s':>10} {'bare loop':>10} "
          f"{'vs bare':>8} {'peak MiB':>9}")
    for r in ([] if args.skip_images else images_per_s(dry, args.batch, args.steps)):
        if "error" in r:
            print(f"   {r['data']:<16} {r['precision']:<5} {str(r['channels_last']):<8} {str(r['compile']):<8} "
                  f"failed: {r['error']}", flush=True)
            continue
        bare = f"{r['bare_images_per_s']:10.0f}" if r["bare_images_per_s"] else f"{'':>10}"
        print(f"   {r['data']:<16} {r['precision']:<5} {str(r['channels_last']):<8} {str(r['compile']):<8} "
              f"{r['images_per_s']:10.0f} {bare} {r['vs_bare']:8.2f} {r['peak_mib']:9.0f}", flush=True)
    print("\n2. trials per GPU (search.run, FIFO, all at once, --gpus-per-worker 1/N, MNIST 32 px, ngf=ndf=64)")
    if dry or args.skip_packing:
        print("   skipped: --skip-packing" if args.skip_packing else
              "   skipped: packing trials onto a GPU needs a GPU (Ray places --gpus-per-worker only on one)")
    else:
        base = None
        for r in packing(args.trials_per_gpu, args.steps * 5):
            if "error" in r:
                print(f"   {r['trials']} trials: failed: {r['error']}")
                continue
            base = base or r["per_trial_images_per_s"]
            print(f"   {r['trials']} trials: {r['total_images_per_s']:9.0f} images/s in all, "
                  f"{r['per_trial_images_per_s']:8.0f} per trial ({r['per_trial_images_per_s'] / base:.2f} of one alone), "
                  f"trial {r['trial_s']:.1f} s, search {r['wall_s']:.0f} s", flush=True)
    if args.search:
        print("\n3. search.run --space ratio_lr --gpus-per-worker 0.25 on MNIST")
        if dry:
            print("   skipped: needs a GPU")
        else:
            argv = [sys.executable, "-m", "search.run", "--space", "ratio_lr", "--dataset", f"idx:{MNIST}",
                    "--image-size", "32", "--gpus-per-worker", "0.25", "--storage", tempfile.mkdtemp()]
            t0 = time.time()
            subprocess.run(argv, check=False)
            print(f"   wall time {time.time() - t0:.0f} s")
    sync()


if __name__ == "__main__":
    main()
