"""A run's schedule (TrainConfig.schedule): parsed and checked like any field, applied in place at
its steps, and a restore that trains on with new values (population-based training's exploit)."""

import json

import pytest
import torch

from dcgan.checkpoint import load_checkpoint, read_state
from dcgan.config import ConfigError, TrainConfig
from dcgan.train import setup, train, train_step

TINY = dict(dataset="digits", image_size=8, ngf=8, ndf=8, latent_dim=8, batch_size=16, eval_every=10, steps=30,
            device="cpu")
SCHEDULE = [{"step": 10, "lr_g": 1e-3, "d_steps_per_g": 2}, {"step": 20, "lr_d": 5e-5, "beta1": 0.0}]


def tiny(**kw) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, **kw})


def test_the_schedule_round_trips_through_json_and_says_what_holds_when():
    cfg = tiny(schedule=SCHEDULE)
    assert TrainConfig.from_json(cfg.to_json()) == cfg and cfg.to_dict()["schedule"] == SCHEDULE
    assert cfg.values_at(9)["lr_g"] == cfg.lr_g and cfg.values_at(10)["lr_g"] == 1e-3
    assert cfg.values_at(25) == {"lr_g": 1e-3, "lr_d": 5e-5, "beta1": 0.0, "beta2": 0.999, "d_steps_per_g": 2}
    assert cfg.change_steps() == {10, 20}
    assert TrainConfig.from_dict({**TINY, "schedule": json.dumps(SCHEDULE)}) == cfg  # --set schedule=JSON
    assert tiny().schedule == () and tiny().to_dict()["schedule"] == []


@pytest.mark.parametrize("schedule, says", [
    ([{"step": 10, "loss": "hinge"}], "not loss"),
    ([{"step": 10}], "not nothing"),
    ([{"step": 20, "lr_g": 1e-3}, {"step": 10, "lr_g": 1e-4}], "increasing order"),
    ([{"step": 0, "lr_g": 1e-3}], "increasing order"),
    ([{"step": 10, "lr_g": -1.0}], "schedule at step 10: lr_g must be a positive number"),
    ([{"step": 10, "d_steps_per_g": "two"}], "d_steps_per_g must be int"),
    ("[{", "not valid JSON"),
    (7, "must be a list"),
])
def test_a_bad_schedule_is_one_line_naming_it(schedule, says):
    with pytest.raises(ConfigError, match=says) as e:
        tiny(schedule=schedule)
    assert "\n" not in str(e.value)


def test_the_loop_changes_the_values_in_place_at_each_step():
    """Adam's moments are kept; its rates and betas, and the D:G ratio, change after the given steps."""
    seen = {}

    def report(metrics, _ckpt):
        seen[metrics["step"]] = None

    cfg = tiny(schedule=SCHEDULE)
    gan = setup(cfg)
    from dcgan.train import follow_schedule

    follow_schedule(gan, cfg)
    assert gan.opt_g.param_groups[0]["lr"] == cfg.lr_g and gan.cfg.d_steps_per_g == 1
    for _ in range(10):
        train_step(gan)
    follow_schedule(gan, cfg)
    assert gan.opt_g.param_groups[0]["lr"] == 1e-3 and gan.cfg.d_steps_per_g == 2
    d_before = {int(s["step"]) for s in gan.opt_d.state.values()}
    train_step(gan)
    assert {int(s["step"]) for s in gan.opt_d.state.values()} == {d + 2 for d in d_before}
    result = train(cfg, None, evaluator=None, log=lambda _: None, report=report)
    assert result.step == 30 and sorted(seen) == [10, 20, 30]


def test_a_restore_trains_on_with_the_new_values_not_the_saved_ones(tmp_path):
    """A checkpoint saved at lr 2e-4, restored into a config at 1e-3: the optimisers hold 1e-3 (an
    optimizer's state_dict brings back its saved rates: Ray's pbt_dcgan_mnist stops here)."""
    train(tiny(steps=10), tmp_path / "a", evaluator=None, log=lambda _: None)
    ckpt = sorted((tmp_path / "a" / "checkpoints").glob("step_*"))[-1]
    assert read_state(ckpt)["opt_g"]["param_groups"][0]["lr"] == 2e-4
    new = tiny(lr_g=1e-3, lr_d=3e-5, beta1=0.1, beta2=0.99)
    gan = setup(new)
    load_checkpoint(gan, ckpt, 0)
    assert gan.step == 10
    for opt, lr in ((gan.opt_g, 1e-3), (gan.opt_d, 3e-5)):
        assert opt.param_groups[0]["lr"] == lr and tuple(opt.param_groups[0]["betas"]) == (0.1, 0.99)
        assert all(int(s["step"]) == 10 for s in opt.state.values())  # Adam's moments came back with the weights
    saved = read_state(ckpt)["g"]
    assert all(torch.equal(v, saved[k]) for k, v in gan.g.state_dict().items())
