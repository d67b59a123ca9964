"""The moving average of G's weights (`ema`): what it averages, what is sampled, scored and saved,
and that it survives a resume and stays one model across DDP ranks."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dcgan.checkpoint import latest_checkpoint, load_generator, read_state
from dcgan.config import TrainConfig
from dcgan.train import setup, train, train_step

TINY = dict(dataset="digits", image_size=8, ngf=8, ndf=8, latent_dim=8, batch_size=16, eval_every=25, steps=50,
            device="cpu")


def tiny(**kw) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, **kw})


def _quiet(_msg: str) -> None:
    pass


def _flat(module: torch.nn.Module) -> torch.Tensor:
    """Parameters and float buffers (BatchNorm's statistics; not its int count of batches)."""
    return torch.cat([t.detach().flatten() for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()])


def test_the_average_follows_its_recurrence():
    """The first update copies G; update t after it keeps min(decay, (1 + t) / (10 + t)) of the
    average. Checked against the recurrence on G's weights and BatchNorm statistics, step by step."""
    decay = 0.9
    gan = setup(tiny(ema=decay))
    expected = None
    for t in range(40):  # the ramp: (1 + t) / (10 + t) stays below 0.9 until t = 80
        train_step(gan)
        new = _flat(gan.g)
        expected = new.clone() if expected is None else expected + (new - expected) * (1 - min(decay, (1 + t) / (10 + t)))
        torch.testing.assert_close(_flat(gan.g_eval()), expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(_flat(gan.g_eval()), _flat(gan.g))  # an average, not G


def test_the_cap_holds_after_the_ramp():
    gan = setup(tiny(ema=0.5))  # (1 + t) / (10 + t) > 0.5 from t = 9: the cap rules after that
    for _ in range(12):
        train_step(gan)
    before, g_before = _flat(gan.g_eval()), _flat(gan.g)
    train_step(gan)
    torch.testing.assert_close(_flat(gan.g_eval()), before + (_flat(gan.g) - before) * 0.5, rtol=1e-5, atol=1e-6)
    assert not torch.equal(g_before, _flat(gan.g))


def test_without_ema_the_generator_is_g_itself():
    gan = setup(tiny())
    assert gan.g_ema is None and gan.g_eval() is gan.g


def test_the_average_is_scored_sampled_and_saved(tmp_path):
    scored = []
    gan_seen = {}
    import dcgan.train as t

    real_setup = t.setup
    try:
        t.setup = lambda *a, **k: gan_seen.setdefault("gan", real_setup(*a, **k))
        train(tiny(ema=0.99), tmp_path, evaluator=lambda g: scored.append(_flat(g)) or {"fid": 1.0}, log=_quiet)
    finally:
        t.setup = real_setup
    gan = gan_seen["gan"]
    torch.testing.assert_close(scored[-1], _flat(gan.g_ema.module))  # the evaluator got the average
    assert not torch.allclose(scored[-1], _flat(gan.g))
    state = read_state(latest_checkpoint(tmp_path))
    assert state["ema_n"] == 50 and state["g"].keys() == state["g_ema"].keys()
    g, cfg, step = load_generator(latest_checkpoint(tmp_path))  # what dcgan.sample/evaluate and a retrain read
    torch.testing.assert_close(_flat(g), _flat(gan.g_ema.module))
    assert cfg.ema == 0.99 and step == 50


def test_a_checkpoint_without_ema_holds_no_average(tmp_path):
    train(tiny(), tmp_path, evaluator=None, log=_quiet)
    assert "g_ema" not in read_state(latest_checkpoint(tmp_path))


def test_resume_continues_the_average(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(tiny(ema=0.99, steps=100), straight, evaluator=None, log=_quiet)
    train(tiny(ema=0.99, steps=50), split, evaluator=None, log=_quiet)
    (split / "config.json").write_text(tiny(ema=0.99, steps=100).to_json())
    train(tiny(ema=0.99, steps=100), split, resume_from=split, evaluator=None, log=_quiet)
    a, b = (read_state(latest_checkpoint(d)) for d in (straight, split))
    assert a["ema_n"] == b["ema_n"] == 100
    for key in a["g_ema"]:
        assert torch.equal(a["g_ema"][key], b["g_ema"][key]), key


def test_two_process_ddp_keeps_one_average(tmp_path):
    mp.start_processes(_ddp_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, start_method="spawn")
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert torch.equal(r0["ema"], r1["ema"])  # parameters and (after the evaluation's broadcast) BatchNorm statistics
    assert not torch.equal(r0["ema"], r0["g"])


def _ddp_worker(rank: int, init_file: str, out: str) -> None:
    import dcgan.train as t

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    captured = {}
    real_setup = t.setup
    t.setup = lambda *a, **k: captured.setdefault("gan", real_setup(*a, **k))
    t.train(tiny(ema=0.9, steps=20, eval_every=20), None, evaluator=None, log=_quiet)
    gan = captured["gan"]
    torch.save({"ema": _flat(gan.g_ema.module), "g": _flat(gan.g)}, os.path.join(out, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()
