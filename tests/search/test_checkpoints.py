"""A trial resuming from Ray's checkpoints: a corrupt or unsafe one is named in one line and the one
before it used, in a bucket (S3 on loopback) as on a local disk."""

from __future__ import annotations

import io
import os
from types import SimpleNamespace

import pyarrow.fs as pafs
import pytest
import torch
from ray.train import Checkpoint

from dcgan.checkpoint import CheckpointError, read_state
from dcgan.config import TrainConfig
from dcgan.train import train
from search.trial import RestoreFromWhatExists, readable_checkpoint

TINY = dict(image_size=8, ngf=8, ndf=8, batch_size=16, steps=20, eval_every=10, keep_checkpoints=2)


class Payload:  # what a malicious checkpoint would carry: any class pickle can rebuild
    pass


def spoil(state_pt: bytes, how: str) -> bytes:
    if how == "truncated":
        return state_pt[: len(state_pt) // 3]
    buf = io.BytesIO()
    torch.save({**torch.load(io.BytesIO(state_pt), weights_only=True), "extra": Payload()}, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(TrainConfig(**TINY), out, evaluator=None, log=lambda _: None)
    return out  # checkpoints/step_0000010 and step_0000020


def as_ray_checkpoints(run_dir, fs: pafs.FileSystem, root: str, how: str) -> Checkpoint:
    """The run's two checkpoints laid out as Ray lays out a trial's (checkpoint_000000, _000001) on
    `fs`, the newer one spoiled; returns the newer, as Ray hands it to a restarted trial."""
    for i, step in enumerate((10, 20)):
        folder = f"{root}/checkpoint_{i:06d}"
        fs.create_dir(folder)
        for f in (run_dir / "checkpoints" / f"step_{step:07d}").iterdir():
            data = f.read_bytes()
            with fs.open_output_stream(f"{folder}/{f.name}") as out:
                out.write(spoil(data, how) if (step == 20 and f.name == "state.pt") else data)
    return Checkpoint(f"{root}/checkpoint_000001", fs)


@pytest.mark.parametrize("where", ["local", "bucket"])
@pytest.mark.parametrize("how", ["truncated", "pickled object"])
def test_resume_falls_back_past_a_bad_checkpoint(run_dir, tmp_path, request, capsys, where, how):
    if where == "bucket":
        fs, root = pafs.FileSystem.from_uri(request.getfixturevalue("s3_storage"))
        root = f"{root}/trial-{how.replace(' ', '-')}"
    else:
        fs, root = pafs.LocalFileSystem(), str(tmp_path / "trial")
    latest = as_ray_checkpoints(run_dir, fs, root, how)
    with readable_checkpoint(latest) as ckpt_dir:
        assert read_state(ckpt_dir)["step"] == 10  # the checkpoint before the spoiled one
    said = capsys.readouterr().out.strip().splitlines()
    assert len(said) == 1 and "state.pt" in said[0] and "falling back" in said[0], said
    assert ("truncated or corrupt" if how == "truncated" else "a pickled object") in said[0]


def test_no_readable_checkpoint_is_an_error(run_dir, tmp_path):
    fs, root = pafs.LocalFileSystem(), str(tmp_path / "trial")
    latest = as_ray_checkpoints(run_dir, fs, root, "truncated")
    fs.delete_dir(f"{root}/checkpoint_000000")
    with pytest.raises(CheckpointError, match="no readable checkpoint"):
        with readable_checkpoint(latest):
            pass


class _TuneRestore:
    """Stands in for Tune's FunctionTrainable.restore, which RestoreFromWhatExists wraps: it records
    what it was asked to restore from (Tune's own fails if that checkpoint is gone)."""

    def restore(self, result):
        if not os.path.exists(result.checkpoint.path):
            raise ValueError("Could not recover from checkpoint as it does not exist on storage anymore")
        self.restored_from = result.checkpoint.path


class _Trainable(RestoreFromWhatExists, _TuneRestore):
    def __init__(self, index: int):
        self._storage = SimpleNamespace(current_checkpoint_index=index)


def test_a_checkpoint_gone_from_tunes_saved_state_restores_from_the_newest_there(tmp_path, capsys):
    """Tune's state names checkpoint_000000, deleted since (num_to_keep) by a trial that went on to
    _000001 and _000002 before the driver died: restore from _000002, and number new ones after it."""
    from ray.train._internal.checkpoint_manager import _TrainingResult

    for i in (1, 2):
        (tmp_path / f"checkpoint_{i:06d}").mkdir()
    trainable = _Trainable(index=0)
    trainable.restore(_TrainingResult(checkpoint=Checkpoint(str(tmp_path / "checkpoint_000000")), metrics={}))
    assert trainable.restored_from == str(tmp_path / "checkpoint_000002")
    assert trainable._storage.current_checkpoint_index == 2  # Tune adds 1 before the next checkpoint
    assert "restoring from" in capsys.readouterr().out
    trainable = _Trainable(index=1)  # and a checkpoint that exists is Tune's to restore, untouched
    trainable.restore(_TrainingResult(checkpoint=Checkpoint(str(tmp_path / "checkpoint_000001")), metrics={}))
    assert trainable.restored_from == str(tmp_path / "checkpoint_000001") and trainable._storage.current_checkpoint_index == 1
