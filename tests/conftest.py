"""Shared fixtures.

`metrics_cache`: one DCGAN_CACHE folder for the whole session, so that the metrics tests train
each classifier once instead of once per test.

`synthetic` / `experiment_dir`: synthetic experiment directories, written by the real writer
(`experiment.Experiment`) with no Ray and no training: sample grids as real PNGs, and a real
Optuna SQLite study created with optuna directly. `experiment/` and `reports/` are tested on them.

`pytest_xdist_make_scheduler`: the suite runs in two processes (pytest-xdist, pyproject's addopts),
every test that may start Ray in one of them (one Ray instance per machine: docs/ray.md), the
others in the other.

`sigint_as_in_a_terminal`: Python's own SIGINT handler for the test, and the default disposition
for the processes it starts, whatever the suite inherited (a suite started as `cmd &` by a script
ignores SIGINT, and its children would too).
"""

from __future__ import annotations

import io
import math
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest


RAY_FOLDERS = ("search", "cluster")  # tests/<folder>/: the tests that may start Ray, or join one


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own choice from --dist
def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scheduler for this suite: two units of work, one to each process, each run in
    collection order: the tests of RAY_FOLDERS, and the rest. (Not xdist's `loadgroup` with marks:
    it tags test ids in a way that pytest 9.2 ignores, pytest-xdist issue #1386.)"""
    from xdist.scheduler import LoadScopeScheduling

    class RayInOneProcess(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            parts = nodeid.split("::")[0].split("/")  # tests/<folder>/test_x.py
            return "ray" if len(parts) > 2 and parts[1] in RAY_FOLDERS else "rest"

    return RayInOneProcess(config, log)


def pytest_collection_modifyitems(config, items):
    """Tests marked `quiet_machine` (they time a run against its wall-time budget) last in their
    process: by then the suite's other process, which loads both cores, has ended. (A budget's
    steps come from step times measured at its start: measured while the other process still ran,
    they planned a search that ended at 75 s of a 120 s budget.)"""
    items.sort(key=lambda item: item.get_closest_marker("quiet_machine") is not None)  # stable


@pytest.fixture(scope="session")
def metrics_cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("dcgan-cache")


@pytest.fixture
def metrics_cache(metrics_cache_dir, monkeypatch):
    monkeypatch.setenv("DCGAN_CACHE", str(metrics_cache_dir))
    monkeypatch.setenv("DCGAN_NO_DOWNLOAD", "1")
    return metrics_cache_dir


@pytest.fixture
def sigint_as_in_a_terminal():
    """SIGINT handled as in a terminal: Python's KeyboardInterrupt here, and (a handler is reset on
    exec, where an ignored signal stays ignored) the default in every process the test starts."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


# --- synthetic experiments -----------------------------------------------------------------------

EXTRACTOR, EVAL_SAMPLES, REFERENCE = "digits-classifier", 2000, "digits/train"
BASELINE_PARAMS = {"lr_g": 2e-4, "lr_d": 2e-4, "d_steps_per_g": 1}


@dataclass
class TrialSpec:
    """One synthetic trial: its FID at each evaluation, and how it ended."""

    trial_id: str
    params: dict[str, Any]
    fids: list[float | None]  # one per evaluation; None = diverged at that evaluation
    status: str = "completed"  # status.json's word
    collapse: list[str] | None = None  # verdict per evaluation; default "ok"
    protocol: tuple[str, int, str] = (EXTRACTOR, EVAL_SAMPLES, REFERENCE)
    samples: bool = True


def default_trials() -> list[TrialSpec]:
    """A small search: a baseline, a clear winner, a collapsed trial with the lowest FID,
    a diverged one, two stopped early by ASHA, one running, one not started, and one whose
    generator never learned."""
    return [
        TrialSpec("t000_base", dict(BASELINE_PARAMS, loss="bce", latent_dim=100), [80.0, 60.0, 50.0]),
        TrialSpec("t001_best", {"lr_g": 4e-4, "lr_d": 1e-4, "d_steps_per_g": 2, "loss": "hinge", "latent_dim": 64},
                  [70.0, 45.0, 30.0]),
        TrialSpec("t002_collapsed", {"lr_g": 1e-3, "lr_d": 1e-3, "d_steps_per_g": 1, "loss": "bce", "latent_dim": 128},
                  [40.0, 20.0, 10.0], collapse=["ok", "partial", "collapsed"]),
        TrialSpec("t003_diverged", {"lr_g": 5e-3, "lr_d": 5e-3, "d_steps_per_g": 5, "loss": "lsgan", "latent_dim": 100},
                  [90.0, None], status="diverged"),
        TrialSpec("t004_stopped", {"lr_g": 5e-5, "lr_d": 3e-4, "d_steps_per_g": 3, "loss": "bce", "latent_dim": 64},
                  [120.0], status="stopped"),
        TrialSpec("t005_stopped", {"lr_g": 1e-4, "lr_d": 5e-5, "d_steps_per_g": 2, "loss": "wgan-gp", "latent_dim": 128},
                  [95.0, 85.0], status="stopped"),
        TrialSpec("t006_partial", {"lr_g": 3e-4, "lr_d": 2e-4, "d_steps_per_g": 1, "loss": "hinge", "latent_dim": 100},
                  [75.0, 40.0], collapse=["ok", "partial"]),
        TrialSpec("t007_running", {"lr_g": 2.5e-4, "lr_d": 1.5e-4, "d_steps_per_g": 2, "loss": "bce", "latent_dim": 64},
                  [85.0], status="running"),
        TrialSpec("t008_pending", {"lr_g": 6e-4, "lr_d": 1e-4, "d_steps_per_g": 4, "loss": "lsgan", "latent_dim": 128},
                  [], status="pending", samples=False),
        TrialSpec("t009_not_learned", {"lr_g": 1.2e-5, "lr_d": 7e-4, "d_steps_per_g": 2, "loss": "bce", "latent_dim": 64},
                  [2200.0, 2300.0], status="stopped", collapse=["not_learned", "not_learned"]),
    ]


def write_experiment(root: Path, trials: list[TrialSpec] | None = None, *, name: str = "ratio_lr-20261122-101500",
                     space: str = "ratio_lr", finished: bool = True, eval_every: int = 200, steps: int = 600,
                     optuna_db: bool = True, grid_px: int = 16, seed: int = 0,
                     best_config_trial: str | None = "lowest") -> Path:
    """Write a synthetic experiment to `root/name` through the real writer and return its path.
    best_config.json (when `finished`) holds `best_config_trial`; "lowest": the trial of the lowest
    last FID, collapsed or not, so that tests can see a pick that differs from the leaderboard's."""
    from experiment import Experiment, rank_trials
    from experiment.layout import BEST_CONFIG_JSON
    from experiment.winner import best_config_json

    trials = default_trials() if trials is None else trials
    exp = Experiment(str(root / name))
    rng = random.Random(seed)
    baseline = next((t.trial_id for t in trials if all(t.params.get(k) == v for k, v in BASELINE_PARAMS.items())),
                    None)
    exp.write_info({
        "name": name, "space": space, "dataset": "digits", "image_size": 16, "metric": "fid", "mode": "min",
        "scheduler": "asha", "sampler": "tpe", "startup_trials": 3, "confirm": {"top": 2, "seeds": 2, "steps": steps},
        "trials_requested": len(trials), "steps": steps, "population": None, "perturb_every": None, "pack": None, "seed": 0, "concurrency": 2,
        "workers_per_trial": 2, "cpus_per_worker": 1, "gpus_per_worker": 0.5,
        "extractor": EXTRACTOR, "eval_samples": EVAL_SAMPLES, "reference": REFERENCE,
        "baseline_trial_id": baseline, "baseline_params": BASELINE_PARAMS, "warm_start": [],
        "fixed": _fixed(steps, eval_every), "mlflow": None, "wandb": None,
        "budget_requested": None, "budget_steps_requested": None, "budget": None,
        "started_at": "2026-11-22T10:15:00+00:00",
        "finished_at": "2026-11-22T10:45:00+00:00" if finished else None,
        "wall_time_s": 1800.0 if finished else None,
        "versions": {"ray": "2.60.0", "torch": "2.14.1", "optuna": "5.0.0", "python": "3.11.7",
                     "dcgan_search": "0.1.0"},
    })
    for spec in trials:
        _write_trial(exp, spec, steps, eval_every, grid_px, rng)
    if optuna_db:
        _write_study(Path(exp.path("optuna.db")), name, trials, eval_every)
    done = [t for t in trials if t.fids and t.fids[-1] is not None]
    if finished and done and best_config_trial is not None:
        wanted = min(done, key=lambda t: t.fids[-1]).trial_id if best_config_trial == "lowest" else best_config_trial
        best = next(t for t in rank_trials(exp).trials if t.trial_id == wanted)
        exp.write_json(best_config_json(Experiment(exp.uri), best), BEST_CONFIG_JSON)
    return Path(exp.uri)


def _fixed(steps: int, eval_every: int) -> dict[str, Any]:
    return {"augment": "translation", "dataset": "digits", "eval_every": eval_every, "image_size": 16, "steps": steps}


def _config(spec: TrialSpec, steps: int, eval_every: int) -> dict[str, Any]:
    from spaces import trial_config

    return trial_config(_fixed(steps, eval_every), spec.params).to_dict()


def _write_trial(exp, spec: TrialSpec, steps: int, eval_every: int, grid_px: int, rng: random.Random) -> None:
    from experiment.schema import result_row

    exp.start_trial(spec.trial_id, spec.params, _config(spec, steps, eval_every))
    step = 0
    for i, fid in enumerate(spec.fids):
        step = (i + 1) * eval_every
        last = i == len(spec.fids) - 1
        if fid is None:
            row_status = "diverged"
        elif last and spec.status == "completed":
            row_status = "completed"
        else:
            row_status = "running"
        extractor, n, reference = spec.protocol
        quality = 0.0 if fid is None else max(0.0, min(1.0, 1 - fid / 150))
        metrics = {
            "step": step, "status": row_status, "d_loss": rng.uniform(0.3, 1.2), "g_loss": rng.uniform(0.7, 3.0),
            "d_real": rng.uniform(0, 3), "d_fake": rng.uniform(-3, 0),
            "fid": fid if fid is not None else math.nan,  # as a diverged trial reports it
            "extractor": extractor, "n": n, "reference": reference,
            "precision": quality, "recall": quality * 0.9, "density": quality * 1.1, "coverage": quality * 0.8,
            "class_coverage": quality, "class_kl": 1 - quality, "duplicate_rate": 0.01, "memorization": 1.2,
            "collapse": (spec.collapse or ["ok"] * len(spec.fids))[i],
        }
        exp.append_result(spec.trial_id, result_row(metrics, time_s=30.0 * (i + 1)))
        if spec.samples:
            exp.write_bytes(_grid_png(grid_px, rng), *exp.sample_parts(spec.trial_id, step))
    exp.write_status(spec.trial_id, spec.status, step)


def add_confirmation(exp_dir, fids: dict[str, list[float]]) -> None:
    """Confirmation runs as search.confirm writes them, each at the trial's last step:
    {trial_id: [FID with seed 1, with seed 2, ...]}."""
    from dcgan import keys
    from experiment import Experiment
    from experiment.layout import CONFIRM, confirm_name
    from experiment.schema import COMPLETED, result_row

    exp = Experiment(str(exp_dir))
    for trial_id, per_seed in fids.items():
        trial = exp.trial(trial_id)
        last = trial.evaluations[-1]
        for seed, fid in enumerate(per_seed, start=1):
            name = confirm_name(trial_id, seed)
            exp.start_trial(name, trial.params, {**trial.config, "seed": seed}, folder=CONFIRM)
            row = {**last, keys.STATUS: COMPLETED, keys.FID: fid, keys.COLLAPSE: keys.OK}
            exp.append_result(name, result_row(row, last["time_s"]), folder=CONFIRM)
            exp.write_status(name, COMPLETED, last[keys.STEP], folder=CONFIRM)


def _grid_png(px: int, rng: random.Random) -> bytes:
    """An 8x8 grid of px-by-px grey tiles, like torchvision's save_image of 64 samples."""
    from PIL import Image

    side = 8 * px + 9 * 2
    image = Image.new("L", (side, side), 0)
    for r in range(8):
        for c in range(8):
            tile = Image.effect_noise((px, px), rng.uniform(20, 90))
            image.paste(tile, (2 + c * (px + 2), 2 + r * (px + 2)))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _write_study(path: Path, name: str, trials: list[TrialSpec], eval_every: int = 200) -> None:
    """The study search.searcher.ExperimentSearch leaves: every FID an intermediate value at its step;
    completed trials COMPLETE, stopped-early ones PRUNED, diverged ones FAIL."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {
        "lr_g": FloatDistribution(1e-5, 1e-2, log=True), "lr_d": FloatDistribution(1e-5, 1e-2, log=True),
        "d_steps_per_g": IntDistribution(1, 5), "loss": CategoricalDistribution(["bce", "hinge", "lsgan", "wgan-gp"]),
        "latent_dim": CategoricalDistribution([64, 100, 128]),
        "beta1": FloatDistribution(0.0, 0.9), "beta2": FloatDistribution(0.9, 0.999),
    }
    study = optuna.create_study(storage=f"sqlite:///{path}", study_name=name, direction="minimize")
    states = {"completed": optuna.trial.TrialState.COMPLETE, "stopped": optuna.trial.TrialState.PRUNED,
              "diverged": optuna.trial.TrialState.FAIL, "failed": optuna.trial.TrialState.FAIL}
    for spec in trials:
        state = states.get(spec.status, optuna.trial.TrialState.RUNNING)
        study.add_trial(optuna.trial.create_trial(
            state=state, params=spec.params, distributions={k: distributions[k] for k in spec.params},
            value=spec.fids[-1] if state == optuna.trial.TrialState.COMPLETE else None,
            intermediate_values={(i + 1) * eval_every: f for i, f in enumerate(spec.fids) if f is not None}))
    del study  # release the SQLite engine before the report opens a copy


def many_trials(n: int, seed: int = 1) -> list[TrialSpec]:
    """A smoke-sized search of n trials, for build size and time."""
    rng = random.Random(seed)
    specs = []
    for i in range(n):
        params = {"lr_g": 10 ** rng.uniform(-4.5, -2.5), "lr_d": 10 ** rng.uniform(-4.5, -2.5),
                  "d_steps_per_g": rng.randint(1, 5), "loss": rng.choice(["bce", "hinge", "lsgan"]),
                  "latent_dim": rng.choice([64, 100, 128])}
        if i == 0:
            params.update(BASELINE_PARAMS)
        evals = rng.randint(1, 3)
        start = rng.uniform(60, 140)
        fids = [start * (0.75 ** k) for k in range(evals)]
        status = "completed" if evals == 3 else "stopped"
        specs.append(TrialSpec(f"trial_{i:03d}", params, fids, status=status))
    return specs


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST test set (10,000 images, IDX files) in ../shared beside the repo; skips where it is not."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    if not path.is_dir():
        pytest.skip("the shared MNIST test set (../shared/data/mnist) is not on this machine")
    return path


@pytest.fixture(scope="session")
def experiment_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default synthetic experiment, written once per session: read it, never write into it
    (copy it with shutil.copytree first)."""
    return write_experiment(tmp_path_factory.mktemp("experiment"))


@pytest.fixture(scope="session")
def synthetic() -> SimpleNamespace:
    """The builder, for tests that write their own experiment. A fixture rather than
    `from conftest import ...`, which picks up whichever conftest.py was imported first
    when tests/search/ (or any other folder) has one too."""
    return SimpleNamespace(write_experiment=write_experiment, TrialSpec=TrialSpec, many_trials=many_trials,
                           default_trials=default_trials, BASELINE_PARAMS=BASELINE_PARAMS,
                           add_confirmation=add_confirmation)


@pytest.fixture(scope="session")
def user_folders(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Image folders as users make them (read them, never write into them): `small`, 40 good
    PNGs (36 to train on, fewer than the default batch of 64); `corrupt`, those and a PNG cut in
    half (a.png) and random bytes named b.jpg."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("user-folders")
    rng = np.random.default_rng(0)
    for name in ("small", "corrupt"):
        (root / name).mkdir()
        for i in range(40):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(root / name / f"{i:03d}.png")
    png = (root / "small" / "000.png").read_bytes()
    (root / "corrupt" / "a.png").write_bytes(png[: len(png) // 2])
    (root / "corrupt" / "b.jpg").write_bytes(rng.integers(0, 255, 500, dtype=np.uint8).tobytes())
    return SimpleNamespace(small=root / "small", corrupt=root / "corrupt")
