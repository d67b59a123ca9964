"""A packed PBT search (--pack, search/packed.py) on the shared local Ray, at smoke size: every member is
a trial of the experiment that the report, the confirmation, --continue, a replay and --resume read as
one; the pack decides its exploits reproducibly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiment.layout import Experiment
from experiment.lineage import read_lineage
from search import run as search_run

from raysession import kill_search_at

pytestmark = pytest.mark.slow

STEPS, EVERY = 60, 10
PACKED = ["--space", "ratio_lr", "--population", "3", "--pack", "4", "--image-size", "8", "--set", "ngf=8",
          "--set", "ndf=8", "--set", "eval_samples=200", "--set", "batch_size=32", "--set", "augment=",
          "--set", f"eval_every={EVERY}", "--seed", "3"]


@pytest.fixture(scope="module")
def packed(ray_session, tmp_path_factory) -> tuple[Path, Path]:
    """The same packed search twice (the first with a confirmation of the top member)."""
    storage = tmp_path_factory.mktemp("packed")
    for name, confirm in (("first", ["--confirm", "1", "--confirm-seeds", "1"]), ("second", ["--confirm", "0"])):
        assert search_run.main([*PACKED, "--steps", str(STEPS), *confirm, "--storage", str(storage), "--name", name]) == 0
    return storage / "first", storage / "second"


def outcome(exp_dir: Path) -> dict:
    """Every member's lineage and FIDs and the winner, with the pack's trial id (which differs from run
    to run) left out of the members' names."""
    exp = Experiment(str(exp_dir))
    pack = exp.trials[0].trial_id.rsplit("-", 1)[0]
    text = json.dumps({"lineages": {t.trial_id: read_lineage(exp, t.trial_id).__dict__ for t in exp.trials},
                       "fids": {t.trial_id: [e["fid"] for e in t.evaluations] for t in exp.trials},
                       "winner": json.loads((exp_dir / "best_config.json").read_text())["trial_id"]},
                      sort_keys=True, default=lambda e: e.__dict__)
    return json.loads(text.replace(pack, "pack"))


def test_every_member_of_a_pack_is_a_trial_of_the_experiment(packed):
    """Four members in one pack: each with its rows at every evaluation, its status, lineage, grids
    and checkpoints where a trial's go; the control never exploited nor copied; best_config.json names
    a member and its checkpoint; the report and the confirmation read them as trials."""
    exp_dir, _ = packed
    exp = Experiment(str(exp_dir))
    assert exp.meta["pack"] == 4 and len(exp.trials) == 4
    assert len({t.trial_id.rsplit("-", 1)[0] for t in exp.trials}) == 1, "one pack"
    for t in exp.trials:
        assert t.status == "completed", (t.trial_id, t.status)
        assert [e["step"] for e in t.evaluations] == list(range(EVERY, STEPS + 1, EVERY))
        assert all(e["fid"] is not None for e in t.evaluations)
        assert sorted(p.name for p in (exp_dir / "trials" / t.trial_id / "samples").iterdir())[-1] == \
            f"step_{STEPS:07d}.png"
        assert (exp_dir / f"tune-{t.trial_id}").is_dir() and exp.last_checkpoint(t.trial_id)
    control = exp.meta["baseline_trial_id"]
    lineages = {t.trial_id: read_lineage(exp, t.trial_id) for t in exp.trials}
    exploits = [e for lineage in lineages.values() for e in lineage.exploits]
    assert exploits, "no exploit in 5 perturbation steps"
    assert not lineages[control].exploits and all(e.source != control for e in exploits)
    for tid, lineage in lineages.items():  # a member's config.json holds the values it ended with
        config = json.loads((exp_dir / "trials" / tid / "config.json").read_text())
        assert all(config[k] == v for k, v in lineage.values_at(STEPS).items()), tid
    best = json.loads((exp_dir / "best_config.json").read_text())
    assert best["checkpoint"] == exp.last_checkpoint(best["trial_id"])
    from dcgan.checkpoint import read_state

    assert read_state(best["checkpoint"])["step"] == STEPS
    assert (exp_dir / "report.html").stat().st_size > 0
    assert [t.trial_id for t in exp.confirmations] and all(
        t.trial_id.rsplit("-seed", 1)[0] in lineages and t.status == "completed" for t in exp.confirmations)
    built = subprocess.run([sys.executable, "-m", "reports.build", str(exp_dir)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr


def test_a_seed_reproduces_a_packed_search(packed):
    """The same seed and steps: the same exploits, schedules, FIDs and winner (the pack decides
    with its own seeded streams, every member at the same step)."""
    first, second = (outcome(p) for p in packed)
    assert first == second


def test_the_packed_winner_replays_and_continues(packed, tmp_path, one_thread):
    """dcgan.train --config best_config.json replays the winner's schedule alone, from step 0, to its
    FID (within 1%: a pack's updates equal a lone run's to float rounding, tests/dcgan/test_pack.py,
    which 60 steps and the exploits' copies compound); --continue trains on from its checkpoint."""
    from dcgan import train as dcgan_train

    exp_dir, _ = packed
    best_file = exp_dir / "best_config.json"
    best = json.loads(best_file.read_text())
    assert one_thread(lambda: dcgan_train.main(["--config", str(best_file), "--out", str(tmp_path / "replay")])) == 0
    rows = [json.loads(line) for line in (tmp_path / "replay" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == STEPS and rows[-1]["fid"] == pytest.approx(best["fid"], rel=0.01)
    out = tmp_path / "continued"
    assert dcgan_train.main(["--config", str(best_file), "--continue", "--steps", str(STEPS + EVERY), "--out",
                             str(out), "--no-eval"]) == 0
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [STEPS + EVERY]


def test_a_killed_packed_search_resumes(ray_session, tmp_path):
    """SIGKILL the driver once the pack has evaluated twice; --resume goes on from the pack's last
    checkpoint: every member completed at its last step, each step's row once, its lineage kept."""
    args = [*PACKED, "--steps", str(STEPS), "--confirm", "0", "--storage", str(tmp_path), "--name", "k"]
    exp = tmp_path / "k"
    kill_search_at(ray_session, args, exp, 2 * EVERY)
    assert json.loads((exp / "experiment.json").read_text())["finished_at"] is None

    assert search_run.main([*args, "--resume"]) == 0
    done = Experiment(str(exp))
    assert len(done.trials) == 4
    for t in done.trials:
        assert t.status == "completed", (t.trial_id, t.status)
        assert [e["step"] for e in t.evaluations] == list(range(EVERY, STEPS + 1, EVERY)), t.trial_id
        assert read_lineage(done, t.trial_id) is not None
    assert done.best_config is not None and done.meta["finished_at"] is not None
