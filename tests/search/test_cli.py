"""Bad input to search.run and search.train: one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from search import run as search_run
from search import train as search_train


def run_main(main, argv, capsys):
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


@pytest.mark.parametrize("argv, message", [
    (["--space", "ratio-lr"], "error: unknown space 'ratio-lr'; known: betas, full, latent, loss, ratio_lr, smoke"),
    (["--space", "smoke", "--dataset", "nope"], "error: unknown dataset 'nope'"),
    (["--space", "smoke", "--trials", "0"], "error: --trials must be >= 1, got 0"),
    (["--space", "smoke", "--set", "lr_g=0.1"], "error: --set lr_g fixes a parameter that space 'smoke' searches"),
    (["--space", "smoke", "--set", "lr=0.1"], "error: unknown config key 'lr'"),
    (["--space", "smoke", "--resume"], "error: --resume needs --name"),
    (["--space", "smoke", "--resume", "--name", "x", "--warm-start", "best_config.json"],
     "error: --warm-start starts a new search; a resumed one keeps its own (drop --warm-start)"),
    (["--space", "smoke", "--scheduler", "asha", "--population", "4"], "error: --population goes with --scheduler pbt"),
    (["--space", "smoke", "--trials", "8", "--population", "4"], "error: --population goes with --scheduler pbt"),
    (["--space", "smoke", "--sampler", "random", "--perturb-every", "2"], "error: --perturb-every goes with --scheduler"),
    (["--space", "smoke", "--scheduler", "pbt", "--trials", "8"], "error: --trials does not go with --scheduler pbt"),
    (["--space", "smoke", "--scheduler", "pb2", "--sampler", "gp"], "error: --sampler does not go with --scheduler pb2"),
    (["--space", "smoke", "--scheduler", "pbt", "--population", "1"], "error: --population must be >= 2, got 1"),
    (["--space", "smoke", "--scheduler", "pbt", "--perturb-every", "0"], "error: --perturb-every must be >= 1"),
    (["--space", "smoke", "--pack", "0"], "error: --pack must be >= 1, got 0"),
    (["--space", "smoke", "--set", "cuda_graph=true"], "error: cuda_graph=true replays each step on a GPU"),
    (["--space", "smoke", "--scheduler", "asha", "--pack", "4"], "error: --pack trains a pbt population's members"),
    (["--space", "smoke", "--scheduler", "pb2", "--pack", "4"], "error: --pack trains a pbt population's members"),
    (["--space", "smoke", "--pack", "4", "--workers-per-trial", "2"], "error: --pack trains a pbt population's members"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, argv, message):
    rc, err = run_main(search_run.main, argv + ["--storage", str(tmp_path / "exps")], capsys)
    assert rc == 2
    assert len(err) == 1 and err[0].startswith(message), err
    assert not (tmp_path / "exps").exists()


def test_unwritable_storage(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for storage in (str(blocker / "exps"), "/proc/dcgan-search-exps"):
        rc, err = run_main(search_run.main, ["--space", "smoke", "--storage", storage], capsys)
        assert rc == 2 and len(err) == 1 and err[0].startswith("error: cannot write to storage"), err
    assert list(tmp_path.iterdir()) == [blocker]


def test_resume_with_another_space(tmp_path, capsys):
    exp = tmp_path / "exps" / "x"
    exp.mkdir(parents=True)
    (exp / "experiment.json").write_text(json.dumps({"space": "betas"}))
    rc, err = run_main(search_run.main, ["--space", "smoke", "--storage", str(tmp_path / "exps"), "--name", "x",
                                         "--resume"], capsys)
    assert rc == 2
    assert err == ["error: experiment 'x' searched space 'betas', not 'smoke'; resume it with --space betas"]
    assert sorted(p.name for p in exp.iterdir()) == ["experiment.json"]


def test_resume_of_a_missing_experiment(tmp_path, capsys):
    rc, err = run_main(search_run.main, ["--space", "smoke", "--storage", str(tmp_path), "--name", "nope",
                                         "--resume"], capsys)
    assert rc == 2 and err[0].startswith("error: no experiment 'nope'")


def test_existing_experiment_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "experiment.json").write_text("{}")
    rc, err = run_main(search_run.main, ["--space", "smoke", "--storage", str(tmp_path), "--name", "x"], capsys)
    assert rc == 2 and "pass --resume" in err[0]


def test_unreachable_address_fails_fast(tmp_path):
    """In a subprocess: the test session's own Ray must not be reused here."""
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "search.run", "--space", "smoke", "--address", "127.0.0.1:9",
                           "--storage", str(tmp_path / "exps")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot reach Ray at 127.0.0.1:9")
    assert time.time() - t0 < 60
    assert not (tmp_path / "exps").exists()


def test_check_address_rejects_garbage():
    from search.cluster import check_address
    from search.plan import SearchError

    with pytest.raises(SearchError, match="HOST:PORT"):
        check_address("not-an-address")


def test_list_spaces(capsys):
    assert search_run.main(["--list-spaces"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["betas", "full", "latent", "loss", "ratio_lr", "smoke"]


def test_search_train_bad_config(tmp_path, capsys):
    rc, err = run_main(search_train.main, ["--config", str(tmp_path / "missing.json"), "--storage", str(tmp_path / "r")],
                       capsys)
    assert rc == 2 and err[0].startswith("error: config file not found")
    assert not (tmp_path / "r").exists()


def test_resume_refuses_flags_that_change_the_search(tmp_path, capsys):
    """--resume goes on with the search as it was planned: a flag given with another value than the
    experiment's (it would be ignored) is one line, exit 2, nothing written. The first command
    again, with --resume, is accepted; so is --resume with only --space and --name."""
    from search.plan import plan_search
    from search.run import given_flags
    from search.tuner import experiment_info

    first = ["--space", "smoke", "--trials", "2", "--steps", "20", "--image-size", "8", "--set", "ngf=8",
             "--confirm", "1", "--storage", str(tmp_path), "--name", "e"]
    plan = plan_search(search_run.build_parser().parse_args(first))
    plan.experiment.write_info(experiment_info(plan, 1, "2026-11-24T00:00:00+00:00"))  # as run_search does first
    before = (tmp_path / "e" / "experiment.json").read_bytes()
    for changed, message in [
        (["--trials", "6"], "--trials 6 (the experiment's: 2)"),
        (["--set", "ngf=16", "--steps", "40"], "--steps 40 (the experiment's: 20); --set ngf 16 (the experiment's: 8)"),
        (["--confirm", "0", "--sampler", "random"], "--sampler random (the experiment's: tpe); --confirm 0 (the "
                                                    "experiment's: 1)"),
    ]:
        rc, err = run_main(search_run.main, [*first, *changed, "--resume"], capsys)
        assert rc == 2 and len(err) == 1, err
        assert err[0] == (f"error: --resume goes on with experiment 'e' as it was planned, and these flags change it: "
                          f"{message}; drop them (a search with other settings is another --name)")
    assert (tmp_path / "e" / "experiment.json").read_bytes() == before
    for argv in ([*first, "--resume"], ["--space", "smoke", "--storage", str(tmp_path), "--name", "e", "--resume"]):
        resumed = plan_search(search_run.build_parser().parse_args(argv), given_flags(argv))
        assert resumed.resume and (resumed.trials, resumed.steps, resumed.fixed) == (2, 20, plan.fixed)


def test_search_train_resume_bad_input(tmp_path, capsys):
    """--resume goes on with an existing, unfinished run as it was set up; anything else is one line,
    exit 2, and the run's files untouched."""
    from dcgan.config import TrainConfig

    runs = tmp_path / "r"
    cfg = TrainConfig(image_size=8, ngf=8, ndf=8, steps=300, eval_every=10)
    cfg.to_json(tmp_path / "cfg.json")
    (runs / "half").mkdir(parents=True)
    cfg.to_json(runs / "half" / "config.json")
    (runs / "done").mkdir()
    cfg.to_json(runs / "done" / "config.json")
    (runs / "done" / "final_metrics.json").write_text("{}")
    before = {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()}
    for argv, message in [
        ([], "error: --config FILE is needed (a search's best_config.json), or --name NAME --resume"),
        (["--resume"], "error: --resume needs --name NAME"),
        (["--resume", "--name", "nope"], f"error: no run 'nope' in {runs} to resume; check --name and --storage"),
        (["--resume", "--name", "done"], f"error: run '{runs}/done' has ended (its final_metrics.json is written); "
                                         "nothing to resume"),
        (["--resume", "--name", "half", "--config", str(tmp_path / "cfg.json"), "--steps", "600"],
         "error: --resume goes on with run 'half' as it was set up, and these flags change steps 600 (the run's: 300); "
         "drop --config, --steps and --set"),
        (["--resume", "--name", "half", "--set", "lr_g=0.001"], "error: --resume goes on with run 'half' as it was "
                                                                "set up, and these flags change lr_g 0.001 (the run's: "
                                                                "0.0002); drop --config, --steps and --set"),
        (["--config", str(tmp_path / "cfg.json"), "--name", "half"], f"error: run '{runs}/half' exists; pass another "
                                                                     "--name, or --resume to go on with it"),
    ]:
        rc, err = run_main(search_train.main, [*argv, "--storage", str(runs)], capsys)
        assert rc == 2 and len(err) == 1 and err[0].startswith(message), (argv, err)
    assert {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()} == before


def test_bad_warm_start_exits_2_with_one_line(tmp_path, capsys):
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps({"config": {"lr_g": 0.05, "lr_d": 1e-4}}))  # as in a best_config.json
    inside = tmp_path / "inside.json"
    inside.write_text(json.dumps({"lr_g": 1e-3, "lr_d": 1e-4}))
    for argv, message in [
        (["--warm-start", str(tmp_path / "missing.json")], f"error: --warm-start {tmp_path}/missing.json: config file "
                                                           "not found"),
        (["--warm-start", str(outside)], f"error: --warm-start {outside}: lr_g=0.05 is outside the range [0.0001, "
                                         "0.01] of space 'smoke'; pass a config inside the space"),
        (["--warm-start", str(inside), "--trials", "1"], "error: --trials 1 leaves no trial for the --warm-start "
                                                         "configs after the baseline; pass --trials 2 or more"),
    ]:
        rc, err = run_main(search_run.main, ["--space", "smoke", *argv, "--storage", str(tmp_path / "exps")], capsys)
        assert rc == 2 and len(err) == 1 and err[0].startswith(message), err
    assert not (tmp_path / "exps").exists()


@pytest.mark.parametrize("argv, message", [
    (["--gpus-per-worker", "0.5", "--workers-per-trial", "2"], "error: --gpus-per-worker 0.5 with --workers-per-trial 2 "
                                                               "would put several ranks of one trial on one GPU"),
    (["--gpus-per-worker", "1.5"], "error: --gpus-per-worker above 1 must be a whole number"),
    (["--gpus-per-worker", "0.25"], "error: --gpus-per-worker asks for a GPU, and this machine has none"),
    (["--set", "device=cuda"], "error: device=cuda, but this machine has no CUDA GPU"),
])
def test_fast_path_options_that_cannot_apply_are_refused(tmp_path, capsys, monkeypatch, argv, message):
    import torch

    if torch.cuda.is_available() and "no" in message:
        pytest.skip("this machine has a GPU")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    rc, err = run_main(search_run.main, ["--space", "smoke", *argv, "--storage", str(tmp_path / "exps")], capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith(message), err
    assert not (tmp_path / "exps").exists()


def test_bad_data_is_found_before_any_trial(tmp_path, capsys, user_folders):
    """A folder with unreadable images (a 38-line traceback from PIL before) and one smaller than a
    worker's batch: the driver's data check says so in one line, before Ray starts or a file is
    written; with the images' count and the shard of each worker."""
    storage = tmp_path / "exps"
    rc, err = run_main(search_run.main, ["--space", "smoke", "--dataset", f"folder:{user_folders.corrupt}",
                                         "--storage", str(storage)], capsys)
    assert rc == 2 and err == [f"error: 2 of 42 images in {user_folders.corrupt} cannot be read, the first "
                               f"{user_folders.corrupt}/a.png (image file is truncated); remove or replace them"]
    rc, err = run_main(search_run.main, ["--space", "smoke", "--dataset", f"folder:{user_folders.small}",
                                         "--workers-per-trial", "2", "--set", "batch_size=20", "--storage",
                                         str(storage)], capsys)
    assert rc == 2 and err == [f"error: dataset folder:{user_folders.small} has 36 training images (40 less 4 "
                               "held out), 18 per worker of 2, fewer than batch_size 20; pass --set batch_size=18 "
                               "or less, use fewer workers, use more images"]
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"dataset": f"folder:{user_folders.small}", "image_size": 8}))
    rc, err = run_main(search_train.main, ["--config", str(config), "--storage", str(storage)], capsys)
    assert rc == 2 and len(err) == 1 and "36 training images" in err[0] and "batch_size 64" in err[0], err
    assert list(tmp_path.iterdir()) == [config]


@pytest.mark.parametrize("name", ["../../../x", "a/b", "..", ".", "x y", "/abs"])
def test_a_name_is_one_folder_of_the_storage(tmp_path, capsys, name):
    """`--name ../../../x` ran a whole search three levels above the storage given: on a shared
    disk or bucket, someone else's place. A name is one folder: letters, digits, '.', '_', '-'."""
    storage = tmp_path / "a" / "b" / "c" / "exps"
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"image_size": 8}))
    for main, argv in ((search_run.main, ["--space", "smoke"]), (search_train.main, ["--config", str(config)]),
                       (search_train.main, ["--resume"])):
        rc, err = run_main(main, [*argv, "--storage", str(storage), "--name", name], capsys)
        assert rc == 2 and len(err) == 1, err
        assert err[0] == (f"error: --name {name!r} is not a name: it must be one folder of the storage, made of "
                          f"letters, digits, '.', '_' and '-' (no '/', no '..'); pass a name such as --name "
                          f"my-search-1"), err
    assert list(tmp_path.iterdir()) == [config]


def test_a_long_run_with_a_captured_step_needs_one_gpu_worker(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"image_size": 8, "cuda_graph": True}))
    for flags in ([], ["--gpus-per-worker", "1", "--workers", "2"]):
        rc, err = run_main(search_train.main, ["--config", str(config), "--storage", str(tmp_path / "runs"), *flags],
                           capsys)
        assert rc == 2 and err == ["error: cuda_graph=true replays each step on a GPU in one process: pass "
                                   "--gpus-per-worker and --workers 1, or drop it"], err
    assert list(tmp_path.iterdir()) == [config]
