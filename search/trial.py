"""One trial: dcgan's loop run for one config, reporting each evaluation to Tune.

    1 worker:  the Tune trial's own process runs the loop, and Tune reuses that process for the
               next trial (torch imported, data and metrics reference in memory): no extra actor
               starts per trial.
    W workers: the Tune trial launches a Ray Train `TorchTrainer` (DDP over gloo or NCCL) whose
               W workers run the loop; rank 0's metrics reach Tune through TuneReportCallback.

Either way every evaluation is one report with the trial's checkpoint, persisted to the
experiment's storage, and the sample grid is put in the experiment by the trial itself. A trial
restarted after a failure (a lost node, a killed worker) or by `search.run --resume` continues
from its own last checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

from dcgan import keys
from dcgan.config import TrainConfig
from experiment.layout import (CONFIRM, RESULTS_JSONL, TRAINER_RUN, TRIALS, Experiment, confirm_name, join_uri,
                               ray_trial_dir)
from experiment.schema import ENDED
from search.protocol import MAX_WORKER_FAILURES, METRIC, REPLAYED, Resources
from spaces import trial_config

# A trial's start-up steps, for a benchmark to time: it appends its hooks in every Ray worker
# (bench/trial_overhead.py, through Ray's worker_process_setup_hook); none by default.
EVENT_HOOKS: list[Callable[[str, str], None]] = []  # hook(trial_id, event)
TRAINER_CALLBACKS: list[Callable[[str], object]] = []  # trial_id -> one more Ray Train callback for its TorchTrainer


def event(trial_id: str, name: str) -> None:
    """Tell the installed hooks that `name` happened in trial `trial_id`."""
    for hook in EVENT_HOOKS:
        hook(trial_id, name)


def tune_metrics(metrics: dict) -> dict:
    """What reaches Tune: every report carries `fid` (NaN when there is none, e.g. a diverged
    run: ASHA ignores NaN, and the searcher tells Optuna such a trial FAILed)."""
    out = dict(metrics)
    fid = out.get(METRIC)
    out[METRIC] = float(fid) if isinstance(fid, (int, float)) else math.nan
    return out


@dataclass(frozen=True)
class Place:
    """Where a run's files go in the experiment: trials/<tune trial id>, or confirm/<trial>-seed<s>."""

    folder: str
    name: str


def run_loop(cfg: TrainConfig, place: Place, experiment_uri: Optional[str], out_dir: Optional[str],
             report_to_ray: Callable[[dict, Optional[str]], None], checkpoint, is_rank0: bool) -> None:
    """dcgan's loop on this process: its evaluator from this process's memo, every evaluation
    reported (`report_to_ray(metrics, checkpoint dir or None)`), the grid put in the experiment by
    rank 0, and `checkpoint` (Ray's, or None) resumed from."""
    trial_id = place.name
    from dcgan.data import load_splits
    from dcgan.distributed import check_device
    from dcgan.metrics import build_evaluator
    from dcgan.train import train

    event(trial_id, "imported")
    splits = load_splits(cfg)  # once per process: cached
    event(trial_id, "data")
    evaluator = build_evaluator(splits, check_device(cfg), cfg.eval_samples, seed=cfg.seed)
    event(trial_id, "reference")
    experiment = Experiment(experiment_uri) if experiment_uri and is_rank0 else None

    def report(metrics: dict, checkpoint_dir: Optional[str]) -> None:
        event(trial_id, "report")
        if experiment is not None and checkpoint_dir and os.path.exists(f"{checkpoint_dir}/samples.png"):
            experiment.upload(f"{checkpoint_dir}/samples.png",
                              *experiment.sample_parts(place.name, metrics[keys.STEP], place.folder))
        report_to_ray(tune_metrics(metrics), checkpoint_dir)

    scratch = out_dir is None  # rank 0's run folder: scratch, since Ray persists the checkpoints
    out_dir = tempfile.mkdtemp(prefix="dcgan-trial-") if scratch else out_dir
    try:
        # (the loop's lines reach the console only with search.run --verbose: log_to_driver)
        with readable_checkpoint(checkpoint) as ckpt_dir:  # restarted (a failure, or --resume): from there
            train(cfg, out_dir, report=report, evaluator=evaluator, resume_from=ckpt_dir)
    finally:
        if scratch:
            shutil.rmtree(out_dir, ignore_errors=True)


@contextlib.contextmanager
def readable_checkpoint(checkpoint) -> Iterator[Optional[str]]:
    """A local folder of the newest readable checkpoint of this trial, from Ray's latest one back
    through the older ones beside it in storage (a bucket too); None for a fresh trial. A checkpoint
    that cannot be read safely (truncated, corrupt, a pickled object) is named in one line and passed
    over; CheckpointError if none can be read."""
    from dcgan.checkpoint import CheckpointError, read_state

    if checkpoint is None:
        yield None
        return
    candidates = [checkpoint, *_older_checkpoints(checkpoint)]
    for i, candidate in enumerate(candidates):
        with candidate.as_directory() as ckpt_dir:
            try:
                read_state(ckpt_dir)
            except CheckpointError as e:
                print(f"{e}; {'falling back to the checkpoint before it' if i + 1 < len(candidates) else 'none left'}")
                continue
            yield ckpt_dir
            return
    raise CheckpointError(f"no readable checkpoint to resume from beside {checkpoint.path}")


class RestoreFromWhatExists:
    """Mixed into the Tune trainable of `run_trial` (`__mixins__`). Tune restores a trial from the
    checkpoint its saved state names, and fails the trial if that one is gone: a driver killed
    after Tune deleted an older checkpoint (num_to_keep) but before it saved its state again
    leaves that name pointing at nothing. Restore from the newest checkpoint of the trial that
    exists instead, and number new checkpoints after it, so none is overwritten."""

    def restore(self, checkpoint_path):
        result = checkpoint_path
        checkpoint = getattr(result, "checkpoint", None)
        if checkpoint is not None and not _exists(checkpoint):
            newest = _newest_checkpoint_beside(checkpoint)
            print(f"checkpoint {checkpoint.path} is gone (Tune's saved state was older than the trial); "
                  + (f"restoring from {newest.path}" if newest else "none left: the trial starts again"))
            if newest is None:
                return None
            from ray.train._internal.checkpoint_manager import _TrainingResult

            result = _TrainingResult(checkpoint=newest, metrics={})
            self._storage.current_checkpoint_index = int(newest.path.rsplit("_", 1)[-1])
        return super().restore(result)


def _exists(checkpoint) -> bool:
    import pyarrow.fs as pafs

    return checkpoint.filesystem.get_file_info(checkpoint.path).type != pafs.FileType.NotFound


def _checkpoints_beside(checkpoint) -> list:
    """The trial's checkpoints: the folders named checkpoint_* beside `checkpoint`, oldest first."""
    import pyarrow.fs as pafs
    from ray.train import Checkpoint

    parent = checkpoint.path.rstrip("/").rsplit("/", 1)[0]
    try:
        infos = checkpoint.filesystem.get_file_info(pafs.FileSelector(parent))
    except OSError:
        return []
    found = sorted(i.path for i in infos if i.type == pafs.FileType.Directory and i.base_name.startswith("checkpoint_"))
    return [Checkpoint(path, checkpoint.filesystem) for path in found]


def _newest_checkpoint_beside(checkpoint):
    found = _checkpoints_beside(checkpoint)
    return found[-1] if found else None


def _older_checkpoints(checkpoint) -> list:
    """The trial's checkpoints older than `checkpoint`, newest first."""
    name = checkpoint.path.rstrip("/").rsplit("/", 1)[-1]
    return [c for c in reversed(_checkpoints_beside(checkpoint)) if c.path.rstrip("/").rsplit("/", 1)[-1] < name]


def train_worker(loop_config: dict) -> None:
    """Runs on every Ray Train worker: dcgan's loop, reporting each evaluation to Ray Train (a
    collective: every rank reports once per evaluation; Tune sees rank 0's metrics)."""
    import ray.train

    def report(metrics: dict, checkpoint_dir: Optional[str]) -> None:
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir
                         else None)

    place = Place(*loop_config.get("place", (TRIALS, "")))
    event(place.name, "worker")
    checkpoint = ray.train.get_checkpoint()  # the run's own, once it has one; else where it starts (--continue)
    if checkpoint is None and loop_config.get("start"):
        checkpoint = ray.train.Checkpoint(loop_config["start"])
    run_loop(TrainConfig.from_dict(loop_config["config"]), place, loop_config.get("experiment_uri"),
             loop_config.get("out_dir"), report, checkpoint, ray.train.get_context().get_world_rank() == 0)


def run_trial(params: dict, *, fixed: dict, resources: Resources, experiment_uri: str) -> None:
    """The Tune function trainable of a search: `fixed | params` -> TrainConfig -> the loop."""
    import ray.tune

    run(trial_config(fixed, params), Place(TRIALS, ray.tune.get_context().get_trial_id()), resources, experiment_uri)


def run_confirmation(config: dict, *, params_of: dict, fixed: dict, resources: Resources, experiment_uri: str,
                     steps: Optional[int] = None) -> None:
    """The Tune function trainable of a confirmation run: search trial `config["run"]["trial"]`'s
    params, trained again with seed `config["run"]["seed"]` (for `steps`, if given)."""
    trial_id, seed = config["run"]["trial"], int(config["run"]["seed"])
    overrides = confirmation_overrides(params_of[trial_id], seed, steps)
    run(trial_config(fixed, overrides), Place(CONFIRM, confirm_name(trial_id, seed)), resources, experiment_uri)


def confirmation_overrides(params: dict, seed: int, steps: Optional[int]) -> dict:
    """A confirmation run's overrides: the search trial's params, another seed, maybe more steps."""
    return {**params, "seed": int(seed), **({"steps": int(steps)} if steps else {})}


def run(cfg: TrainConfig, place: Place, resources: Resources, experiment_uri: str) -> None:
    """The loop for `cfg`, in this Tune trial's process or on a TorchTrainer; its files at `place`."""
    import ray.tune

    event(place.name, "trial")
    if ray.tune.get_checkpoint() is not None and replay_if_ended(place, experiment_uri):
        return
    if resources.inline:
        def report(metrics: dict, checkpoint_dir: Optional[str]) -> None:
            ray.tune.report(metrics, checkpoint=ray.tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir
                            else None)

        run_loop(cfg, place, experiment_uri, None, report, ray.tune.get_checkpoint(), True)
    else:
        run_trainer(cfg, place, ray.tune.get_context().get_trial_id(), resources, experiment_uri)


def replay_if_ended(place: Place, experiment_uri: str) -> bool:
    """A trial restored by `search.run --resume` that had already ended before the driver was killed
    (Tune saves its state every second, so it may not know): its files say so. Report its last row
    again, marked REPLAYED (the experiment's files are not written again), and train no more."""
    import ray.tune

    experiment = Experiment(experiment_uri)
    if experiment.trial_status(place.name, place.folder) not in ENDED:
        return False
    rows, _ = experiment.read_jsonl(place.folder, place.name, RESULTS_JSONL)
    if not rows:
        return False
    ray.tune.report(tune_metrics({**rows[-1], REPLAYED: True}))
    return True


def run_trainer(cfg: TrainConfig, place: Place, tune_id: str, resources: Resources, experiment_uri: str) -> None:
    """A TorchTrainer of `resources.workers` workers, stored in the trial's own folder of the
    experiment, so that a restarted trial finds its own checkpoints."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    callbacks = [TuneReportCallback(), *(make(place.name) for make in TRAINER_CALLBACKS)]
    TorchTrainer(
        train_worker,
        train_loop_config={"config": cfg.to_dict(), "place": (place.folder, place.name), "experiment_uri": experiment_uri},
        scaling_config=resources.scaling_config(),
        run_config=RunConfig(
            name=TRAINER_RUN,
            storage_path=join_uri(experiment_uri, ray_trial_dir(tune_id)),
            failure_config=FailureConfig(max_failures=MAX_WORKER_FAILURES),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
            callbacks=callbacks,
        ),
    ).fit()

