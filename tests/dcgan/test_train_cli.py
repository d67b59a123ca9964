import json
import shlex
import signal
import subprocess
import sys
import time

import pytest

from dcgan.config import TrainConfig
from dcgan.train import EXIT_INTERRUPTED, main


def _bad_inputs(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps({"lr_gen": 1e-3}))
    return {
        "missing config file": ["--config", str(tmp_path / "nope.json")],
        "unknown key": ["--config", str(unknown)],
        "missing dataset path": ["--set", "dataset=folder:/no/such/folder"],
        "image size 100": ["--set", "image_size=100"],
        "folder with no images": ["--set", f"dataset=folder:{empty}"],
    }


@pytest.mark.parametrize("case", ["missing config file", "unknown key", "missing dataset path", "image size 100",
                                  "folder with no images"])
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    out = tmp_path / "run"
    assert main(_bad_inputs(tmp_path)[case] + ["--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert not out.exists()


def test_cli_trains_writes_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["--set", "image_size=8", "--set", "ngf=8", "--set", "ndf=8", "--set", "steps=20", "--set", "eval_every=10",
            "--set", "batch_size=16", "--no-eval", "--out", str(out)]
    assert main(args) == 0
    assert TrainConfig.from_json(out / "config.json").steps == 20
    assert (out / "samples" / "step_0000020.png").exists() and (out / "metrics.jsonl").exists()
    assert json.loads((out / "status.json").read_text()) == {"status": "completed", "step": 20}
    # the same command again finds the finished run and resumes from it: nothing to do, same files
    assert main(args) == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert json.loads((out / "status.json").read_text()) == {"status": "completed", "step": 20}


def test_a_different_config_in_an_existing_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--set", "image_size=8", "--set", "ngf=8", "--set", "ndf=8", "--set", "steps=10", "--no-eval", "--out", str(out)]
    assert main(base) == 0
    assert main(base + ["--set", "lr_g=1e-3"]) == 2
    assert "different config" in capsys.readouterr().err


def test_module_entry_point(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dcgan.train", "--set", "image_size=300", "--out", str(tmp_path / "x")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "image_size" in r.stderr


@pytest.mark.slow  # trains long enough to checkpoint, stop and resume: minutes on 2 cores
def test_ctrl_c_prints_the_command_that_goes_on(tmp_path, sigint_as_in_a_terminal):
    """Ctrl-C: exit 130 and the command that goes on, with the run's --out when it was chosen for
    the user; that command ends the run from its last checkpoint, each evaluation once."""
    args = ["--set", "image_size=8", "--set", "ngf=8", "--set", "ndf=8", "--set", "steps=2000", "--set", "eval_every=50",
            "--set", "batch_size=16", "--no-eval"]
    run = subprocess.Popen([sys.executable, "-m", "dcgan.train", *args], cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600  # a loaded machine: the run may take minutes to start
    while time.time() < deadline and _last_step(tmp_path.glob("runs/*/metrics.jsonl")) < 100:
        time.sleep(0.02)  # at step 100's line, step 50's checkpoint is written (it comes after its line)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=60)
    assert run.returncode == EXIT_INTERRUPTED, err[-2000:]
    (out,) = tmp_path.glob("runs/*")
    command = shlex.split(err.strip().splitlines()[-1])
    assert command[:3] == ["python", "-m", "dcgan.train"] and command[-2:] == ["--out", f"runs/{out.name}"], err
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows and rows[-1]["step"] < 2000
    rows[0]["mark"] = "before the stop"  # kept only if the run goes on from a checkpoint, not from step 0
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    assert main([*command[3:-1], str(out)]) == 0  # the --out as the command's, from the folder it was run in
    assert json.loads((out / "status.json").read_text()) == {"status": "completed", "step": 2000}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(50, 2001, 50)) and rows[0].get("mark")


def _last_step(files) -> int:
    try:
        return max((json.loads(line)["step"] for f in files for line in f.read_text().splitlines()), default=0)
    except ValueError:  # a line caught half written
        return 0


@pytest.mark.parametrize("case, message", [
    ("corrupt", "error: 2 of 42 images in {corrupt} cannot be read, the first {corrupt}/a.png (image file is "
                "truncated); remove or replace them"),
    ("small", "error: dataset folder:{small} has 36 training images (40 less 4 held out), fewer than batch_size 64; "
              "pass --set batch_size=36 or less, use more images"),
    ("batch", "error: dataset digits has 1617 training images (1797 less 180 held out), fewer than batch_size 5000; "
              "pass --set batch_size=1617 or less, use more images"),
])
def test_bad_data_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, user_folders, case, message):
    """An unreadable image (a traceback from PIL before) and a dataset smaller than the batch (an
    AssertionError): one line naming the fix, before the run folder is made."""
    monkeypatch.chdir(tmp_path)  # the default --out, runs/..., would be here
    dataset = {"corrupt": f"folder:{user_folders.corrupt}", "small": f"folder:{user_folders.small}",
               "batch": "digits"}[case]
    argv = ["--set", f"dataset={dataset}", "--set", "image_size=8", "--no-eval"]
    assert main(argv + (["--set", "batch_size=5000"] if case == "batch" else [])) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == message.format(corrupt=user_folders.corrupt, small=user_folders.small)
    assert not captured.out and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("at", [3, 12])  # the run's first files; a checkpoint or metrics row mid-run
def test_a_full_disk_stops_in_one_line_and_the_same_command_goes_on(tmp_path, capsys, monkeypatch, at):
    """ENOSPC at the `at`-th write (dcgan.files.FAULT_ENV): one line naming the file and the command to
    go on with, exit 3, every file written whole; the same command with room ends the run, and a
    metrics line cut short by the full disk is dropped on the way."""
    from dcgan.files import EXIT_DISK_FULL, FAULT_ENV

    out = tmp_path / "run"
    args = ["--set", "image_size=8", "--set", "ngf=8", "--set", "ndf=8", "--set", "steps=60", "--set", "eval_every=10",
            "--set", "batch_size=16", "--no-eval", "--out", str(out)]
    monkeypatch.setenv(FAULT_ENV, f"{at}:{tmp_path / 'writes'}")
    assert main(args) == EXIT_DISK_FULL
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: the disk is full: writing {out}"), err
    assert err.endswith(f"free some space, then go on with: python -m dcgan.train {shlex.join(args)}"), err
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".*"))
    for name in ("config.json", "status.json"):
        if (out / name).exists():
            json.loads((out / name).read_text())
    if (out / "metrics.jsonl").exists():
        with open(out / "metrics.jsonl", "a") as f:
            f.write('{"step": 5')  # what a full disk leaves of a line being appended
    monkeypatch.delenv(FAULT_ENV)
    assert main(args) == 0
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == \
        [10, 20, 30, 40, 50, 60]
    assert json.loads((out / "status.json").read_text()) == {"status": "completed", "step": 60}
