"""Checkpoints: G (and its average, with `ema`), D, both optimizers, the step, every rank's RNG and
sampler state, and the config.

A checkpoint is a folder `step_XXXXXXX/` holding `state.pt`, `config.json` and `samples.png`,
written whole or not at all, so a run (or a Ray trial) resumes from any of them.

`state.pt` holds tensors, numbers and dicts only, and is read with `torch.load(weights_only=True)`:
a checkpoint from a shared bucket cannot run code when it is loaded. A file that cannot be read
so (truncated, corrupt, or holding a pickled object) raises `CheckpointError`, one line that
names the file.
"""

from __future__ import annotations

import copy
import json
import pickle
import re
import shutil
import zipfile
from pathlib import Path
from typing import Optional

import torch
import torch.distributed as dist

from dcgan.config import ConfigError, TrainConfig
from dcgan.files import BEST_CONFIG_JSON, EXPERIMENT_JSON, before_write, one_line
from dcgan.models import Generator
from dcgan.state import GAN, apply_hyperparameters, optimizer_state, unwrap

STATE_FILE = "state.pt"
# the key of a run file (a search's best_config.json) that names the checkpoint a long run continues
# from: a local path or a URI (experiment/winner.py writes it)
CONTINUE_FROM = "checkpoint"
# fields a longer run of a config may change (search.train --steps, dcgan.train --set steps=...)
# and still train that config
RUN_LENGTH_KEYS = ("steps", "eval_every", "eval_samples", "keep_checkpoints", "device", "data_workers")


class CheckpointError(ConfigError):
    """A checkpoint that cannot be read safely; the message names the file."""


def gather_rng(gan: GAN) -> list:
    """Every rank's noise and sampler state, gathered so rank 0 can save them (a collective)."""
    mine = {"noise": gan.noise.get_state(), "sampler": gan.sampler.state_dict()}
    if gan.world == 1:
        return [mine]
    everyone: list = [None] * gan.world
    dist.all_gather_object(everyone, mine)
    return everyone


def checkpoint_state(gan: GAN, rng: list) -> dict:
    """What a checkpoint holds (state.pt): G (and its average), D, both optimizers, the step, every
    rank's RNG and sampler state (`rng`, gather_rng's), and the process's torch RNG."""
    return {
        "step": gan.step,
        "g": unwrap(gan.g).state_dict(),
        **({"g_ema": gan.g_ema.module.state_dict(), "ema_n": int(gan.g_ema.n_averaged)} if gan.g_ema is not None else {}),
        "d": unwrap(gan.d).state_dict(),
        "opt_g": optimizer_state(gan.opt_g),
        "opt_d": optimizer_state(gan.opt_d),
        "rng": rng,
        "world": gan.world,
        "torch_rng": torch.get_rng_state(),
    }


def save_checkpoint(gan: GAN, ckpt_dir: Path, rng: list, grid_png: Optional[Path]) -> None:
    """checkpoint_state and the config in `ckpt_dir`, written to a temporary folder, then renamed: a
    checkpoint is whole or absent."""
    tmp = ckpt_dir.with_name(ckpt_dir.name + ".tmp")
    before_write(tmp / STATE_FILE)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    torch.save(checkpoint_state(gan, rng), tmp / STATE_FILE)
    gan.cfg.to_json(tmp / "config.json")
    if grid_png is not None and grid_png.exists():
        shutil.copy(grid_png, tmp / "samples.png")
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    tmp.rename(ckpt_dir)


def read_state(ckpt_dir: str | Path, mmap: bool = False) -> dict:
    """state.pt of a checkpoint folder, as tensors and plain values; `CheckpointError` if it is
    missing, truncated, corrupt, or holds anything but tensors and plain values."""
    path = Path(ckpt_dir) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:  # weights_only refused a global: a pickled object
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f"a pickled object ({found.group(1)})" if found else "a pickled object"
        raise CheckpointError(f"refusing checkpoint {path}: it holds {what}, which could run code when "
                              "loaded; use a checkpoint written by dcgan.train") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"checkpoint {path} is unreadable ({one_line(e)}): truncated or corrupt") from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"checkpoint {path} is not a dcgan checkpoint (no step)")
    return state


def load_checkpoint(gan: GAN, ckpt_dir: Path, rank: int) -> None:
    restore_state(gan, read_state(ckpt_dir), rank)


def restore_state(gan: GAN, state: dict, rank: int) -> None:
    """`gan` goes on from `state` (checkpoint_state's) with its own config's rates and betas."""
    unwrap(gan.g).load_state_dict(state["g"])
    unwrap(gan.d).load_state_dict(state["d"])
    gan.opt_g.load_state_dict(state["opt_g"])
    gan.opt_d.load_state_dict(state["opt_d"])
    apply_hyperparameters(gan)  # this run's rates and betas, not the ones the optimizers were saved with
    if gan.g_ema is not None and "g_ema" in state:  # else the average starts again from the resumed G
        gan.g_ema.module.load_state_dict(state["g_ema"])
        gan.g_ema.n_averaged.fill_(state["ema_n"])
    gan.ema_begun = gan.g_ema is not None and int(gan.g_ema.n_averaged) > 0
    gan.step = state["step"]
    if state["world"] == gan.world:  # the same world size continues every rank's streams exactly
        gan.noise.set_state(state["rng"][rank]["noise"])
        gan.sampler.load_state_dict(state["rng"][rank]["sampler"])
    else:  # a different world size: fresh streams, seeded by the step, so the run still continues
        gan.noise.manual_seed(gan.cfg.seed * 7 + gan.step * 1000 + rank)
    torch.set_rng_state(state["torch_rng"])


def copy_state(dst: GAN, src: GAN) -> None:
    """`dst` goes on from `src`'s state as from a checkpoint `src` saved now (a population-based
    exploit within one process), with dst's own config's rates and betas."""
    restore_state(dst, copy.deepcopy(checkpoint_state(src, gather_rng(src))), 0)


def run_checkpoints(out_dir: Optional[Path]) -> list[Path]:
    """A run folder's checkpoints, oldest first."""
    return sorted((Path(out_dir) / "checkpoints").glob("step_*[0-9]")) if out_dir else []


def latest_checkpoint(out_dir: Optional[Path]) -> Optional[Path]:
    found = run_checkpoints(out_dir)
    return found[-1] if found else None


def resume_candidates(path: Path) -> list[Path]:
    """Checkpoints to resume from, newest first: a checkpoint folder and the older ones beside it
    (a run's step_*, Ray's checkpoint_*), or a run folder's checkpoints."""
    if (path / STATE_FILE).is_file():
        older = sorted(p for p in path.parent.iterdir() if p.name < path.name and p.name.split("_")[0] ==
                       path.name.split("_")[0] and (p / STATE_FILE).is_file())
        return [path, *reversed(older)]
    return list(reversed(run_checkpoints(path)))


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder itself, else the checkpoint of the highest step anywhere under `path`: a
    `dcgan.train` run (checkpoints/step_*), a search trial's Ray Train run (checkpoint_*), or a
    `search.train` run. Unreadable checkpoints are passed over; `CheckpointError` if none is left."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"not found: {path}; pass a run folder or a checkpoint folder")
    if (path / STATE_FILE).is_file():
        return path
    found, refused = [], []
    for state in path.rglob(STATE_FILE):
        try:  # mmap: the step is read without loading the weights
            found.append((int(read_state(state.parent, mmap=True)["step"]), str(state.parent)))
        except CheckpointError as e:
            refused.append(str(e))
    if not found:
        why = f" ({refused[-1]})" if refused else ""
        raise CheckpointError(f"no checkpoint in {path}{why}; pass a run folder or a folder holding {STATE_FILE}")
    return Path(max(found)[1])


def winner_checkpoint(best_config: str | Path) -> tuple[Path, str]:
    """(checkpoint folder, which one) of a search's winner, from its best_config.json: of the
    checkpoint the file names (its trial's last, "checkpoint") and those under the file's folder
    of a run of its config (a longer run trained into the experiment; RUN_LENGTH_KEYS aside), the
    one of the highest step. `CheckpointError` if none is here."""
    path = Path(best_config)
    try:
        cfg = TrainConfig.from_json(path)
    except ConfigError as e:  # names the file when it is damaged
        where = "" if str(path) in str(e) else f"{path}: "
        raise CheckpointError(f"{where}{e}; or pass a checkpoint folder") from None
    recorded = json.loads(path.read_text()).get(CONTINUE_FROM)
    found = [c for c in [_here(recorded, path.parent)] if c is not None] if isinstance(recorded, str) else []
    for config_file in path.parent.rglob("config.json"):
        ckpt = config_file.parent
        if (ckpt / STATE_FILE).is_file() and ckpt not in found and _same_config(cfg, config_file):
            found.append(ckpt)
    steps = []
    for ckpt in found:
        try:
            steps.append((int(read_state(ckpt, mmap=True)["step"]), str(ckpt)))
        except CheckpointError:
            continue
    if not steps:
        where = f" (it names {recorded})" if recorded else ""
        raise CheckpointError(f"no checkpoint of the winner of {path} is here{where}; pass a checkpoint folder "
                              "(copy it from the experiment's storage first if it is there)")
    step, best = max(steps)
    other = TrainConfig.from_json(Path(best) / "config.json")
    return Path(best), ("the winning trial's last checkpoint" if other.steps == cfg.steps else
                        f"the last checkpoint of a {other.steps}-step run of its config")


def generator_checkpoint(path: str | Path) -> tuple[Path, str]:
    """(checkpoint folder, which one) to sample or score for `path`: a checkpoint folder itself; a
    best_config.json, or a search's folder holding one, its winner (`winner_checkpoint`); any other
    folder (a run), its checkpoint of the highest step. A search's folder without best_config.json is
    refused: the newest checkpoint in it may be any trial's, the paper's setting's confirmation too."""
    path = Path(path)
    if path.is_file():
        return winner_checkpoint(path)
    if (path / STATE_FILE).is_file():
        return path, "the checkpoint given"
    if (path / BEST_CONFIG_JSON).is_file():
        ckpt, which = winner_checkpoint(path / BEST_CONFIG_JSON)
        return ckpt, f"the winner in {BEST_CONFIG_JSON}: {which}"
    if (path / EXPERIMENT_JSON).is_file():
        raise CheckpointError(f"{path} is a search without {BEST_CONFIG_JSON} (it has not ended): which generator "
                              f"is unknown; pass a trial's folder ({path}/tune-<trial_id>), a checkpoint folder or "
                              f"a {BEST_CONFIG_JSON}")
    return find_checkpoint(path), "the checkpoint of the highest step under it"


def _here(recorded: str, base: Path) -> Optional[Path]:
    """The local checkpoint folder `recorded` (a path or URI) names, or, for an experiment copied or
    moved, the folder under `base` its path ends with; None if neither holds a checkpoint."""
    head = recorded.removeprefix("file://").split("?")[0]
    parts = [p for p in head.split("/") if p]
    for candidate in [Path(head)] + [base.joinpath(*parts[-k:]) for k in range(1, len(parts) + 1)]:
        if "://" not in str(candidate) and (candidate / STATE_FILE).is_file():
            return candidate
    return None


def _same_config(cfg: TrainConfig, config_file: Path) -> bool:
    try:
        other = TrainConfig.from_json(config_file).to_dict()
    except ConfigError:
        return False
    mine = cfg.to_dict()
    return all(other[k] == mine[k] for k in mine if k not in RUN_LENGTH_KEYS)


def load_generator(ckpt_dir: str | Path, device: str | torch.device = "cpu") -> tuple[Generator, TrainConfig, int]:
    """(G with the checkpoint's weights in eval mode, the run's config, the step) of a checkpoint folder.
    With `ema`, G is the average of its weights: what the run sampled and scored."""
    ckpt = Path(ckpt_dir)
    cfg = TrainConfig.from_json(ckpt / "config.json")
    state = read_state(ckpt)
    weights = state.get("g_ema", state["g"])  # the averaged G, where the run kept one (cfg.ema)
    out_layer = [v for k, v in weights.items() if k.endswith("weight") and v.dim() == 4][-1]  # (ngf, C, 4, 4)
    g = Generator(cfg.latent_dim, out_layer.shape[1], cfg.image_size, cfg.ngf)
    try:
        g.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {ckpt / STATE_FILE} does not match its config.json ({one_line(e)})") from None
    return g.to(device).eval(), cfg, int(state["step"])


def continued_checkpoint(config_file: str | Path, steps: int) -> Path:
    """The checkpoint that `config_file` (a search's best_config.json) names under CONTINUE_FROM, for
    a run of `steps` generator updates that goes on from it. ConfigError, naming the fix, if there is
    none, it is in remote storage, cannot be read, or is at or past `steps`."""
    try:
        where = json.loads(Path(config_file).read_text()).get(CONTINUE_FROM)
    except (OSError, ValueError, AttributeError):
        where = None
    if not where:
        raise ConfigError(f"{config_file} names no checkpoint to continue from; pass a search's best_config.json, "
                          "or drop --continue to train from step 0")
    if "://" in str(where):
        raise ConfigError(f"the checkpoint {where} is in remote storage; continue with python -m search.train "
                          f"--config {config_file} --continue, which reads it there")
    ckpt = _here(where, Path(config_file).parent)  # the experiment may have been moved since
    if ckpt is None:
        raise ConfigError(f"the checkpoint {where} that {config_file} names is not here; copy the experiment's "
                          "tune-<trial> folder back, or drop --continue to train from step 0")
    step = int(read_state(ckpt, mmap=True)["step"])
    if step >= steps:
        raise ConfigError(f"the checkpoint {ckpt} is at step {step}; pass --steps above it to train on")
    return ckpt


def prune_checkpoints(out_dir: Path, keep: int) -> None:
    for old in run_checkpoints(out_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def resumable_run(out: Path, previous: TrainConfig, cfg: TrainConfig) -> Optional[Path]:
    """The run folder to resume (None if it has no checkpoint yet): `cfg` may differ from the run's own
    config.json only in how long and how it runs (RUN_LENGTH_KEYS: more steps extend a finished run),
    and its steps must be at or past the run's last checkpoint."""
    mine, theirs = cfg.to_dict(), previous.to_dict()
    changed = [k for k in mine if mine[k] != theirs[k] and k not in RUN_LENGTH_KEYS]
    if changed:
        raise ConfigError(f"{out} holds a run of a different config ({changed[0]}: {theirs[changed[0]]!r} there, "
                          f"{mine[changed[0]]!r} here); pass another --out")
    last = latest_checkpoint(out)
    if last is None:
        return None
    step = int(read_state(last, mmap=True)["step"])
    if step > cfg.steps:
        raise ConfigError(f"{out} is at step {step}, past --steps {cfg.steps}; pass --steps {step} or more")
    return out
