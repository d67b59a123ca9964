"""A run ended by a wall time (`dcgan.train --budget`), and a finished run extended (`--out RUN --steps N`)."""

import json
import time

import pytest
import torch

from dcgan.checkpoint import latest_checkpoint, read_state
from dcgan.config import ConfigError, TrainConfig, parse_duration
from dcgan.train import main, train

TINY = ["--set", "image_size=8", "--set", "ngf=8", "--set", "ndf=8", "--set", "latent_dim=8", "--set", "batch_size=16",
        "--set", "eval_every=10", "--no-eval"]


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(run):
    state = read_state(latest_checkpoint(run))
    return state["step"], state["g"], state["d"]


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("20m", 1200), ("2h", 7200), ("45", 45), (" 1.5M ", 90)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "-5m", "0", "5 min", "nan", "inf", "1e400h"])
def test_bad_durations_name_the_forms(text):
    with pytest.raises(ConfigError, match="90s, 20m or 2h"):
        parse_duration(text)


def test_a_finished_run_extended_equals_one_run_to_the_end(tmp_path):
    """--out RUN --steps N goes on from RUN's last checkpoint with RUN's config: the same weights and
    rows as a run of N steps from the start."""
    once, twice = tmp_path / "once", tmp_path / "twice"
    assert main([*TINY, "--steps", "40", "--out", str(once)]) == 0
    assert main([*TINY, "--steps", "20", "--out", str(twice)]) == 0
    assert main(["--out", str(twice), "--steps", "40"]) == 0  # no --config, no --set: the run's own
    step, g, d = _weights(twice)
    assert step == 40 and TrainConfig.from_json(twice / "config.json") == TrainConfig.from_json(once / "config.json")
    for a, b in zip((g, d), _weights(once)[1:]):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in _rows(twice)] == [r["step"] for r in _rows(once)] == [10, 20, 30, 40]
    assert json.loads((twice / "status.json").read_text()) == {"status": "completed", "step": 40}


def test_extending_refuses_another_config_or_fewer_steps(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*TINY, "--steps", "20", "--out", str(run)]) == 0
    before = sorted(p.name for p in run.rglob("*"))
    assert main(["--out", str(run), "--steps", "40", "--set", "lr_g=1e-3"]) == 2
    assert main(["--out", str(run), "--steps", "10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {run} holds a run of a different config (lr_g: 0.0002 there, 0.001 here); pass another --out",
                   f"error: {run} is at step 20, past --steps 10; pass --steps 20 or more"]
    assert sorted(p.name for p in run.rglob("*")) == before


def test_a_deadline_ends_the_run_with_an_evaluation_and_a_checkpoint(tmp_path):
    """Stopped by its deadline at step k, a run is a run of k steps: evaluated and saved at k, its
    config.json saying so; a run of k steps from the start gives the same weights."""
    cfg = TrainConfig.from_dict(dict(dataset="digits", image_size=8, ngf=8, ndf=8, latent_dim=8, batch_size=16,
                                     eval_every=10**6, steps=10**9, device="cpu"))
    seen = []
    result = train(cfg, tmp_path / "timed", evaluator=lambda g: seen.append(1) or {}, log=lambda _: None,
                   deadline=time.monotonic() + 2.0)
    k = result.step
    assert result.status == "completed" and 1 <= k < 10**9 and result.cfg.steps == k and seen == [1]
    assert TrainConfig.from_json(tmp_path / "timed" / "config.json") == cfg.replace(steps=k)
    assert _rows(tmp_path / "timed")[-1]["step"] == k and latest_checkpoint(tmp_path / "timed").name == f"step_{k:07d}"
    again = train(cfg.replace(steps=k), tmp_path / "steps", evaluator=None, log=lambda _: None)
    assert again.step == k
    for a, b in zip(_weights(tmp_path / "timed")[1:], _weights(tmp_path / "steps")[1:]):
        assert all(torch.equal(a[x], b[x]) for x in a)


def test_budget_cli_stops_in_time_and_the_run_goes_on_with_steps(tmp_path, capsys):
    run = tmp_path / "run"
    t0 = time.monotonic()
    assert main([*TINY, "--budget", "3s", "--out", str(run)]) == 0
    assert time.monotonic() - t0 < 3.0 + 2.0  # the loop's own stop: set-up counted, one evaluation's slack
    status = json.loads((run / "status.json").read_text())
    k = status["step"]
    assert status["status"] == "completed" and TrainConfig.from_json(run / "config.json").steps == k
    assert f"(step {k})" in capsys.readouterr().out
    assert main(["--out", str(run), "--steps", str(k + 5)]) == 0  # extended: the budget's steps are its own
    assert json.loads((run / "status.json").read_text()) == {"status": "completed", "step": k + 5}


def test_a_bad_budget_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert main([*TINY, "--budget", "soon", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip() == "error: --budget takes a wall time such as 90s, 20m or 2h, got 'soon'"
    assert not (tmp_path / "run").exists()
