"""What the trackers wrote, read back with each tool's own reader: TensorBoard's EventAccumulator,
MLflow's client, and W&B's offline run files (records of wandb's protobuf in LevelDB-log blocks:
wandb 0.31 ships no Python reader of them, so 20 lines here)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path


def tensorboard_runs(logdir: Path) -> dict[str, object]:
    """{run folder relative to logdir: its loaded EventAccumulator}, for every folder with event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = {}
    for folder in sorted({p.parent for p in logdir.rglob("events.out.tfevents.*")}):
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
        runs[str(folder.relative_to(logdir))] = acc.Reload()
    return runs


def fid_history(acc) -> dict[int, float]:
    return {e.step: e.value for e in acc.Scalars("fid")}


def mlflow_runs(tracking_uri: str, search: str) -> dict[str, object]:
    """{the run's `run` tag (trials/<id>, confirm/<id>-seed<s>): the MLflow Run} in the search's experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(search)
    assert experiment is not None, f"no MLflow experiment {search}"
    return {r.data.tags["run"]: r for r in client.search_runs([experiment.experiment_id])}


_BLOCK, _HEADER = 32768, 7


def wandb_records(path: Path):
    """The records of one offline run's .wandb file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    pos, chunk = _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        _, length, kind = struct.unpack("<IHB", data[pos:pos + _HEADER]) if left >= _HEADER else (0, 0, 0)
        if left < _HEADER or (length, kind) == (0, 0):  # a block's padding
            pos += left
            continue
        chunk += data[pos + _HEADER:pos + _HEADER + length]
        pos += _HEADER + length
        if kind in (1, 4):  # FULL, or the LAST piece of a record split over blocks
            record = pb.Record()
            record.ParseFromString(chunk)
            chunk = b""
            yield record


def _items(items) -> dict:
    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items}


def wandb_runs(wandb_dir: Path) -> list[dict]:
    """Every offline run folder under wandb_dir/wandb/, oldest first: its id, tags, config, history
    rows and final summary."""
    out = []
    for folder in sorted((wandb_dir / "wandb").glob("offline-run-*")):
        run = {"folder": folder.name, "id": None, "tags": [], "config": {}, "history": [], "summary": {}}
        for record in wandb_records(next(folder.glob("*.wandb"))):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run["id"], run["tags"] = record.run.run_id, list(record.run.tags)
                run["config"] |= _items(record.run.config.update)
            elif kind == "config":
                run["config"] |= _items(record.config.update)
            elif kind == "history":
                run["history"].append(_items(record.history.item))
            elif kind == "summary":
                run["summary"] |= _items(record.summary.update)
        out.append(run)
    return out


def wandb_env(tmp: Path) -> dict[str, str]:
    """W&B offline, its files in tmp, no login, no prompt."""
    os.makedirs(tmp, exist_ok=True)
    return {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp), "WANDB_SILENT": "true", "WANDB_CONSOLE": "off",
            "WANDB_CACHE_DIR": str(tmp / "cache"), "WANDB_CONFIG_DIR": str(tmp / "config")}
