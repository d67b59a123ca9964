"""The captured step (dcgan/graph.py, cuda_graph=true).

On CPU: the pieces it is made of, each against what the eager step does (the step in its
capturable form, the average updated in place, rates and betas held as tensors, a checkpoint's
optimiser format), and the refusals. On a GPU (skipped elsewhere): a captured run against the eager
one, a schedule's change after capture, and a checkpoint of a captured run trained on eagerly."""

from __future__ import annotations

import copy

import pytest
import torch

from dcgan.checkpoint import read_state
from dcgan.config import ConfigError, TrainConfig
from dcgan.distributed import check_device
from dcgan.graph import WARMUP
from dcgan.models import Generator
from dcgan.state import apply_hyperparameters, average_in_place, ema_average, make_capturable, optimizer_state, setup
from dcgan.train import main as train_main
from dcgan.train import train, train_step

BASE = TrainConfig(image_size=8, ngf=8, ndf=8, batch_size=16, steps=3, eval_every=3, device="cpu")
MIXED = [{}, {"loss": "wgan-gp", "d_steps_per_g": 2, "augment": "translation,cutout"},
         {"loss": "hinge", "ema": 0.9, "latent_dim": 12}]
gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA graph needs a CUDA GPU")


def _weights(*modules: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for m in modules for t in (*m.parameters(), *m.buffers())]


def _same(a: list[torch.Tensor], b: list[torch.Tensor], tolerance: float = 0.0) -> bool:
    return all(x.shape == y.shape and (x.float() - y.float()).abs().max().item() <= tolerance for x, y in zip(a, b))


# --- on CPU: the pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize("options", MIXED)
def test_the_step_given_its_batches_is_the_step(options):
    """train_step in the form a graph captures (batches given, the average in place) trains exactly as
    the eager step: weights, moving average, the losses' sums."""
    cfg = BASE.replace(**options)
    drawn, given = setup(cfg), setup(cfg)
    for gan in (drawn, given):
        train_step(gan)  # the first step eagerly, as a captured run's warm-up: the average begins
    for _ in range(3):
        train_step(drawn)
        train_step(given, [given.sampler.next() for _ in range(cfg.d_steps_per_g)])
    nets = lambda gan: (gan.g, gan.d, *([gan.g_ema] if gan.g_ema is not None else []))  # noqa: E731
    assert _same(_weights(*nets(drawn)), _weights(*nets(given)))
    assert {k: float(v) for k, v in drawn.sums.items()} == {k: float(v) for k, v in given.sums.items()}
    assert given.step == drawn.step == 4 and given.n_summed == 4


def test_the_average_in_place_is_averaged_models_update():
    """dcgan.state.average_in_place against torch's AveragedModel.update_parameters (the reference),
    after the first update (a copy); BatchNorm's statistics averaged, its batch count copied."""
    torch.manual_seed(0)
    g = Generator(latent_dim=8, channels=1, image_size=8, ngf=8)
    avg = torch.optim.swa_utils.AveragedModel(g, multi_avg_fn=ema_average(0.99), use_buffers=True)
    avg.update_parameters(g)
    for _ in range(3):
        g(torch.randn(4, 8))  # moves the running statistics and the batch count
        with torch.no_grad():
            for p in g.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        theirs = copy.deepcopy(avg)
        theirs.update_parameters(g)
        average_in_place(avg, g)
        assert _same(_weights(avg), _weights(theirs))
        assert int(avg.n_averaged) == int(theirs.n_averaged)


def test_rates_held_as_tensors_are_filled_in_place_and_saved_as_floats():
    """make_capturable makes Adam's rates and betas tensors; a schedule's change fills those same
    tensors (what a replayed graph reads); the checkpoint keeps today's format, which a plain Adam
    loads and steps on exactly as its twin that was never made capturable."""
    cfg = BASE.replace(ema=0.9)
    held, plain = setup(cfg), setup(cfg)
    for gan in (held, plain):
        train_step(gan)
    make_capturable(held.opt_g, held.device)
    tensors = [held.opt_g.param_groups[0]["lr"], *held.opt_g.param_groups[0]["betas"]]
    changed = cfg.replace(lr_g=1e-3, beta1=0.3, beta2=0.9)
    apply_hyperparameters(held, changed)
    apply_hyperparameters(plain, changed)
    group = held.opt_g.param_groups[0]
    assert group["lr"] is tensors[0] and all(a is b for a, b in zip(group["betas"], tensors[1:]))
    assert [float(t) for t in tensors] == pytest.approx([1e-3, 0.3, 0.9])
    saved, theirs = optimizer_state(held.opt_g)["param_groups"], plain.opt_g.state_dict()["param_groups"]
    for ours, group in zip(saved, theirs):  # the same, but the rates' float32 rounding (the tensors')
        assert {**ours, "lr": 0, "betas": 0} == {**group, "lr": 0, "betas": 0}
        assert type(ours["lr"]) is float and all(type(b) is float for b in ours["betas"])
        assert [ours["lr"], *ours["betas"]] == pytest.approx([group["lr"], *group["betas"]], rel=1e-7)
    saved = optimizer_state(held.opt_g)
    assert all(s["step"].device.type == "cpu" for s in saved["state"].values())
    held.opt_g.load_state_dict(saved)  # back to a plain Adam, which steps on as the twin does
    apply_hyperparameters(held)  # (as after every restore: the config's rates, not their float32 copies)
    for gan in (held, plain):
        train_step(gan)
    assert _same(_weights(held.g, held.d), _weights(plain.g, plain.d))


def test_cuda_graph_is_refused_where_it_cannot_run(capsys, tmp_path):
    with pytest.raises(ConfigError, match="set one of them"):
        BASE.replace(cuda_graph=True, compile=True)
    with pytest.raises(ConfigError, match="cuda_graph=true replays the step on a CUDA GPU"):
        check_device(BASE.replace(cuda_graph=True))
    out = tmp_path / "run"
    assert train_main(["--set", "image_size=8", "--set", "device=cpu", "--set", "cuda_graph=true",
                       "--steps", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cuda_graph=true") and "\n" not in err
    assert not out.exists()


# --- on a GPU: the captured step itself -----------------------------------------------------------


@pytest.fixture
def deterministic():
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before


def _run(cfg: TrainConfig, out=None, **kw):
    return train(cfg, out, evaluator=None, log=lambda _: None, **kw)


@gpu
@pytest.mark.parametrize("options", MIXED)
def test_a_captured_run_is_the_eager_run(options, deterministic):
    """The warm-up, the capture and the replays train as the eager step does with the same (capturable)
    Adam, to float tolerance; and as a plain run does, to Adam's own rounding of its bias corrections."""
    cfg = BASE.replace(device="cuda", steps=WARMUP + 8, eval_every=WARMUP + 8, **options)
    captured, eager, plain = setup(cfg), setup(cfg), setup(cfg)
    from dcgan.graph import CapturedStep

    step = CapturedStep(captured, train_step)
    make_capturable(eager.opt_g, eager.device)
    make_capturable(eager.opt_d, eager.device)
    for _ in range(cfg.steps):
        flag = step(captured)
        assert not bool(flag)
        train_step(eager)
        train_step(plain)
    assert step.graph is not None and captured.step == cfg.steps
    assert _same(_weights(captured.g, captured.d), _weights(eager.g, eager.d), 1e-5)
    assert _same(_weights(captured.g, captured.d), _weights(plain.g, plain.d), 1e-4)
    for key, value in eager.sums.items():
        assert float(captured.sums[key]) == pytest.approx(float(value), rel=1e-4), key


@gpu
def test_a_schedule_change_after_capture_is_followed(tmp_path, deterministic):
    """New rates and betas after the graph is captured (filled in place), then a new D:G ratio (a new
    graph): the captured run matches the eager one, and differs from a run without the change."""
    schedule = [{"step": WARMUP + 3, "lr_g": 1e-3, "lr_d": 5e-4, "beta1": 0.2},
                {"step": WARMUP + 6, "d_steps_per_g": 2}]
    cfg = BASE.replace(device="cuda", steps=WARMUP * 2 + 12, eval_every=100, schedule=schedule)
    runs = {}
    for name, c in (("captured", cfg.replace(cuda_graph=True)), ("eager", cfg), ("unchanged", cfg.replace(schedule=()))):
        assert _run(c, tmp_path / name).status == "completed"
        state = read_state(next((tmp_path / name / "checkpoints").iterdir()))
        runs[name] = [t for net in ("g", "d") for t in state[net].values()]
    assert _same(runs["captured"], runs["eager"], 1e-4)
    assert not _same(runs["captured"], runs["unchanged"], 1e-3)


@gpu
def test_a_captured_runs_checkpoint_goes_on_eagerly_and_captured(tmp_path, deterministic):
    """A captured run's checkpoint is today's format (rates as floats), and goes on from it alike
    eagerly and captured, and as the run that went straight through (its random streams saved as
    the replays left them)."""
    cfg = BASE.replace(device="cuda", steps=WARMUP + 5, eval_every=WARMUP + 5, ema=0.9, cuda_graph=True)
    first = tmp_path / "first"
    _run(cfg, first)
    ckpt = next((first / "checkpoints").iterdir())
    group = read_state(ckpt)["opt_g"]["param_groups"][0]
    assert isinstance(group["lr"], float) and group["capturable"] is False
    on = {}
    longer = cfg.replace(steps=cfg.steps + 8)
    for name, c, start in (("captured", longer, ckpt), ("eager", longer.replace(cuda_graph=False), ckpt),
                           ("straight", longer, None)):
        out = tmp_path / name
        assert _run(c, out, resume_from=start).status == "completed"
        on[name] = read_state(sorted((out / "checkpoints").iterdir())[-1])
    for other in ("eager", "straight"):
        for net in ("g", "d", "g_ema"):
            assert _same(list(on["captured"][net].values()), list(on[other][net].values()), 1e-4), (other, net)


@gpu
def test_a_warm_step_asks_the_host_nothing():
    """train_step (with the moving average) and a pack's step, once warm, make no call that waits for
    the device (torch's sync debug mode raises on one): the host runs ahead, queueing kernels."""
    from dcgan.pack import Pack

    cfg = BASE.replace(device="cuda", ema=0.9, d_steps_per_g=2)
    gan = setup(cfg)
    pack = Pack([setup(cfg.replace(seed=s, lr_g=1e-3 * s, d_steps_per_g=s)) for s in (1, 2)])
    for _ in range(2):
        train_step(gan)
        pack.step()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            train_step(gan)
            pack.step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
