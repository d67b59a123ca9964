"""experiment.confirmation as plain data: which runs count, the winner by mean FID over seeds, the
gain over the baseline (no files, no Ray)."""

from __future__ import annotations

import math

import pytest

from dcgan import keys
from experiment.confirmation import ConfirmationRun, ConfirmedConfig, _gain
from experiment.schema import COMPLETED, STOPPED


def config(trial_id: str, fids: list, is_baseline: bool = False, status: str = COMPLETED, verdict=keys.OK):
    runs = [ConfirmationRun(seed, fid, 100, status, verdict) for seed, fid in enumerate(fids, start=1)]
    return ConfirmedConfig(trial_id, is_baseline, {}, None, runs)


def test_a_run_counts_only_when_complete_finite_and_not_failed():
    assert ConfirmationRun(1, 10.0, 100, COMPLETED, keys.PARTIAL).counts
    assert not ConfirmationRun(1, 10.0, 50, STOPPED, keys.OK).counts
    assert not ConfirmationRun(1, math.nan, 100, COMPLETED, keys.OK).counts
    assert not ConfirmationRun(1, None, 100, COMPLETED, keys.OK).counts
    assert not ConfirmationRun(1, 10.0, 100, COMPLETED, keys.COLLAPSED).counts
    assert not ConfirmationRun(1, 10.0, 100, COMPLETED, keys.NOT_LEARNED).counts


def test_mean_and_spread_over_the_counted_runs():
    c = config("t1", [10.0, 14.0])
    assert c.complete and c.mean == 12.0 and c.std == pytest.approx(2 ** 0.5 * 2)
    assert "FID 12.00 ± 2.83 over seeds 1, 2" == c.describe()
    partial = config("t2", [10.0, None])
    assert not partial.complete and partial.mean == 10.0 and partial.std is None


def test_the_gain_over_the_baseline():
    base, best = config("t0", [50.0, 50.0], is_baseline=True), config("t1", [40.0, 40.0])
    gain, note = _gain(best, base)
    assert gain == pytest.approx(20.0) and "20.0% lower FID" in note
    assert _gain(base, base)[0] == 0.0
    assert _gain(best, config("t0", [50.0, None], is_baseline=True))[0] is None  # the baseline not confirmed
    assert _gain(None, base) == (None, "no confirmed config had every run reach its last step with a good FID")
