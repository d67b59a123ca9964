"""The DCGAN training loop, and `python -m dcgan.train`.

    python -m dcgan.train --config run.json --set loss=hinge --out runs/hinge

Each generator update is `d_steps_per_g` discriminator updates, each on a fresh real batch,
then one generator update, as in the paper's Algorithm 1 (with `augment` set, D sees every
image, real and generated, through random differentiable transforms: dcgan/augment.py). Every
`eval_every` updates the loop saves a sample grid from fixed noise, scores the generator (FID and
diagnostics, when an evaluator is given), writes a checkpoint and a line of `metrics.jsonl`, and
calls `report`. With `ema` set, the generator sampled and scored is the moving average of G's
weights (`GAN.g_eval`), which the checkpoint holds beside G.

Distributed: when a torch.distributed process group exists, each rank trains on its own shard
with its own noise, gradients are averaged across ranks after every backward (so G and D stay
identical everywhere), and only rank 0 writes. The loop never imports Ray: the search passes
a `report` callback instead.

A NaN or inf loss, or one beyond `max_abs_loss`, ends the run with status "diverged"; it is
recorded, not raised.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.distributed as dist
import torch.nn as nn

from dcgan import keys
from dcgan.checkpoint import (CheckpointError, continued_checkpoint, gather_rng, load_checkpoint, prune_checkpoints,
                              resumable_run, resume_candidates, save_checkpoint)
from dcgan.config import ConfigError, TrainConfig, parse_duration, parse_overrides
from dcgan.data import Splits, check_data, load_splits
from dcgan.files import EXIT_DISK_FULL, append_jsonl, atomic_write, disk_full, disk_full_line, write_probe
from dcgan.distributed import any_rank, average_gradients, broadcast_module, check_device, dist_info, rank0_decides
from dcgan.losses import LOSSES, gradient_penalty
from dcgan.graph import stepper
from dcgan.state import GAN, apply_hyperparameters, average_in_place, setup, unwrap

Report = Callable[[dict, Optional[str]], None]  # (metrics, checkpoint dir on rank 0 else None)
CHECK_EVERY = 25  # updates between checks for NaN/inf (each check syncs with the device)
EXIT_INTERRUPTED = 130  # a CLI stopped by Ctrl-C: 128 + SIGINT, as a shell reports it
GRID_SIZE = 64  # images in the sample grid
UNBOUNDED_STEPS = 10**9  # the steps of a run that a wall time ends (dcgan.train --budget without --steps)


# --- the GAN steps --------------------------------------------------------------------------------


def d_step(gan: GAN, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """(1) Update D: maximise log D(x) + log(1 - D(G(z))), or the configured loss's D objective."""
    loss_fn = LOSSES[gan.cfg.loss]
    gan.opt_d.zero_grad(set_to_none=True)
    with gan.autocast():
        real_logits, fake_logits = gan.d_logits(real).float(), gan.d_logits(fake.detach()).float()
        loss = loss_fn.d_loss(real_logits, fake_logits)
    if loss_fn.needs_gradient_penalty:
        loss = loss + gan.cfg.gp_weight * gradient_penalty(gan.d_logits, real, fake, gan.noise)
    loss.backward()
    average_gradients(gan.d, gan.world)
    gan.opt_d.step()
    return {keys.D_LOSS: loss.detach(), keys.D_REAL: real_logits.detach().mean(), keys.D_FAKE: fake_logits.detach().mean()}


def g_step(gan: GAN, fake: torch.Tensor) -> dict[str, torch.Tensor]:
    """(2) Update G: maximise log D(G(z)) (non-saturating), or the configured loss's G objective."""
    gan.opt_g.zero_grad(set_to_none=True)
    with gan.autocast():
        loss = LOSSES[gan.cfg.loss].g_loss(gan.d_logits(fake).float())
    loss.backward()
    average_gradients(gan.g, gan.world)
    gan.opt_g.step()
    return {keys.G_LOSS: loss.detach()}


def train_step(gan: GAN, reals: Optional[list[torch.Tensor]] = None) -> torch.Tensor:
    """One generator update: d_steps_per_g D updates, each on a fresh real batch, then one G update.
    The last D update's fake batch is kept, with its graph, for the G update (as the paper's code does).
    `reals`: the D updates' batches, given rather than drawn (a step that a CUDA graph captures:
    dcgan.graph). Once the moving average has begun, a step asks the host nothing."""
    k, b = gan.cfg.d_steps_per_g, gan.cfg.batch_size
    for i in range(k):
        real = gan.sampler.next() if reals is None else reals[i]
        grad_ctx = contextlib.nullcontext() if i == k - 1 else torch.no_grad()
        with grad_ctx, gan.autocast():
            fake = gan.g(gan.z(b))  # (B, C, H, W)
        logged = d_step(gan, real, fake)
    logged |= g_step(gan, fake)
    if gan.g_ema is not None and gan.ema_begun:  # (AveragedModel's own update asks the device if it has begun)
        average_in_place(gan.g_ema, unwrap(gan.g))
    elif gan.g_ema is not None:
        gan.g_ema.update_parameters(unwrap(gan.g))
        gan.ema_begun = True
    gan.sum_losses(logged)  # device tensors: no sync with the device here
    gan.n_summed += 1
    gan.step += 1
    losses = torch.stack([logged[keys.D_LOSS].float(), logged[keys.G_LOSS].float()])
    return ~torch.isfinite(losses).all() | (losses.abs() > gan.cfg.max_abs_loss).any()  # diverged?


# --- evaluation, checkpoints and files -----------------------------------------------------------


@dataclass
class RunResult:
    status: str  # completed | diverged
    step: int
    metrics: dict  # the last evaluation's
    out_dir: Optional[Path]
    loop_s: float = 0.0  # wall seconds in the loop (steps and evaluations), set-up excluded
    cfg: Optional[TrainConfig] = None  # the config trained: with a deadline, its steps are where it stopped


def fixed_grid_noise(cfg: TrainConfig) -> torch.Tensor:
    return torch.randn(GRID_SIZE, cfg.latent_dim, generator=torch.Generator().manual_seed(cfg.seed + 7919))


@torch.no_grad()
def sample_grid(g: nn.Module, z: torch.Tensor, path: Path) -> None:
    """Save G(z) for fixed z as a PNG grid, G in eval mode (BatchNorm running statistics)."""
    from torchvision.utils import save_image

    was_training = g.training
    g.eval()
    images = g(z.to(next(g.parameters()).device)).float().cpu()
    g.train(was_training)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images, str(path), nrow=int(math.sqrt(len(images))), normalize=True, value_range=(-1, 1))


def _take_sums(gan: GAN) -> dict[str, float]:
    n, gan.n_summed = gan.n_summed, 0
    out = {k: float(v) / n for k, v in gan.sums.items()} if n else {}
    if gan.world > 1 and out:
        t = torch.tensor([out[k] for k in sorted(out)], dtype=torch.float64)
        dist.all_reduce(t)
        out = {k: float(v) / gan.world for k, v in zip(sorted(out), t)}
    for v in gan.sums.values():
        v.zero_()  # in place: a captured step adds to these tensors
    return out


def _finite_or_none(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}


# --- the run --------------------------------------------------------------------------------------


def train(cfg: TrainConfig, out_dir: Optional[str | Path] = None, *, report: Optional[Report] = None,
          resume_from: Optional[str | Path] = None, evaluator: Any = "auto",
          log: Callable[[str], None] = print, splits: Optional[Splits] = None,
          deadline: Optional[float] = None) -> RunResult:
    """Train `cfg` for `cfg.steps` generator updates; see the module docstring.

    out_dir: where rank 0 writes (None: write nothing). resume_from: a checkpoint folder, or a
    run folder whose latest checkpoint is used. evaluator: a callable G -> metrics dict, None
    for losses only, or "auto" to build the FID/diagnostics evaluator for the dataset. splits: the
    data, if not `cfg.dataset`'s (benchmarks pass synthetic data). deadline: a `time.monotonic()`
    by which the run ends, its last evaluation and checkpoint included (each evaluation's time is
    kept back for it); stopped at step k, it is a run of k steps (`RunResult.cfg`, and the run
    folder's config.json), which a run of `--steps k` reproduces and a longer one extends."""
    rank, world = dist_info()
    splits = splits or load_splits(cfg)
    gan = setup(cfg, splits)
    if evaluator == "auto":
        from dcgan.metrics import build_evaluator

        evaluator = build_evaluator(splits, gan.device, cfg.eval_samples, seed=cfg.seed)
    out = Path(out_dir) if (out_dir is not None and rank == 0) else None
    if resume_from is not None:  # None: a fresh run
        resume(gan, resume_from, rank, log)
    follow_schedule(gan, cfg)  # the values in force after the step resumed from (none: cfg's own)
    step = stepper(gan, train_step)  # train_step itself, or captured in a CUDA graph (cfg.cuda_graph)
    changes = cfg.change_steps()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        cfg.to_json(out / "config.json")
        _truncate_metrics(out / "metrics.jsonl", gan.step)
    grid_z = fixed_grid_noise(cfg)
    bad = torch.zeros((), device=gan.device, dtype=torch.bool)
    status = keys.COMPLETED if gan.step >= cfg.steps else keys.RUNNING  # a finished run resumed: nothing to do
    metrics, t0, step0 = {}, time.perf_counter(), gan.step
    eval_s = 0.0  # the last evaluation's seconds: a deadline is met with one more evaluation
    while gan.step < cfg.steps:
        bad |= step(gan)
        # stop where the time left holds only the last evaluation (at an evaluation's step: only two)
        margin = eval_s * (2 if gan.step % cfg.eval_every == 0 else 1)
        if deadline is not None and gan.step < cfg.steps and time_is_up(deadline, margin, gan, world):
            cfg = cfg.replace(steps=gan.step)  # the run ends here: this step is its last, evaluated and saved
            gan.cfg = gan.cfg.replace(steps=gan.step)
            if out is not None:
                cfg.to_json(out / "config.json")
        if gan.step % CHECK_EVERY == 0 or gan.step % cfg.eval_every == 0 or gan.step == cfg.steps:
            if any_rank(bad, world):
                status = keys.DIVERGED
                break
        if gan.step % cfg.eval_every == 0 or gan.step == cfg.steps:
            status = keys.COMPLETED if gan.step == cfg.steps else keys.RUNNING
            t_eval = time.perf_counter()
            metrics = evaluate_and_save(gan, out, evaluator, grid_z, status, report)
            eval_s = time.perf_counter() - t_eval
            rate = (gan.step - step0) / (time.perf_counter() - t0)
            log(_progress_line(metrics, cfg.steps, rate, deadline))
        if gan.step in changes:  # after the step's evaluation: it scores the values that trained it
            follow_schedule(gan, cfg)
    if status == keys.DIVERGED:
        metrics = {keys.STEP: gan.step, keys.STATUS: keys.DIVERGED,
                   keys.REASON: f"a loss became NaN, inf or beyond {cfg.max_abs_loss:g}"}
        log(f"step {gan.step}/{cfg.steps}: diverged ({metrics[keys.REASON]}); run recorded as diverged")
        if out is not None:
            append_jsonl(out / "metrics.jsonl", metrics)
        if report is not None:
            report(dict(metrics), None)
    if out is not None:
        atomic_write(out / "status.json", json.dumps({keys.STATUS: status, keys.STEP: gan.step}) + "\n")
    return RunResult(status, gan.step, metrics, out, time.perf_counter() - t0, cfg)


def follow_schedule(gan: GAN, cfg: TrainConfig) -> None:
    """gan trains on with the values `cfg.schedule` sets after gan.step (cfg's own before any change)."""
    if cfg.schedule:
        apply_hyperparameters(gan, cfg.replace(**cfg.values_at(gan.step)))


def resume(gan: GAN, resume_from: str | Path, rank: int, log: Callable[[str], None]) -> None:
    """Load the newest readable checkpoint of `resume_from` (a checkpoint folder, or a run folder).
    An unreadable one (truncated, corrupt, a pickled object) is reported and the one before it is
    tried; `CheckpointError` if there were checkpoints and none could be read."""
    candidates = resume_candidates(Path(resume_from))
    for i, ckpt in enumerate(candidates):
        try:
            load_checkpoint(gan, ckpt, rank)
        except CheckpointError as e:
            log(f"{e}; {'falling back to ' + str(candidates[i + 1]) if i + 1 < len(candidates) else 'none left'}")
            continue
        log(f"resumed from {ckpt} at step {gan.step}")
        return
    if candidates:
        raise CheckpointError(f"no readable checkpoint to resume from in {resume_from}")


def evaluate_and_save(gan: GAN, out: Optional[Path], evaluator, grid_z: torch.Tensor, status: str,
                      report: Optional[Report]) -> dict:
    """At an evaluation: average the losses, broadcast BatchNorm statistics, score G, save the
    grid, the checkpoint and a metrics line (rank 0), and call `report` on every rank."""
    rank, _ = dist_info()
    metrics: dict[str, Any] = {keys.STEP: gan.step, keys.STATUS: status, **_take_sums(gan)}
    broadcast_module(unwrap(gan.g), gan.world)  # ranks' BatchNorm running stats differ; use rank 0's
    if gan.g_ema is not None:
        broadcast_module(gan.g_ema, gan.world)  # so do their averages
    if evaluator is not None:
        metrics |= evaluator(gan.g_eval())
    rng = gather_rng(gan)
    metrics = _finite_or_none(metrics)
    ckpt = None
    if out is not None:
        grid = out / "samples" / f"step_{gan.step:07d}.png"
        sample_grid(gan.g_eval(), grid_z, grid)
        # the metrics line before the checkpoint: a run stopped between the two resumes from the
        # checkpoint before, drops the line and evaluates that step again; the other way round, the
        # step's line would be missing for good
        append_jsonl(out / "metrics.jsonl", metrics)
        ckpt = out / "checkpoints" / f"step_{gan.step:07d}"
        save_checkpoint(gan, ckpt, rng, grid)
        prune_checkpoints(out, gan.cfg.keep_checkpoints)
    if report is not None:
        report(dict(metrics), str(ckpt) if ckpt is not None and rank == 0 else None)
    return metrics


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop lines written after the checkpoint we resume from, and any line cut short (a
    full disk while appending)."""
    if not path.exists():
        return
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            if json.loads(line)[keys.STEP] <= step:
                rows.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    atomic_write(path, "".join(rows))  # whole or not at all: a full disk keeps the old file


def time_is_up(deadline: float, eval_s: float, gan: GAN, world: int) -> bool:
    """Whether a run with `deadline` must end after this step to be evaluated and saved in time; under
    DDP rank 0's clock decides, every CHECK_EVERY steps, so that every rank stops at the same step."""
    if world > 1 and gan.step % CHECK_EVERY:
        return False
    return rank0_decides(time.monotonic() + eval_s >= deadline, world, gan.device)


def _progress_line(m: dict, steps: int, rate: float, deadline: Optional[float] = None) -> str:
    left = f" ({max(0.0, deadline - time.monotonic()):.0f} s left)" if deadline is not None else ""
    parts = [f"step {m[keys.STEP]}/{steps}" if steps < UNBOUNDED_STEPS else f"step {m[keys.STEP]}{left}"]
    for key in (*keys.LOSS_KEYS, keys.FID):
        if m.get(key) is not None:
            parts.append(f"{key} {m[key]:.4g}")
    if m.get(keys.COLLAPSE):
        parts.append(f"collapse {m[keys.COLLAPSE]}")
    parts.append(f"{rate:.2f} steps/s")
    return "  ".join(parts)


# --- CLI ------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dcgan.train", description="Train one DCGAN config on one device.")
    p.add_argument("--config", help="a TrainConfig JSON file (e.g. best_config.json); default: the run's own "
                                    "config.json where --out holds a run, else the defaults")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field; repeatable")
    p.add_argument("--out", help="run folder (default: runs/<dataset>-<time>); an existing run there resumes, "
                                 "and with more --steps goes on from its last checkpoint")
    p.add_argument("--steps", type=int, help="generator updates in all (default: the config's; as --set steps=N)")
    p.add_argument("--budget", metavar="TIME", help="stop by this wall time of the command (90s, 20m, 2h), with a "
                                                    "last evaluation and checkpoint; without --steps, no step limit")
    p.add_argument("--continue", dest="continue_run", action="store_true",
                   help="start from the checkpoint that --config names (a search's best_config.json: its winner's "
                        "last checkpoint) and train on to --steps with the config's last hyperparameters")
    p.add_argument("--no-eval", action="store_true", help="skip FID and diagnostics (losses and samples only)")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.monotonic()  # a --budget counts from here: set-up, training and the last evaluation
    try:
        budget = parse_duration(args.budget) if args.budget is not None else None
        out = Path(args.out) if args.out else None
        previous = TrainConfig.from_json(out / "config.json") if out and (out / "config.json").exists() else None
        base = TrainConfig.from_json(args.config).to_dict() if args.config else previous.to_dict() if previous else {}
        overrides = parse_overrides(args.overrides)
        if args.steps is not None or (budget is not None and "steps" not in overrides):  # a budget alone: no step limit
            overrides["steps"] = args.steps if args.steps is not None else UNBOUNDED_STEPS
        cfg = TrainConfig.from_dict({**base, **overrides})
        if args.continue_run and not args.config:
            raise ConfigError("--continue needs --config, a search's best_config.json (it names the checkpoint)")
        start = continued_checkpoint(args.config, cfg.steps) if args.continue_run else None
        check_data(cfg)  # a missing, unreadable or too small dataset fails here, before anything is written
        check_device(cfg)  # so does a device (or bf16) that this machine lacks
        out = out or Path("runs") / f"{cfg.dataset.replace(':', '_').replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
        if previous is not None:
            resume = resumable_run(out, previous, cfg) or start  # a continued run stopped: from its own checkpoints
        elif out.exists() and any(out.iterdir()):
            raise ConfigError(f"{out} exists and is not a run folder; pass another --out")
        else:
            resume = start
        _check_writable(out)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    length = f"{budget:g} s" if cfg.steps >= UNBOUNDED_STEPS else f"{cfg.steps} steps" + (
        f" or {budget:g} s" if budget is not None else "")
    print(f"training {cfg.dataset} at {cfg.image_size}px, loss {cfg.loss}, {length} -> {out}")

    def go_on() -> str:  # the command that goes on from the run's last checkpoint
        again = [*(sys.argv[1:] if argv is None else argv), *([] if args.out else ["--out", str(out)])]
        return shlex.join(["python", "-m", "dcgan.train", *again])

    try:
        result = train(cfg, out, resume_from=resume, evaluator=None if args.no_eval else "auto",
                       deadline=started + budget if budget is not None else None)
    except KeyboardInterrupt:  # Ctrl-C: the checkpoints written so far stay, and the run goes on from the last
        print(f"\nstopped; to go on from its last checkpoint:\n  {go_on()}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:  # a full disk: every file written whole, so the run goes on from its last checkpoint
        if (full := disk_full(e)) is None:
            raise
        print(f"error: {disk_full_line(full, f'go on with: {go_on()}')}", file=sys.stderr)
        return EXIT_DISK_FULL
    if result.status == keys.DIVERGED:
        print(f"diverged at step {result.step}; recorded in {out / 'status.json'}", file=sys.stderr)
        return 1
    print(f"done: {out} (step {result.step})")
    return 0


def _check_writable(out: Path) -> None:
    why = write_probe(out)
    if why:
        raise ConfigError(f"{why}; pass a writable --out")


if __name__ == "__main__":
    sys.exit(main())
