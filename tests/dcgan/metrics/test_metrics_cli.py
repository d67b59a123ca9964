"""`python -m dcgan.evaluate` on a run folder and on an .npy file, its bad inputs, and the
training loop's evaluations (FID falls during a short digits run)."""

import json
import re

import numpy as np
import pytest
import torch

from dcgan import evaluate
from dcgan.config import TrainConfig
from dcgan.metrics import KEYS
from dcgan.train import train

RUN = dict(dataset="digits", image_size=16, ngf=16, ndf=16, steps=150, eval_every=50, eval_samples=300,
           lr_g=1e-3, lr_d=1e-3)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, metrics_cache_dir):
    mp = pytest.MonkeyPatch()
    mp.setenv("DCGAN_CACHE", str(metrics_cache_dir))
    out = tmp_path_factory.mktemp("run")
    result = train(TrainConfig(**RUN), out, log=lambda line: None)
    yield out, result
    mp.undo()


def _rows(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_training_reports_falling_fid(run_dir):
    out, result = run_dir
    rows = _rows(out)
    assert result.status == "completed" and [r["step"] for r in rows] == [50, 100, 150]
    assert all(set(KEYS) <= set(r) for r in rows)
    assert all(re.fullmatch(r"digits-classifier-v\d+@[0-9a-f]{12}", r["extractor"]) and r["n"] == 300 for r in rows)
    assert rows[-1]["fid"] < rows[0]["fid"], [r["fid"] for r in rows]


def test_evaluate_cli_on_a_run_folder(run_dir, metrics_cache, capsys):
    out, _ = run_dir
    assert evaluate.main([str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == set(KEYS)
    last = _rows(out)[-1]
    assert printed["fid"] == pytest.approx(last["fid"], rel=1e-9)  # same fixed noise, same G
    ckpt = sorted((out / "checkpoints").iterdir())[-1]
    assert evaluate.main([str(ckpt)]) == 0
    assert json.loads(capsys.readouterr().out)["fid"] == pytest.approx(last["fid"], rel=1e-9)


def test_evaluate_cli_on_npy_files(metrics_cache, tmp_path, capsys):
    from dcgan.data import load_splits

    held = load_splits(TrainConfig(dataset="digits", image_size=16)).heldout.images.numpy()
    np.save(tmp_path / "u8.npy", held)
    np.save(tmp_path / "f32.npy", held.astype(np.float32) / 127.5 - 1.0)
    np.save(tmp_path / "unit.npy", held.astype(np.float32) / 255.0)  # torchvision's convention
    results = []
    for name, flags in (("u8.npy", []), ("f32.npy", ["--range", "-1,1"]), ("unit.npy", ["--range", "0,1"])):
        argv = ["--images", str(tmp_path / name), "--dataset", "digits", "--image-size", "16", *flags]
        assert evaluate.main(argv) == 0
        results.append(json.loads(capsys.readouterr().out))
    assert set(results[0]) == set(KEYS) and results[0]["n"] == len(held) and results[0]["fid"] < 5
    for result in results[1:]:  # float input, in either range, rounds to the same levels
        assert result["fid"] == pytest.approx(results[0]["fid"], rel=1e-9)


@pytest.mark.parametrize("name, flags, expected", [
    ("unit.npy", [], "say which range they are in: --range -1,1 (G's output) or --range 0,1"),
    ("f32.npy", ["--range", "0,1"], "holds values in [-1, 1], outside --range 0,1"),
    ("u8.npy", ["--range", "0,1"], "--range is for float images: drop it"),
])
def test_evaluate_cli_float_images_need_their_range(name, flags, expected, tmp_path, capsys):
    """Floats in [0, 1] were taken as [-1, 1] without a word, and scored as dim images; now a float
    file needs its range, and one outside it is refused: one line, exit 2, nothing written."""
    images = np.linspace(0, 1, 8 * 16 * 16, dtype=np.float32).reshape(8, 1, 16, 16)
    np.save(tmp_path / name, {"unit.npy": images, "f32.npy": images * 2 - 1, "u8.npy": (images * 255).astype(np.uint8)}[name])
    before = sorted(tmp_path.iterdir())
    assert evaluate.main(["--images", str(tmp_path / name), "--dataset", "digits", "--image-size", "16", *flags]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured.err
    assert expected in captured.err and sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize("case", ["shape", "dataset", "inception", "pickled checkpoint"])
def test_evaluate_cli_bad_input_exits_2_with_one_line(case, run_dir, metrics_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DCGAN_INCEPTION_WEIGHTS", raising=False)
    if case == "pickled checkpoint":  # a checkpoint from a shared bucket must not run code when read
        import shutil

        ckpt = tmp_path / "ckpt"
        shutil.copytree(sorted((run_dir[0] / "checkpoints").iterdir())[-1], ckpt)
        torch.save({**torch.load(ckpt / "state.pt", weights_only=True), "hook": _Payload()}, ckpt / "state.pt")
        argv = [str(ckpt)]
    elif case == "shape":
        np.save(tmp_path / "x.npy", np.zeros((10, 16, 16), np.uint8))
        argv = ["--images", str(tmp_path / "x.npy"), "--dataset", "digits", "--image-size", "16"]
    elif case == "dataset":
        np.save(tmp_path / "x.npy", np.zeros((10, 1, 16, 16), np.uint8))
        argv = ["--images", str(tmp_path / "x.npy"), "--dataset", "no-such-data", "--image-size", "16"]
    else:  # RGB unlabelled data needs Inception, whose weights are not here and may not download
        (tmp_path / "imgs").mkdir()
        from PIL import Image

        for i in range(8):
            Image.fromarray(np.full((16, 16, 3), i * 30, np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
        np.save(tmp_path / "x.npy", np.zeros((10, 3, 16, 16), np.uint8))
        argv = ["--images", str(tmp_path / "x.npy"), "--dataset", f"folder:{tmp_path / 'imgs'}", "--image-size", "16"]
    assert evaluate.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured.err
    expected = {"shape": "expected (N", "dataset": "unknown dataset", "inception": "DCGAN_INCEPTION_WEIGHTS",
                "pickled checkpoint": "state.pt: it holds a pickled object"}[case]
    assert expected in captured.err


class _Payload:
    pass


def test_evaluator_restores_train_mode_and_is_deterministic(run_dir, metrics_cache):
    from dcgan.data import load_splits
    from dcgan.metrics import build_evaluator
    from dcgan.models import build_models

    cfg = TrainConfig(**RUN)
    splits = load_splits(cfg)
    evaluator = build_evaluator(splits, "cpu", cfg.eval_samples, seed=cfg.seed)
    torch.manual_seed(0)
    g, _ = build_models(cfg, splits.channels)
    g.train()
    first, second = evaluator(g), evaluator(g)
    assert g.training and first == second
