"""Under torch.distributed (2 gloo ranks) every rank's evaluator returns the single-process dict:
each rank scores its slice of the fixed noise, statistics are all-reduced, features gathered."""

import os

import pytest
import torch
import torch.multiprocessing as mp

from dcgan.config import TrainConfig
from dcgan.data import load_splits
from dcgan.metrics import build_evaluator
from dcgan.models import build_models

CFG = dict(dataset="digits", image_size=16, ngf=16, ndf=16, eval_samples=301)  # odd: uneven slices


def _evaluate(cfg: TrainConfig) -> dict:
    splits = load_splits(cfg)
    evaluator = build_evaluator(splits, "cpu", cfg.eval_samples, seed=cfg.seed)
    torch.manual_seed(0)
    g, _ = build_models(cfg, splits.channels)
    return evaluator(g)


def _worker(rank: int, world: int, init_file: str, out_dir: str, cache: str) -> None:
    import torch.distributed as dist

    os.environ["DCGAN_CACHE"] = cache
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        torch.save(_evaluate(TrainConfig(**CFG)), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_ranks_return_the_single_process_result(metrics_cache, tmp_path):
    single = _evaluate(TrainConfig(**CFG))  # also fills the shared cache before the ranks start
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path), str(metrics_cache)), nprocs=2, join=True)
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        assert set(got) == set(single)
        for key, value in single.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
            else:
                assert got[key] == value, key
