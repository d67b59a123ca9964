"""Packs in a population-based search (`--pack K`): up to K members trained as one model in one Tune
trial (dcgan/pack.py), every member still a trial of the experiment.

    driver: the members (the control first, then the draws) -> packs of at most K members of one
            pack_key -> one Tune trial per pack (config {"pack": i}; its members come with the
            trainable). A member is named by its pack's trial id and its place (member_id); its
            files go to trials/<member>/ and its checkpoints to tune-<member>/checkpoint_*, where a
            trial's go, so the report, the confirmation, --continue and dcgan.sample read it as one.
            ByMember shows the experiment's writer and the console each member as a trial.
    trial:  run_pack: every member's GAN (dcgan.state.setup, resumed from its checkpoint), one Pack,
            a generator update of every member a step. At each evaluation every member is scored,
            its grid and checkpoint put in the experiment, and at each perturbation step PackPBT
            decides the exploits, made in memory (dcgan.checkpoint.copy_state: what restoring the
            source's checkpoint gives). One report a evaluation: each member's row (and exploit)
            under "members", and a checkpoint that is the pack's manifest (pack.json: each
            member's values, the checkpoint it goes on from, the decider's streams), from which a
            restarted pack (a lost process, --resume) goes on.

PackPBT decides as search.pbt's schedulers do (the bottom quarter, the control left out, copies one
of the top quarter and perturbs its values with Ray's own explore), synchronously by construction,
with a seeded stream per pack. Exploits stay within a pack: across packs (a population larger
than K) the members do not meet.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from dcgan import keys
from experiment.layout import TRIALS, Experiment, ray_trial_dir
from experiment.schema import ENDED, same_params
from search.pbt import PERTURBATION_FACTORS, QUANTILE, RESAMPLE_PROBABILITY, pbt_mutations, within_bounds
from search.protocol import EXPLOITS, MEMBERS, METRIC, PACK, REPLAYED, member_id
from search.trial import tune_metrics
from spaces import trial_config

MANIFEST = "pack.json"  # the pack's Tune checkpoint


def split_into_packs(members: list[dict], fixed: dict, size: int) -> list[list[dict]]:
    """The members in packs of at most `size`, each of one pack_key, as even as that allows; the
    order kept (the control, first, is in the first pack)."""
    from dcgan.pack import pack_key

    groups: dict[tuple, list[dict]] = {}
    for m in members:
        groups.setdefault(pack_key(trial_config(fixed, m)), []).append(m)
    packs = []
    for group in groups.values():
        each = math.ceil(len(group) / math.ceil(len(group) / size))
        packs += [group[i : i + each] for i in range(0, len(group), each)]
    return packs


# --- the decisions ----------------------------------------------------------------------------------


class PackPBT:
    """PBT's decisions for the members of one pack, from a stream of its own (Python's and NumPy's
    generators, which Ray's explore draws from), saved with the pack."""

    def __init__(self, distributions: dict, seed: int, state: Optional[dict] = None):
        self.mutations, self.clip = pbt_mutations(distributions), within_bounds(distributions)
        if state is None:
            self.py, self.np = random.Random(seed).getstate(), np.random.RandomState(seed).get_state()
        else:
            self.py = (state["py"][0], tuple(state["py"][1]), state["py"][2])
            self.np = (state["np"][0], np.array(state["np"][1], dtype=np.uint32), *state["np"][2:])

    def state(self) -> dict:
        np_state = self.np
        return {"py": [self.py[0], list(self.py[1]), self.py[2]],
                "np": [np_state[0], np_state[1].tolist(), *(float(x) if isinstance(x, float) else int(x)
                                                           for x in np_state[2:])]}

    @contextmanager
    def _own_random(self):
        outer = random.getstate(), np.random.get_state()
        random.setstate(self.py)
        np.random.set_state(self.np)
        try:
            yield
        finally:
            self.py, self.np = random.getstate(), np.random.get_state()
            random.setstate(outer[0])
            np.random.set_state(outer[1])

    def decide(self, fids: dict[int, Optional[float]], params: dict[int, dict]) -> list[tuple[int, int, dict]]:
        """(member, source, new values) for each member of the bottom quarter by FID (`fids` holds the
        members that may take part: not the control, not an ended one; one without a finite FID sits
        this round out, as in Ray's PBT), in the pack's order."""
        scored = [k for k in sorted(fids) if fids[k] is not None and math.isfinite(fids[k])]
        scored.sort(key=lambda k: -fids[k])  # worst first (Ray's order: the score is -FID); ties by place
        if len(scored) <= 1:
            return []
        n = int(math.ceil(len(scored) * QUANTILE))
        n = int(math.floor(len(scored) / 2)) if n > len(scored) / 2 else n
        lower, upper = scored[:n], scored[len(scored) - n :]
        from ray.tune.schedulers.pbt import _explore

        out = []
        with self._own_random():
            for k in sorted(lower):
                source = random.choice(upper)
                new, _ = _explore(dict(params[source]), self.mutations, RESAMPLE_PROBABILITY, PERTURBATION_FACTORS,
                                  self.clip)
                out.append((k, source, new))
        return out


# --- the trial --------------------------------------------------------------------------------------


@dataclass
class Manifest:
    """What a pack's checkpoint holds: the evaluations so far, each member's values, the member and
    evaluation whose checkpoint it goes on from, the members that ended, the decider's streams,
    and the exploits made at this step (reported again after a restart)."""

    index: int
    step: int
    params: list[dict]
    start: list[list]  # [source member id, checkpoint index] per member
    ended: list[int]
    decider: dict
    exploits: dict = field(default_factory=dict)

    def save(self, folder: str) -> None:
        Path(folder, MANIFEST).write_text(json.dumps(self.__dict__))

    @classmethod
    def load(cls, folder: str) -> "Manifest":
        return cls(**json.loads(Path(folder, MANIFEST).read_text()))


def member_checkpoints(keep: int) -> int:
    """The checkpoints a packed member keeps, and its pack (each of whose names its members' of one step)."""
    return max(keep, 2)


def checkpoint_name(index: int) -> str:
    return f"checkpoint_{index:06d}"  # Tune's own naming, which Experiment.last_checkpoint sorts


def run_pack(config: dict, *, packs: list[list[dict]], fixed: dict, distributions: dict, control: dict,
             interval: int, seed: int, experiment_uri: str) -> None:
    """The Tune function trainable of a pack: packs[config["pack"]]'s members trained as one."""
    import ray.tune
    import torch

    from dcgan.checkpoint import copy_state, load_checkpoint
    from dcgan.data import load_splits
    from dcgan.distributed import check_device
    from dcgan.metrics import build_evaluator
    from dcgan.pack import Pack
    from dcgan.state import setup
    from dcgan.train import evaluate_and_save, fixed_grid_noise

    index = int(config[PACK])
    pack_id = ray.tune.get_context().get_trial_id()
    first = [dict(p) for p in packs[index]]
    ids = [member_id(pack_id, k) for k in range(len(first))]
    experiment = Experiment(experiment_uri)
    if ray.tune.get_checkpoint() is not None and _replay_if_ended(experiment, ids):
        return
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    if cpus:
        torch.set_num_threads(max(1, int(cpus)))  # the pack's share of the machine: its members' together
    manifest = _restored_manifest()
    params = manifest.params if manifest else first
    cfgs = [trial_config(fixed, p) for p in params]
    splits = load_splits(cfgs[0])
    evaluator = build_evaluator(splits, check_device(cfgs[0]), cfgs[0].eval_samples, seed=cfgs[0].seed)
    gans = [setup(cfg, splits) for cfg in cfgs]
    scratch = tempfile.mkdtemp(prefix="dcgan-pack-")
    try:
        if manifest:
            for gan, (source, at) in zip(gans, manifest.start):
                load_checkpoint(gan, _local_checkpoint(experiment, source, at, scratch), 0)
        pack = Pack(gans)
        ended = set(manifest.ended) if manifest else set()
        pack.out |= ended
        decider = PackPBT(distributions, seed * 1000 + index, manifest.decider if manifest else None)
        again = manifest.exploits if manifest else {}  # the exploits of the step restored from: reported again
        evaluations = manifest.index + 1 if manifest else 0
        steps, every = cfgs[0].steps, cfgs[0].eval_every
        bad, step = None, manifest.step if manifest else 0
        while step < steps and len(ended) < len(gans):
            flags = pack.step()
            bad = torch.stack(flags) if bad is None else bad | torch.stack(flags)
            step += 1
            if step % every and step != steps:
                continue
            diverged = [k for k in range(len(gans)) if k not in ended and bool(bad[k])]
            bad = None
            pack.export()
            status = keys.COMPLETED if step == steps else keys.RUNNING
            rows: dict[str, dict] = {}
            for k, gan in enumerate(gans):
                if k in ended:
                    continue
                if k in diverged:
                    rows[ids[k]] = {keys.STEP: step, keys.STATUS: keys.DIVERGED,
                                    keys.REASON: f"a loss became NaN, inf or beyond {gan.cfg.max_abs_loss:g}"}
                    continue
                out = Path(scratch, ids[k])
                metrics = evaluate_and_save(gan, out, evaluator, fixed_grid_noise(gan.cfg), status, None)
                _put_checkpoint(experiment, ids[k], evaluations, out / "checkpoints" / f"step_{step:07d}",
                                gan.cfg.keep_checkpoints)
                grid = out / "samples" / f"step_{step:07d}.png"
                experiment.upload(grid, *experiment.sample_parts(ids[k], step))
                shutil.rmtree(out / "checkpoints", ignore_errors=True)
                grid.unlink()
                rows[ids[k]] = tune_metrics(metrics)
            ended |= set(diverged)
            pack.out |= set(diverged)
            start = [[ids[k], evaluations] for k in range(len(gans))]
            exploits = {}
            if step < steps and (step // every) % interval == 0:
                fids = {k: rows[ids[k]].get(keys.FID) for k in range(len(gans))
                        if k not in ended and not (set(params[k]) == set(control) and same_params(params[k], control))}
                for k, source, new in decider.decide(fids, dict(enumerate(params))):
                    gans[k] = setup(trial_config(fixed, new), splits)  # the source's shapes (its latent size)
                    copy_state(gans[k], gans[source])  # as from source's checkpoint of this step, with new values
                    pack.load(k, gans[k])
                    params[k], start[k] = new, [ids[source], evaluations]
                    exploits[ids[k]] = {"step": step, "source": ids[source], "from_step": step, "params": new}
            for mid in rows:  # (an exploit is made at the step its row reports, and told with it)
                rows[mid][EXPLOITS] = [e for e in (again.get(mid), exploits.get(mid)) if e]
            again = {}
            folder = Path(scratch, "manifest")
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            Manifest(evaluations, step, params, start, sorted(ended), decider.state(), exploits).save(str(folder))
            fids = [r[METRIC] for r in rows.values() if isinstance(r.get(METRIC), float) and math.isfinite(r[METRIC])]
            ray.tune.report({keys.STEP: step, METRIC: min(fids) if fids else math.nan, MEMBERS: rows},
                            checkpoint=ray.tune.Checkpoint.from_directory(str(folder)))
            evaluations += 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _restored_manifest() -> Optional[Manifest]:
    import ray.tune

    checkpoint = ray.tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return Manifest.load(folder)


def _local_checkpoint(experiment: Experiment, member: str, index: int, scratch: str) -> str:
    """A local folder holding member's checkpoint `index` (its state.pt)."""
    parts = (ray_trial_dir(member), checkpoint_name(index))
    if os.path.isdir(experiment.path(*parts)):
        return experiment.path(*parts)
    local = Path(scratch, "restore", member)
    local.mkdir(parents=True, exist_ok=True)
    shutil.move(experiment.copy_to_local(*parts, "state.pt"), local / "state.pt")
    return str(local)


def _put_checkpoint(experiment: Experiment, member: str, index: int, folder: Path, keep: int) -> None:
    """A member's checkpoint folder put where a trial's Tune checkpoint goes (state.pt last: a folder
    with one is whole), and the member's checkpoints before the `keep` newest removed."""
    parts = (ray_trial_dir(member), checkpoint_name(index))
    for name in sorted(os.listdir(folder), key=lambda n: n == "state.pt"):
        experiment.upload(folder / name, *parts, name)
    old = index - member_checkpoints(keep)
    if old >= 0:
        try:
            experiment.fs.delete_dir(experiment.path(ray_trial_dir(member), checkpoint_name(old)))
        except (FileNotFoundError, OSError):
            pass


def _replay_if_ended(experiment: Experiment, ids: list[str]) -> bool:
    """A pack restored by --resume whose members had all ended: their last rows reported again, marked
    REPLAYED (search.trial.replay_if_ended's rule for a trial)."""
    import ray.tune

    from experiment.layout import RESULTS_JSONL

    if any(experiment.trial_status(mid, TRIALS) not in ENDED for mid in ids):
        return False
    rows = {mid: experiment.read_jsonl(TRIALS, mid, RESULTS_JSONL)[0] for mid in ids}
    if not all(rows.values()):
        return False
    last = {mid: {**r[-1], REPLAYED: True} for mid, r in rows.items()}
    ray.tune.report({keys.STEP: max(r[keys.STEP] for r in last.values()), METRIC: math.nan, MEMBERS: last,
                     REPLAYED: True})
    return True
