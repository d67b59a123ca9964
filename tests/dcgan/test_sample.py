"""python -m dcgan.sample: images from a dcgan.train run or a checkpoint; bad paths refused."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dcgan import sample
from dcgan.config import TrainConfig
from dcgan.train import train

TINY = dict(image_size=8, ngf=8, ndf=8, batch_size=16, steps=20, eval_every=10, keep_checkpoints=2)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    train(TrainConfig(**TINY), out, evaluator=None, log=lambda _: None)
    return out


def test_grid_and_npy_from_a_run(run_dir, tmp_path, capsys):
    assert sample.main([str(run_dir), "-o", str(tmp_path / "g.png"), "--n", "16"]) == 0
    assert "step 20" in capsys.readouterr().out  # the latest of the run's checkpoints
    assert Image.open(tmp_path / "g.png").size == (4 * 8 + 5 * 2, 4 * 8 + 5 * 2)  # 4 x 4 tiles, 2 px padding
    assert sample.main([str(run_dir / "checkpoints" / "step_0000010"), "--npy", str(tmp_path / "a.npy"), "--n", "7",
                        "--seed", "3"]) == 0
    a = np.load(tmp_path / "a.npy")
    assert a.shape == (7, 1, 8, 8) and a.dtype == np.uint8 and a.std() > 0


def test_same_seed_same_images_other_seed_others(run_dir, tmp_path):
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert sample.main([str(run_dir), "--npy", str(tmp_path / f"{name}.npy"), "--seed", str(seed)]) == 0
    a, b, c = (np.load(tmp_path / f"{x}.npy") for x in "abc")
    assert (a == b).all() and not (a == c).all()


@pytest.mark.parametrize("case", ["missing", "not-a-run", "exists", "corrupt"])
def test_bad_input_one_line_exit_2(run_dir, tmp_path, capsys, case):
    import shutil

    path, out = tmp_path / "nope", tmp_path / "out.png"
    if case == "not-a-run":
        path.mkdir()
    if case == "exists":
        path = run_dir
        out.write_bytes(b"keep me")
    if case == "corrupt":
        path = tmp_path / "ckpt"
        shutil.copytree(run_dir / "checkpoints" / "step_0000020", path)
        (path / "state.pt").write_bytes((path / "state.pt").read_bytes()[:100])
    assert sample.main([str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    if case == "exists":
        assert out.read_bytes() == b"keep me"
    else:
        assert not out.exists()
    if case == "corrupt":
        assert "state.pt" in err[0] and "truncated or corrupt" in err[0]


def _experiment_with_a_winner(run_dir, root):
    """An experiment as a search leaves it, in the parts dcgan.sample reads: the winning trial's
    checkpoints in Tune's folders, and best_config.json naming the last (experiment/winner.py)."""
    import json
    import shutil

    exp = root / "exp"
    for i, step in enumerate((10, 20)):
        shutil.copytree(run_dir / "checkpoints" / f"step_{step:07d}", exp / "tune-abc" / f"checkpoint_{i:06d}")
    cfg = TrainConfig.from_json(run_dir / "config.json")
    best = {"config": cfg.to_dict(), "trial_id": "abc", "fid": 50.0,
            "checkpoint": str(exp / "tune-abc" / "checkpoint_000001")}
    (exp / "best_config.json").write_text(json.dumps(best))
    return exp, cfg


def test_best_config_samples_the_winner_and_says_which_checkpoint(run_dir, tmp_path, capsys):
    """Step 4 of the README read, a user asks for images of the winner: its trial's last checkpoint,
    or a longer run of its config trained into the experiment, whichever went further; also in an
    experiment moved since the search (the path it names is gone: found under the file's folder)."""
    exp, cfg = _experiment_with_a_winner(run_dir, tmp_path)
    assert sample.main([str(exp / "best_config.json"), "-o", str(tmp_path / "w.png")]) == 0
    out = capsys.readouterr().out
    assert f"from {exp / 'tune-abc' / 'checkpoint_000001'} (step 20" in out and "winning trial's last" in out, out

    train(cfg.replace(steps=30), exp / "long", resume_from=run_dir / "checkpoints" / "step_0000020",
          evaluator=None, log=lambda _: None)
    assert sample.main([str(exp / "best_config.json"), "-o", str(tmp_path / "long.png")]) == 0
    out = capsys.readouterr().out
    assert f"from {exp / 'long' / 'checkpoints' / 'step_0000030'} (step 30" in out and "30-step run" in out, out

    moved = tmp_path / "moved"
    exp.rename(moved)
    (moved / "long").rename(tmp_path / "long-elsewhere")
    assert sample.main([str(moved / "best_config.json"), "-o", str(tmp_path / "m.png")]) == 0
    assert f"from {moved / 'tune-abc' / 'checkpoint_000001'} (step 20" in capsys.readouterr().out


def test_best_config_without_its_checkpoint_here_is_one_line(run_dir, tmp_path, capsys):
    """A best_config.json read where the checkpoints are not (the experiment left in a bucket):
    one line naming where the checkpoint is, exit 2, nothing written."""
    import json

    best = {"config": TrainConfig(**TINY).to_dict(), "checkpoint": "s3://bucket/exps/e/tune-abc/checkpoint_000003"}
    (tmp_path / "best_config.json").write_text(json.dumps(best))
    before = sorted(tmp_path.iterdir())
    assert sample.main([str(tmp_path / "best_config.json"), "-o", str(tmp_path / "w.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint of the winner" in err[0] and best["checkpoint"] in err[0], err
    assert sorted(tmp_path.iterdir()) == before


def test_an_experiment_folder_samples_its_winner_not_the_newest_checkpoint(run_dir, tmp_path, capsys, metrics_cache):
    """Given the experiment's folder, the winner of best_config.json, not the newest checkpoint in the
    tree (there, a later one of the paper's setting's confirmation run), and the path used is said."""
    import shutil

    exp, cfg = _experiment_with_a_winner(run_dir, tmp_path)
    confirmation = tmp_path / "confirmation"  # the paper's setting on another seed, further than the winner
    train(cfg.replace(seed=2, lr_g=2e-4, steps=30), confirmation, evaluator=None, log=lambda _: None)
    shutil.copytree(confirmation / "checkpoints" / "step_0000030",
                    exp / "tune-confirm" / "run_confirmation_baseline_seed_2" / "checkpoint_000003")
    (exp / "experiment.json").write_text("{}")
    assert sample.main([str(exp), "-o", str(tmp_path / "w.png")]) == 0
    out = capsys.readouterr().out
    assert f"from {exp / 'tune-abc' / 'checkpoint_000001'} (step 20; the winner in best_config.json" in out, out
    from dcgan import evaluate

    assert evaluate.main([str(exp), "--samples", "64"]) == 0
    assert f"scoring {exp / 'tune-abc' / 'checkpoint_000001'} (step 20; the winner" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["not-ended", "damaged"])
def test_a_search_without_a_readable_winner_is_one_line(run_dir, tmp_path, capsys, case):
    """A search's folder with no best_config.json yet (its search has not ended), or a damaged one:
    one line naming the file and what to pass instead, exit 2, for dcgan.sample and dcgan.evaluate."""
    from dcgan import evaluate

    exp, _ = _experiment_with_a_winner(run_dir, tmp_path)
    (exp / "experiment.json").write_text("{}")
    if case == "not-ended":
        (exp / "best_config.json").unlink()
    else:
        (exp / "best_config.json").write_text('{"config": {"lr_g": 0.0')  # cut short by a full disk
    for command, args in ((sample.main, ["-o", str(tmp_path / "w.png")]), (evaluate.main, [])):
        assert command([str(exp), *args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), err
        if case == "not-ended":
            assert "without best_config.json" in err[0] and "tune-<trial_id>" in err[0], err
        else:
            assert "best_config.json" in err[0] and "not valid JSON" in err[0], err
    assert not (tmp_path / "w.png").exists()
