"""What passes between a trial and the rest of the search: the metric Tune ranks trials on, the
mark of a result replayed from the files, what one trial asks of the cluster, and how often a trial
restarts. Kept apart from search.trial (which runs the loop) so that the driver's modules import
these without it."""

from __future__ import annotations

from dataclasses import dataclass

from dcgan import keys

METRIC = keys.FID
MAX_WORKER_FAILURES = 2  # restarts of a trial (Tune) or of its workers (Ray Train), each from its last checkpoint
DRIVER_MEMORY = 64 * 1024 * 1024
REPLAYED = "replayed"  # a result that a resumed trial reports again from its files (search.trial.replay_if_ended)
PACK = "pack"  # a pack trial's config (search/packed.py): {"pack": its index in the search's packs}
MEMBERS = "members"  # a pack's result (search/packed.py): {member id: that member's row}
EXPLOITS = "exploits"  # in a packed member's row: [{"step", "source": member id, "from_step", "params": new values}]


@dataclass(frozen=True)
class Resources:
    """What one trial asks of the cluster."""

    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0

    @property
    def inline(self) -> bool:
        """One worker: the loop runs in the Tune trial's own process."""
        return self.workers == 1

    def tune_resources(self) -> dict[str, float]:
        """What the Tune trial itself holds: the worker's share when it runs the loop, else (a
        multi-worker trial only waits on its trainer) no CPU and a little memory."""
        return self.per_worker() if self.inline else {"CPU": 0, "memory": DRIVER_MEMORY}

    def per_worker(self) -> dict[str, float]:
        return {"CPU": self.cpus_per_worker, **({"GPU": self.gpus_per_worker} if self.gpus_per_worker else {})}

    def scaling_config(self):
        from ray.train import ScalingConfig

        return ScalingConfig(num_workers=self.workers, use_gpu=self.gpus_per_worker > 0,
                             resources_per_worker=self.per_worker())


def member_id(pack_trial_id: str, k: int) -> str:
    """The trial id of member k of the pack that Tune trial `pack_trial_id` trains (search/packed.py)."""
    return f"{pack_trial_id}-m{k}"
