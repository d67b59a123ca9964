"""The one run configuration: a frozen dataclass, built from a dict, saved as JSON.

Every run (a trial of the search, a long training run, a test) is described by a
`TrainConfig`. It is written next to every checkpoint, and `best_config.json` is this
JSON, so a winning trial re-runs from it exactly.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from dcgan.augment import policy
from dcgan.files import atomic_write
from dcgan.losses import LOSSES as LOSS_TABLE

LOSSES = tuple(LOSS_TABLE)  # the names of dcgan.losses' table
# the fields a run can change while it trains (TrainConfig.schedule; set in place by dcgan.state.apply_hyperparameters)
SCHEDULABLE = ("lr_g", "lr_d", "beta1", "beta2", "d_steps_per_g")
INITS = ("dcgan", "kaiming")
PRECISIONS = ("fp32", "bf16")
IMAGE_SIZES = (8, 16, 28, 32, 64, 128, 256)
TOO_LONG = f"an integer of more than {sys.get_int_max_str_digits()} digits"  # JSON that Python will not read
# What to do about a config file that is not JSON (cut short by a full disk or an editor).
DAMAGED_CONFIG = "the file is damaged: give another (a run's config.json, a search's best_config.json)"


class ConfigError(ValueError):
    """A config that cannot describe a run; the message says how to fix it."""


@dataclass(frozen=True)
class TrainConfig:
    # The defaults of latent_dim, the objective and the optimisation are the DCGAN paper's (Radford et al.
    # 2015): the baseline, first trial of every search (spaces.baseline_params), is this config.
    # data
    dataset: str = "digits"  # digits | mnist | fashion-mnist | cifar10 | stacked-mnist | folder:PATH | idx:PATH
    data_root: str = ""  # where torchvision datasets live; "" = $DCGAN_DATA_ROOT or ~/.cache/dcgan-search/data
    image_size: int = 32
    holdout_fraction: float = 0.1  # seeded, fixed held-out split kept for evaluation
    # model
    latent_dim: int = 100
    ngf: int = 64
    ndf: int = 64
    init: str = "dcgan"  # dcgan = N(0, 0.02) | kaiming
    # objective
    loss: str = "bce"  # bce (non-saturating) | wgan-gp | hinge | lsgan
    gp_weight: float = 10.0  # only for wgan-gp
    d_steps_per_g: int = 1
    augment: str = ""  # D's inputs, real and fake, augmented: "" none | color,translation,cutout (dcgan/augment.py)
    # optimisation (Adam for both networks, as in the paper)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch_size: int = 64  # per process
    steps: int = 2000  # generator updates
    # G's weights averaged over training (an exponential moving average, Yazici et al. 2019), and the
    # average is what is sampled, scored and retrained from: 0 = off (the paper), else the decay,
    # ramped up over the first updates (dcgan/state.py, ema_average). Training is unchanged.
    ema: float = 0.0
    # evaluation and checkpoints
    eval_every: int = 500  # generator updates between evaluations (and checkpoints)
    eval_samples: int = 2000  # generated images scored at each evaluation (fixed noise)
    keep_checkpoints: int = 2
    # a loss beyond this, or NaN/inf, ends the run as diverged: while a GAN trains, its losses stay
    # within O(1-100); an exploding D (logits of 1e4 and more, D loss exactly 0) never recovers
    max_abs_loss: float = 1e4
    # runtime
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    channels_last: bool = False
    compile: bool = False  # torch.compile the networks
    cuda_graph: bool = False  # capture the training step in a CUDA graph and replay it (dcgan/graph.py)
    data_workers: int = 2  # DataLoader workers, for datasets streamed from disk
    # hyperparameters that change during the run (population-based training's answer): after generator
    # update `step`, the run goes on with the values given; JSON [{"step": 400, "lr_g": 1e-3}, ...].
    # Only the fields of SCHEDULABLE, which the loop can change in place; the fields above are step 0's.
    schedule: tuple = ()

    def __post_init__(self) -> None:
        # one spelling per set of transforms ("cutout, translation" -> "translation,cutout"), so that
        # two configs that train alike compare equal (a resumed run checks its config)
        try:
            object.__setattr__(self, "augment", ",".join(policy(self.augment)))
        except ValueError as e:  # an unknown transform: the message names the known ones
            raise ConfigError(str(e)) from None
        object.__setattr__(self, "schedule", _parse_schedule(self.schedule))
        _validate(self)

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """Build from a dict; an unknown key or a value of the wrong type is an error."""
        known = {f.name: f for f in fields(cls)}
        unknown = [k for k in values if k not in known]
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"unknown config key {key!r}{hint}")  # repr: one line, whatever the key
        return cls(**{k: _coerce(known[k], v) for k, v in values.items()})

    def replace(self, **changes: Any) -> "TrainConfig":
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["schedule"] = [{"step": step, **dict(values)} for step, values in self.schedule]
        return out

    # --- the schedule ---------------------------------------------------------------------------

    def values_at(self, step: int) -> dict[str, Any]:
        """The SCHEDULABLE fields' values that the updates after `step` train with."""
        values = {k: getattr(self, k) for k in SCHEDULABLE}
        for at, changes in self.schedule:
            if at <= step:
                values.update(changes)
        return values

    def change_steps(self) -> frozenset[int]:
        return frozenset(step for step, _ in self.schedule)

    # --- JSON ---------------------------------------------------------------------------------

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
        if path is not None:
            atomic_write(path, text)
        return text

    @classmethod
    def from_json(cls, source: str | Path) -> "TrainConfig":
        """From a JSON file, or JSON text. A file may wrap the config as {"config": {...}}."""
        text, what = str(source), "config"
        if not text.lstrip().startswith("{"):
            path = Path(source)
            if not path.is_file():
                raise ConfigError(f"config file not found: {path}")
            what = str(path)
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise ConfigError(f"{what} is not UTF-8 text; {DAMAGED_CONFIG}") from None
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            fix = DAMAGED_CONFIG if what != "config" else "give a JSON object of TrainConfig fields"
            raise ConfigError(f"{what} is not valid JSON ({e.msg}, line {e.lineno}); {fix}") from None
        except ValueError:  # an integer of more digits than Python converts
            raise ConfigError(f"{what} is not usable JSON ({TOO_LONG})") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{what} must be a JSON object of TrainConfig fields")
        if isinstance(values.get("config"), dict):  # best_config.json carries metrics beside it
            values = values["config"]
        return cls.from_dict(values)


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}  # --budget 90s, 20m, 2h (a bare number: seconds)


def parse_duration(text: str, flag: str = "--budget") -> float:
    """`"20m"` -> 1200.0: a wall time in seconds, minutes or hours (a bare number is seconds);
    ConfigError naming the forms for anything else, or a duration that is not positive."""
    value = str(text).strip().lower()
    unit = value[-1:] if value[-1:] in DURATION_UNITS else "s"
    number = value[:-1] if value[-1:] in DURATION_UNITS else value
    try:
        seconds = float(number) * DURATION_UNITS[unit]
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"{flag} takes a wall time such as 90s, 20m or 2h, got {text!r}")
    return seconds


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["lr_g=1e-3", "loss=hinge"]` -> {"lr_g": "1e-3", ...}; values are coerced by from_dict."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _coerce(field: dataclasses.Field, value: Any) -> Any:
    """Strings from the command line become the field's type; other types must already fit."""
    kind = field.type if isinstance(field.type, str) else field.type.__name__
    name = field.name
    try:
        if kind == "bool":
            if isinstance(value, str):
                low = value.lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return low in ("true", "1", "yes")
            if not isinstance(value, bool):
                raise ValueError
            return value
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str):
                return int(value)
            if not isinstance(value, int):
                raise ValueError
            return value
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "str":
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError, OverflowError):  # OverflowError: float() of an int beyond a float's range
        raise ConfigError(f"{name} must be {kind}, got {value!r}") from None
    return value


def _parse_schedule(value: Any) -> tuple:
    """A schedule as JSON gives it ([{"step": 400, "lr_g": 1e-3}, ...]) or as the config holds it
    (((400, (("lr_g", 1e-3),)), ...)) -> the latter: changes by step, their values coerced and checked."""
    if isinstance(value, str):  # --set schedule=... on the command line
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError as e:  # not JSON, or an integer of more digits than Python converts
            why = e.msg if isinstance(e, json.JSONDecodeError) else TOO_LONG
            raise ConfigError(f"schedule is not valid JSON ({why}); give a list such as "
                              '[{"step": 400, "lr_g": 0.001}]') from None
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"schedule must be a list of {{\"step\": N, field: value}}, got {value!r}"[:300])
    known = {f.name: f for f in fields(TrainConfig)}
    out, last = [], 0
    for change in value:
        if isinstance(change, dict):
            items = dict(change)
            step = items.pop("step", None)
        elif isinstance(change, (list, tuple)) and len(change) == 2 and isinstance(change[1], (list, tuple)):
            step, items = change[0], dict(change[1])
        else:
            raise ConfigError(f"a schedule change must be {{\"step\": N, field: value}}, got {change!r}"[:300])
        if isinstance(step, bool) or not isinstance(step, int) or step <= last:
            raise ConfigError(f"schedule steps must be integers >= 1 in increasing order, got {step!r} after {last}")
        unknown = [k for k in items if k not in SCHEDULABLE]
        if unknown or not items:
            raise ConfigError(f"a schedule change sets {', '.join(SCHEDULABLE)}, not {unknown[0] if unknown else 'nothing'}"
                              f" (at step {step})")
        out.append((step, tuple(sorted((k, _coerce(known[k], v)) for k, v in items.items()))))
        last = step
    return tuple(out)


def _validate(c: TrainConfig) -> None:
    def bad(msg: str) -> None:
        raise ConfigError(msg)

    if c.image_size not in IMAGE_SIZES:
        bad(f"image_size must be a power of two from 8 to 256, or 28; got {c.image_size}")
    if c.loss not in LOSSES:
        bad(f"unknown loss {c.loss!r}; known: {', '.join(LOSSES)}")
    if c.init not in INITS:
        bad(f"unknown init {c.init!r}; known: {', '.join(INITS)}")
    if c.precision not in PRECISIONS:
        bad(f"unknown precision {c.precision!r}; known: {', '.join(PRECISIONS)}")
    for name in ("lr_g", "lr_d"):
        v = getattr(c, name)
        if not (math.isfinite(v) and v > 0):
            bad(f"{name} must be a positive number, got {v}")
    for name in ("beta1", "beta2"):
        v = getattr(c, name)
        if not 0 <= v < 1:
            bad(f"{name} must be in [0, 1), got {v}")
    if not 0 <= c.ema < 1:
        bad(f"ema must be in [0, 1) (0 = off; 0.999 is usual), got {c.ema}")
    if not c.max_abs_loss > 0:
        bad(f"max_abs_loss must be > 0, got {c.max_abs_loss}")
    if not (math.isfinite(c.gp_weight) and c.gp_weight >= 0):
        bad(f"gp_weight must be >= 0, got {c.gp_weight}")
    if not 0 <= c.holdout_fraction < 1:
        bad(f"holdout_fraction must be in [0, 1), got {c.holdout_fraction}")
    for name in ("d_steps_per_g", "latent_dim", "ngf", "ndf", "batch_size", "steps", "eval_every",
                 "eval_samples", "keep_checkpoints"):
        if getattr(c, name) < 1:
            bad(f"{name} must be an integer >= 1, got {getattr(c, name)}")
    if c.data_workers < 0:
        bad(f"data_workers must be >= 0, got {c.data_workers}")
    if c.cuda_graph and c.compile:
        bad("cuda_graph=true captures the uncompiled step (compile's graphs are its own); set one of them")
    if not c.dataset:
        bad("dataset must not be empty")
    for step, changes in c.schedule:  # each change's values pass the same checks
        try:
            _validate(dataclasses.replace(c, schedule=(), **dict(changes)))
        except ConfigError as e:
            bad(f"schedule at step {step}: {e}")


LOCAL_PATH_DATASETS = ("idx", "stacked-mnist", "folder")  # the kinds that take an argument: a local path


def absolute_paths(overrides: dict) -> dict:
    """`overrides` (TrainConfig keys) with a local dataset path and data_root made absolute, from the
    current directory (and ~ expanded). For whoever hands a config to another process: a search's
    trial, and a Ray Train worker, runs in a folder of its own, where a relative path finds nothing."""
    out = dict(overrides)
    name, sep, arg = str(out.get("dataset", "")).partition(":")
    if name in LOCAL_PATH_DATASETS and arg:
        out["dataset"] = f"{name}{sep}{os.path.abspath(os.path.expanduser(arg))}"
    if out.get("data_root"):
        out["data_root"] = os.path.abspath(os.path.expanduser(out["data_root"]))
    return out
