"""The control is the floor: a search hands back the better of its winner and the paper's setting at
the same final step (a budget's population trains every member, the control too, to the same step)."""

import pytest

from experiment import Experiment, rank_trials
from experiment.winner import best_config_json, winner


def _population(synthetic, control_fids, member_fids):
    return [synthetic.TrialSpec("m000_control", dict(synthetic.BASELINE_PARAMS), control_fids),
            *(synthetic.TrialSpec(f"m00{i}", {"lr_g": 1e-3 * i, "lr_d": 2e-4, "d_steps_per_g": 2}, fids)
              for i, fids in enumerate(member_fids, 1))]


@pytest.mark.parametrize("control, members, handed_back", [
    # members led early and fell behind: the control ends best, and is what the user gets
    ([90.0, 40.0, 9.0], [[30.0, 12.0, 11.0], [25.0, 10.0, 9.5], [60.0, 20.0, 30.0]], "m000_control"),
    ([90.0, 40.0, 20.0], [[30.0, 12.0, 11.0], [25.0, 10.0, 9.5], [60.0, 20.0, 30.0]], "m002"),
])
def test_the_better_of_the_winner_and_the_control_at_the_last_step(tmp_path, synthetic, control, members, handed_back):
    exp_dir = synthetic.write_experiment(tmp_path, _population(synthetic, control, members), best_config_trial=None)
    exp = Experiment(str(exp_dir))
    ranking = rank_trials(exp)
    best = winner(ranking)
    assert best.trial_id == handed_back
    last = {t.trial_id: t.evaluations[-1] for t in exp.trials}
    assert len({row["step"] for row in last.values()}) == 1  # every trial at the same final step
    control_fid = last["m000_control"]["fid"]
    assert best_config_json(exp, best)["fid"] == min(control_fid, min(m[-1] for m in members))
