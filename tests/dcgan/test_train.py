import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import dcgan.train
from dcgan.checkpoint import latest_checkpoint, load_generator, read_state
from dcgan.config import TrainConfig
from dcgan.train import fixed_grid_noise, sample_grid, setup, train, train_step

TINY = dict(dataset="digits", image_size=8, ngf=8, ndf=8, latent_dim=8, batch_size=16, eval_every=25, steps=50, device="cpu")


def tiny(**kw) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, **kw})


def _quiet(_msg: str) -> None:
    pass


def _flat(module: torch.nn.Module) -> torch.Tensor:
    """Parameters and float buffers (BatchNorm's statistics; not its int count of batches)."""
    return torch.cat([t.detach().flatten() for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()])


@pytest.mark.parametrize("k", [1, 3])
def test_d_steps_per_g(k):
    gan = setup(tiny(d_steps_per_g=k))
    for _ in range(4):
        train_step(gan)
    d_steps = {int(s["step"]) for s in gan.opt_d.state.values()}
    g_steps = {int(s["step"]) for s in gan.opt_g.state.values()}
    assert d_steps == {4 * k} and g_steps == {4}


@pytest.mark.parametrize("loss", ["bce", "wgan-gp", "hinge", "lsgan"])
def test_each_loss_trains_and_writes_its_files(tmp_path, loss):
    result = train(tiny(loss=loss, steps=30, eval_every=15), tmp_path, evaluator=None, log=_quiet)
    assert result.status == "completed" and result.step == 30
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [15, 30] and rows[-1]["status"] == "completed"
    assert all(isinstance(r["d_loss"], float) and isinstance(r["g_loss"], float) for r in rows)
    assert TrainConfig.from_json(tmp_path / "config.json") == tiny(loss=loss, steps=30, eval_every=15)
    assert (tmp_path / "samples" / "step_0000030.png").exists()
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt.name == "step_0000030" and {p.name for p in ckpt.iterdir()} == {"state.pt", "config.json", "samples.png"}


def test_report_callback_gets_every_evaluation(tmp_path):
    seen = []
    train(tiny(), tmp_path, evaluator=lambda g: {"fid": 1.0}, report=lambda m, c: seen.append((m, c)), log=_quiet)
    assert [m["step"] for m, _ in seen] == [25, 50] and all(m["fid"] == 1.0 for m, _ in seen)
    assert all(c is not None and os.path.exists(os.path.join(c, "state.pt")) for _, c in seen)


def _weights(run_dir):
    state = read_state(latest_checkpoint(run_dir))
    return state["g"], state["d"]


@pytest.mark.parametrize("loss, augment", [("bce", ""), ("wgan-gp", ""), ("wgan-gp", "color,translation,cutout")])
@pytest.mark.slow  # trains long enough to checkpoint, stop and resume: minutes on 2 cores
def test_resume_gives_the_same_weights(tmp_path, loss, augment):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(tiny(loss=loss, augment=augment, steps=100, eval_every=50), straight, evaluator=None, log=_quiet)
    # 50 steps, stop; a fresh process would see only the folder: rebuild everything from it
    train(tiny(loss=loss, augment=augment, steps=50, eval_every=50), split, evaluator=None, log=_quiet)
    cfg_file = split / "config.json"
    cfg_file.write_text(tiny(loss=loss, augment=augment, steps=100, eval_every=50).to_json())
    result = train(TrainConfig.from_json(cfg_file), split, resume_from=split, evaluator=None, log=_quiet)
    assert result.step == 100
    (g1, d1), (g2, d2) = _weights(straight), _weights(split)
    for a, b in ((g1, g2), (d1, d2)):
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
    steps = [json.loads(l)["step"] for l in (split / "metrics.jsonl").read_text().splitlines()]
    assert steps == [50, 100]


def test_lr_10_diverges_with_a_record(tmp_path):
    seen = []
    result = train(tiny(lr_g=10.0, lr_d=10.0, steps=200, eval_every=100), tmp_path, evaluator=None,
                   report=lambda m, c: seen.append(m), log=_quiet)
    assert result.status == "diverged" and result.step < 200
    assert json.loads((tmp_path / "status.json").read_text())["status"] == "diverged"
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["status"] == "diverged"
    assert seen[-1]["status"] == "diverged"


@pytest.mark.slow  # trains a run (or two processes): minutes on 2 cores
def test_two_process_ddp_keeps_g_identical(tmp_path):
    out = tmp_path / "run"
    mp.start_processes(_ddp_worker_final, args=(str(tmp_path / "init"), str(out)), nprocs=2, start_method="spawn")
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    # one G and one average of it: parameters and (after the evaluation's broadcast) BatchNorm statistics
    assert torch.equal(r0["g"], r1["g"])
    assert torch.equal(r0["ema"], r1["ema"]) and not torch.equal(r0["ema"], r0["g"])
    assert len(r0["seen"]) == len(r1["seen"]) == 2  # report is called on every rank, the same number of times
    assert r0["seen"][-1][1] is not None and r1["seen"][-1][1] is None  # only rank 0 has a checkpoint
    assert r0["seen"][-1][0]["d_loss"] == pytest.approx(r1["seen"][-1][0]["d_loss"])  # losses reduced across ranks
    assert (out / "metrics.jsonl").exists()


def _ddp_worker_final(rank: int, init_file: str, out: str) -> None:
    """Train 20 steps on 2 ranks (with `ema`); each saves its final G (weights and BatchNorm
    statistics) and its average (from its own model, not a file).

    A file store, not TCP on a probed port: no port race, and no store served by rank 0 that goes
    away while rank 1 still tears down (CI once saw rank 1 abort there). A barrier before the
    teardown, so that neither rank closes its connections while the other has an operation open."""
    import dcgan.train as t

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    captured = {}
    real_setup = t.setup

    def spy_setup(*a, **k):
        captured["gan"] = real_setup(*a, **k)
        return captured["gan"]

    t.setup = spy_setup
    seen = []
    t.train(tiny(steps=20, eval_every=10, ema=0.9), out if rank == 0 else None, evaluator=None,
            report=lambda m, c: seen.append((m, c)), log=_quiet)
    gan = captured["gan"]
    torch.save({"g": _flat(gan.g), "ema": _flat(gan.g_ema.module), "seen": seen}, os.path.join(out, f"rank{rank}.pt"))
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.parametrize("how", ["truncated", "pickled object"])
@pytest.mark.slow  # trains long enough to checkpoint, stop and resume: minutes on 2 cores
def test_resume_falls_back_past_a_bad_checkpoint(tmp_path, how):
    """The latest checkpoint truncated, or holding a pickled object: refused in one line naming the
    file, and the run resumes from the checkpoint before it, to the same weights as a straight run."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(tiny(steps=60, eval_every=20), straight, evaluator=None, log=_quiet)
    train(tiny(steps=40, eval_every=20), split, evaluator=None, log=_quiet)
    bad = split / "checkpoints" / "step_0000040" / "state.pt"
    if how == "truncated":
        bad.write_bytes(bad.read_bytes()[:1000])
    else:
        torch.save({**torch.load(bad, weights_only=True), "extra": _Payload()}, bad)
    said = []
    result = train(tiny(steps=60, eval_every=20), split, resume_from=split, evaluator=None, log=said.append)
    refused = [line for line in said if str(bad) in line]
    assert len(refused) == 1 and "falling back to" in refused[0] and "step_0000020" in refused[0], said
    assert ("truncated or corrupt" if how == "truncated" else "a pickled object") in refused[0]
    assert any("resumed from" in line and "step_0000020" in line for line in said)
    assert result.step == 60
    (g1, d1), (g2, d2) = _weights(straight), _weights(split)
    assert all(torch.equal(g1[k], g2[k]) for k in g1) and all(torch.equal(d1[k], d2[k]) for k in d1)


class _Payload:  # any class that pickle would rebuild, and so run code of, when loading
    pass


# --- the moving average of G's weights (ema) ------------------------------------------------------


@pytest.mark.slow  # trains a run (or two processes): minutes on 2 cores
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


@pytest.mark.slow  # trains a run (or two processes): minutes on 2 cores
def test_without_ema_the_generator_is_g_itself(tmp_path):
    gan = setup(tiny())
    assert gan.g_ema is None and gan.g_eval() is gan.g
    train(tiny(), tmp_path, evaluator=None, log=_quiet)
    assert "g_ema" not in read_state(latest_checkpoint(tmp_path))


@pytest.mark.slow  # trains a run (or two processes): minutes on 2 cores
def test_the_average_is_scored_sampled_and_saved(tmp_path, monkeypatch):
    seen, scored = {}, []
    real_setup = dcgan.train.setup
    monkeypatch.setattr(dcgan.train, "setup", lambda *a, **k: seen.setdefault("gan", real_setup(*a, **k)))
    cfg = tiny(ema=0.99)
    train(cfg, tmp_path, evaluator=lambda g: scored.append(_flat(g)) or {"fid": 1.0}, log=_quiet)
    gan = seen["gan"]
    torch.testing.assert_close(scored[-1], _flat(gan.g_ema.module))  # the evaluator got the average
    assert not torch.allclose(scored[-1], _flat(gan.g))
    for g, name in ((gan.g_ema.module, "average.png"), (gan.g, "g.png")):  # the grid is the average's
        sample_grid(g, fixed_grid_noise(cfg), tmp_path / name)
    grid = (tmp_path / "samples" / "step_0000050.png").read_bytes()
    assert grid == (tmp_path / "average.png").read_bytes() != (tmp_path / "g.png").read_bytes()
    state = read_state(latest_checkpoint(tmp_path))
    assert state["ema_n"] == 50 and state["g"].keys() == state["g_ema"].keys()
    g, cfg, step = load_generator(latest_checkpoint(tmp_path))  # what dcgan.sample/evaluate and a retrain read
    torch.testing.assert_close(_flat(g), _flat(gan.g_ema.module))
    assert cfg.ema == 0.99 and step == 50


@pytest.mark.slow  # trains long enough to checkpoint, stop and resume: minutes on 2 cores
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
