"""One trial: a Tune function that launches a Ray Train `TorchTrainer` running `dcgan.train`.

    Tune trial (light driver, no CPU)  ->  TorchTrainer (W workers, DDP over gloo or NCCL)
      -> every worker: dcgan.train.train(cfg, report=...)  -> ray.train.report at each evaluation
      -> TuneReportCallback passes rank 0's metrics (and the checkpoint path) to Tune

The trainer is named after the Tune trial and stored in the experiment, so a trial restarted by
Ray Train (FailureConfig) or by `search.run --resume` continues from its own last checkpoint.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from typing import Optional

from dcgan.config import TrainConfig
from experiment.layout import TRAIN_RUNS, join_uri
from spaces import trial_config

METRIC = "fid"
MAX_WORKER_FAILURES = 2  # Ray Train restarts of a trial's workers, each from its last checkpoint


@dataclass(frozen=True)
class Resources:
    """What one trial's worker group asks of the cluster."""

    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0

    def scaling_config(self):
        from ray.train import ScalingConfig

        per_worker = {"CPU": self.cpus_per_worker}
        if self.gpus_per_worker:
            per_worker["GPU"] = self.gpus_per_worker
        return ScalingConfig(num_workers=self.workers, use_gpu=self.gpus_per_worker > 0,
                             resources_per_worker=per_worker)


def tune_metrics(metrics: dict) -> dict:
    """What reaches Tune: every report carries `fid` (NaN when there is none, e.g. a diverged
    run: ASHA ignores NaN, and OptunaSearch's final tell of NaN marks the Optuna trial FAIL)."""
    out = dict(metrics)
    fid = out.get(METRIC)
    out[METRIC] = float(fid) if isinstance(fid, (int, float)) else math.nan
    return out


def train_worker(loop_config: dict) -> None:
    """Runs on every Ray Train worker: dcgan's loop, reporting each evaluation to Ray Train."""
    import ray.train
    from ray.train import Checkpoint

    from dcgan.train import train

    cfg = TrainConfig.from_dict(loop_config["config"])

    def report(metrics: dict, checkpoint_dir: Optional[str]) -> None:
        # A collective: every rank calls it once per evaluation; Tune sees rank 0's metrics.
        checkpoint = Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report(tune_metrics(metrics), checkpoint=checkpoint)

    # rank 0's own run folder; by default scratch, since Ray Train persists the checkpoints
    scratch = loop_config.get("out_dir") is None
    out_dir = tempfile.mkdtemp(prefix="dcgan-trial-") if scratch else loop_config["out_dir"]
    try:
        checkpoint = ray.train.get_checkpoint()
        if checkpoint is None:
            train(cfg, out_dir, report=report)
        else:  # restarted (worker failure or --resume): continue from this trial's last checkpoint
            with checkpoint.as_directory() as ckpt_dir:
                train(cfg, out_dir, report=report, resume_from=ckpt_dir)
    finally:
        if scratch:
            shutil.rmtree(out_dir, ignore_errors=True)


def run_trial(params: dict, *, fixed: dict, resources: Resources, experiment_uri: str) -> None:
    """The Tune function trainable: `fixed | params` -> TrainConfig -> a TorchTrainer for it."""
    import ray.tune
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    cfg = trial_config(fixed, params)
    trial_id = ray.tune.get_context().get_trial_id()
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"config": cfg.to_dict()},
        scaling_config=resources.scaling_config(),
        run_config=RunConfig(
            name=trial_id,
            storage_path=join_uri(experiment_uri, TRAIN_RUNS),
            failure_config=FailureConfig(max_failures=MAX_WORKER_FAILURES),
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
            callbacks=[TuneReportCallback()],
        ),
    )
    trainer.fit()

