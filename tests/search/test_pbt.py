"""Population-based searches (--scheduler pbt, pb2) on the shared local Ray, at smoke size: exploits
copy weights and apply new values, the lineage replays a member, the winner trains on from its
checkpoint, a killed search resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dcgan.config import TrainConfig
from experiment.layout import Experiment
from experiment.lineage import read_lineage
from search import run as search_run
from search import train as search_train

from raysession import kill_search_at

pytestmark = pytest.mark.slow

STEPS, EVERY = 60, 10
# 8 px, tiny nets; no augmentation (at 8 px it slows the first steps); 6 evaluations per member, so that
# the population's worst copies the best several times
POPULATION = ["--space", "ratio_lr", "--population", "4", "--image-size", "8", "--set", "ngf=8", "--set", "ndf=8",
              "--set", "eval_samples=200", "--set", "batch_size=32", "--set", "augment="]
PBT = [*POPULATION, "--steps", str(STEPS), "--set", f"eval_every={EVERY}"]


@pytest.fixture(scope="module")
def pbt_search(ray_session, tmp_path_factory) -> Path:
    storage = tmp_path_factory.mktemp("pbt")
    argv = [*PBT, "--scheduler", "pbt", "--confirm", "1", "--confirm-seeds", "1", "--storage", str(storage),
            "--name", "pbt"]
    assert search_run.main(argv) == 0
    return storage / "pbt"


def checkpoints_at(exp: Path, trial_id: str, step: int) -> list[Path]:
    """The trial's checkpoint folders (Tune's) whose state is at `step`."""
    from dcgan.checkpoint import read_state

    found = sorted((exp / f"tune-{trial_id}").glob("checkpoint_*"))
    return [c for c in found if int(read_state(c, mmap=True)["step"]) == step]


def test_exploits_go_on_from_the_source_with_new_values(pbt_search, one_thread):
    """An exploit: the member goes on from the source's checkpoint at its step, with new values in its
    optimisers (compared with the source's checkpoint trained on here); the control is never
    perturbed nor copied; the lineage and the schedule are in the experiment."""
    from dcgan.checkpoint import load_checkpoint, read_state
    from dcgan.state import setup
    from dcgan.train import train_step

    exp = Experiment(str(pbt_search))
    info = exp.meta
    assert info["scheduler"] == "pbt" and info["population"] == 4 and info["trials_requested"] == 5
    control = info["baseline_trial_id"]
    lineages = {t.trial_id: read_lineage(exp, t.trial_id) for t in exp.trials}
    assert len(lineages) == 5 and all(lineage is not None for lineage in lineages.values())
    exploits = [(tid, e) for tid, lineage in lineages.items() for e in lineage.exploits]
    assert exploits, "no member was exploited"
    # the control: the paper's values throughout, never exploited, never a source
    assert not lineages[control].exploits and not lineages[control].changes
    assert all(e.source != control for _, e in exploits)
    assert exp.trial(control).params == {"d_steps_per_g": 1, "lr_d": 2e-4, "lr_g": 2e-4}
    assert all(t.status == "completed" and t.evaluations[-1]["step"] == STEPS for t in exp.trials)

    checked = 0
    for tid, e in exploits:
        lineage, source = lineages[tid], e.source
        assert e.changed and e.from_step <= STEPS - EVERY  # never at a member's last step
        # the schedule: the source's up to the checkpoint, then the new values from its step
        assert lineage.changes[-1]["step"] >= e.from_step
        new = TrainConfig.from_dict({**info["fixed"], **lineage.values_at(e.from_step)})
        sources, copies = checkpoints_at(pbt_search, source, e.from_step), checkpoints_at(pbt_search, tid,
                                                                                           e.from_step + EVERY)
        matched = False
        for src in sources:
            for dst in copies:
                after = read_state(dst)
                if after["opt_g"]["param_groups"][0]["lr"] != new.lr_g:
                    continue
                # the optimisers hold the new values, not the source's
                for opt, lr in (("opt_g", new.lr_g), ("opt_d", new.lr_d)):
                    assert after[opt]["param_groups"][0]["lr"] == lr
                    assert tuple(after[opt]["param_groups"][0]["betas"]) == (new.beta1, new.beta2)

                def train_on():
                    gan = setup(new)
                    load_checkpoint(gan, src, 0)
                    assert gan.step == e.from_step
                    for _ in range(EVERY):
                        train_step(gan)
                    return gan

                gan = one_thread(train_on)
                if all(torch.equal(v, after["g"][k]) for k, v in gan.g.state_dict().items()):
                    assert all(torch.equal(v, after["g_ema"][k]) for k, v in gan.g_ema.module.state_dict().items())
                    matched = True
        checked += matched
    assert checked, "no exploit's copy matched the source's checkpoint trained on with its new values"

    # the confirmation replays each confirmed member's schedule with a new seed, beside the control
    confirmed = {c.trial_id: c for c in exp.confirmations}
    assert f"{control}-seed1" in confirmed  # (the top member too, unless every member was flagged never learned)
    for name, run in confirmed.items():
        tid = name.rsplit("-seed", 1)[0]
        assert run.config["seed"] == 1 and run.config["schedule"] == lineages[tid].changes
        assert {k: run.config[k] for k in lineages[tid].params} == lineages[tid].params

    # the report shows the lineage and the winner's schedule
    report = (pbt_search / "report.html").read_text()
    assert 'id="lineage"' in report and 'id="schedule"' in report


def test_the_lineage_replays_a_member_and_the_winner_continues(pbt_search, tmp_path, one_thread):
    """dcgan.train --config best_config.json replays the winner's schedule to its FID; each exploited
    member's lineage replays it too; --continue trains on from the winner's last checkpoint."""
    from dcgan import train as dcgan_train
    from dcgan.train import train
    from experiment.lineage import replay_params

    exp = Experiment(str(pbt_search))
    best_file = pbt_search / "best_config.json"
    best = json.loads(best_file.read_text())
    assert best["checkpoint"].startswith(str(pbt_search / f"tune-{best['trial_id']}" / "checkpoint_"))
    lineage = read_lineage(exp, best["trial_id"])
    assert best["config"]["schedule"] == lineage.changes

    assert one_thread(lambda: dcgan_train.main(["--config", str(best_file), "--out", str(tmp_path / "replay")])) == 0
    rows = [json.loads(line) for line in (tmp_path / "replay" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == STEPS and rows[-1]["fid"] == pytest.approx(best["fid"], rel=1e-6)

    for t in exp.trials:
        if read_lineage(exp, t.trial_id).exploits:
            cfg = TrainConfig.from_dict({**exp.meta["fixed"], **replay_params(exp, t.trial_id)})
            result = one_thread(lambda: train(cfg, None, log=lambda _: None))
            assert result.metrics["fid"] == pytest.approx(t.evaluations[-1]["fid"], rel=1e-6), t.trial_id

    # the long run goes on from the winner's checkpoint, with its last values
    out = tmp_path / "continued"
    assert dcgan_train.main(["--config", str(best_file), "--continue", "--steps", str(STEPS + 2 * EVERY),
                             "--out", str(out), "--no-eval"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [STEPS + EVERY, STEPS + 2 * EVERY]
    from dcgan.checkpoint import read_state

    state = read_state(sorted((out / "checkpoints").glob("step_*"))[-1])
    last = TrainConfig.from_dict(best["config"]).values_at(STEPS)
    assert state["opt_g"]["param_groups"][0]["lr"] == last["lr_g"]
    assert state["opt_d"]["param_groups"][0]["lr"] == last["lr_d"]

    # a checkpoint at or past --steps: one line, exit 2
    assert dcgan_train.main(["--config", str(best_file), "--continue", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


def test_search_train_continues_the_winner(pbt_search, tmp_path):
    """search.train --continue (Ray Train): the first step run is the checkpoint's + 1."""
    best_file = pbt_search / "best_config.json"
    argv = ["--config", str(best_file), "--continue", "--steps", str(STEPS + EVERY), "--storage", str(tmp_path),
            "--name", "continued", "--set", "eval_samples=200"]
    assert search_train.main(argv) == 0
    rows = [json.loads(line) for line in (tmp_path / "continued" / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [STEPS + EVERY]
    final = json.loads((tmp_path / "continued" / "final_metrics.json").read_text())
    assert final["metrics"]["step"] == STEPS + EVERY


def test_continue_from_a_random_search_winner(ray_session, tmp_path):
    """--continue from a sampled search's winner (its trial's last checkpoint)."""
    from dcgan import train as dcgan_train

    argv = ["--space", "smoke", "--sampler", "random", "--trials", "2", "--steps", "20", "--set", "eval_every=10",
            "--image-size", "8", "--set", "ngf=8", "--set", "ndf=8", "--set", "eval_samples=200", "--set",
            "batch_size=32", "--confirm", "0", "--scheduler", "fifo", "--storage", str(tmp_path), "--name", "rnd"]
    assert search_run.main(argv) == 0
    best_file = tmp_path / "rnd" / "best_config.json"
    best = json.loads(best_file.read_text())
    assert best["checkpoint"].startswith(str(tmp_path / "rnd" / f"tune-{best['trial_id']}" / "checkpoint_"))
    out = tmp_path / "long"
    assert dcgan_train.main(["--config", str(best_file), "--continue", "--steps", "40", "--out", str(out),
                             "--no-eval"]) == 0
    assert [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [30, 40]
    # search.train --continue finds the checkpoint the same way (continued_from): test_search_train_continues_the_winner


def test_pb2_search_runs_within_the_bounds(ray_session, tmp_path):
    """PB2 (scikit-learn's GP over log10 of the rates and the ratio's index): a whole search, every
    member's values inside the space."""
    argv = [*PBT, "--population", "3", "--scheduler", "pb2", "--steps", "40", "--confirm", "0",
            "--storage", str(tmp_path), "--name", "pb2"]
    assert search_run.main(argv) == 0
    exp = Experiment(str(tmp_path / "pb2"))
    assert exp.meta["scheduler"] == "pb2" and len(exp.trials) == 4
    assert all(t.status == "completed" for t in exp.trials) and exp.best_config is not None
    for t in exp.trials:
        lineage = read_lineage(exp, t.trial_id)
        for values in [lineage.params, *lineage.changes]:
            assert 1e-4 <= values["lr_g"] <= 1e-2 and 1e-5 <= values["lr_d"] <= 1e-3
            assert values["d_steps_per_g"] in (1, 2, 3, 5)


def test_a_killed_pbt_search_resumes_with_every_member(ray_session, tmp_path):
    """SIGKILL the driver once members have trained a while; --resume ends the search with every
    member completed at its last step, its lineage kept, and a winner."""
    args = [*PBT, "--scheduler", "pbt", "--steps", "40", "--confirm", "0", "--storage", str(tmp_path), "--name", "k"]
    exp = tmp_path / "k"
    kill_search_at(ray_session, args, exp, 20)
    assert json.loads((exp / "experiment.json").read_text())["finished_at"] is None

    assert search_run.main([*args, "--resume"]) == 0
    done = Experiment(str(exp))
    assert len(done.trials) == 5
    assert all(t.status == "completed" and t.evaluations[-1]["step"] == 40 for t in done.trials), \
        [(t.trial_id, t.status, t.steps_reached) for t in done.trials]
    assert all(read_lineage(done, t.trial_id) is not None for t in done.trials)
    assert done.best_config is not None and done.meta["finished_at"] is not None



def _outcome(exp_dir: Path) -> dict:
    """What a PBT search decided and where it ended, with Tune's trial ids (whose prefix differs from
    run to run) as their counters: every member's lineage (exploits and schedule), FIDs, the winner."""
    exp = Experiment(str(exp_dir))
    best = json.loads((exp_dir / "best_config.json").read_text())
    counter = {t.trial_id: t.trial_id.rsplit("_", 1)[-1] for t in exp.trials}
    lineages = json.dumps({counter[t.trial_id]: read_lineage(exp, t.trial_id).__dict__ for t in exp.trials},
                          sort_keys=True, default=lambda e: e.__dict__)
    for tid, n in counter.items():
        lineages = lineages.replace(tid, n)
    return {"lineages": json.loads(lineages), "winner": counter[best["trial_id"]], "fid": best["fid"],
            "fids": {counter[t.trial_id]: [e["fid"] for e in t.evaluations] for t in exp.trials}}


@pytest.mark.parametrize("length", [["--steps", "40", "--set", f"eval_every={EVERY}"], ["--budget-steps", "400"]],
                         ids=["steps", "budget-steps"])
def test_a_seed_reproduces_a_pbt_search(ray_session, tmp_path, length):
    """The same seed and steps (or budget in steps): the same exploits, schedules, FIDs and winner, run
    after run (Ray's PBT draws from the global `random`, which Tune's event loop consumes by timing; ours
    decides with its own streams, at each perturbation step once every member is there)."""
    outcomes = []
    for name in ("first", "second"):
        argv = [*POPULATION, *length, "--scheduler", "pbt", "--confirm", "0", "--seed", "3", "--storage", str(tmp_path),
                "--name", name]
        assert search_run.main(argv) == 0
        outcomes.append(_outcome(tmp_path / name))
    first, second = outcomes
    assert any(lineage["exploits"] for lineage in first["lineages"].values()), "nothing to reproduce: no exploit"
    assert first == second
    if "--budget-steps" in length:  # the budget's steps, trained: every trial to its planned last step, no more
        budget = json.loads((tmp_path / "first" / "experiment.json").read_text())["budget"]
        ends = [t.evaluations[-1]["step"] for t in Experiment(str(tmp_path / "first")).trials]
        assert ends == [budget["trial_steps"]] * budget["trials"] and sum(ends) == budget["spent"] <= 400
