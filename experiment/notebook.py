"""An experiment as tables, for a notebook (docs/notebook.md):

    import experiment
    exp = experiment.load("experiments/ratio_lr-20261123-101500")   # or s3://bucket/experiments/...
    exp.trials_frame()    # one row per trial, leaderboard order
    exp.curves_frame()    # one row per evaluation

`load` returns an `Experiment` (the one reader) with the frames on top. What the frames say about a
trial (its place, its group, the confirmation's mean, the winner) is what `ranking`, `confirmation`
and `winner` decide; nothing here decides it again.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Optional

from dcgan import keys
from experiment.confirmation import Confirmation, confirmation
from experiment.layout import Experiment, parse_confirm_name
from experiment.ranking import Ranking, RankedTrial, rank_trials
from experiment.schema import RESULT_KEYS
from experiment.winner import winner

if TYPE_CHECKING:
    import pandas as pd

PARAMS_PREFIX = "params_"  # a sampled parameter's column: params_lr_g (Optuna's trials_dataframe spells it so)
VERDICT = "verdict"  # the last evaluation's collapse verdict: ok | partial | collapsed | not_learned
# trials_frame's columns, around the params_* columns (one per parameter the space sampled)
TRIAL_COLUMNS = ("trial_id", "position", "group", "status")
RESULT_COLUMNS = ("steps_reached", "steps_target", "fid", "fid_step", "best_fid", "best_fid_step", VERDICT,
                  *keys.DIAGNOSTICS, "time_s",
                  # the confirmation (None where the trial was not confirmed): mean and spread of the FIDs
                  # of its runs that counted, how many counted of how many
                  "confirm_fid_mean", "confirm_fid_std", "confirm_runs_counted", "confirm_runs",
                  "is_baseline", "is_winner", "marks")
INT_COLUMNS = ("position", "steps_target", "fid_step", "best_fid_step", "confirm_runs_counted", "confirm_runs")
FLOAT_COLUMNS = ("fid", "best_fid", *keys.DIAGNOSTICS, "time_s", "confirm_fid_mean", "confirm_fid_std")
CURVE_COLUMNS = ("trial_id", *RESULT_KEYS)  # the results.jsonl rows of evaluations
CONFIRM_CURVE_COLUMNS = ("trial_id", "seed", *RESULT_KEYS)


def load(uri: str) -> "LoadedExperiment":
    """The experiment at `uri` (a local path or a URI such as s3://bucket/experiments/name);
    ExperimentError, naming what to pass, if it is not one. Read once: load again to see a running
    search's new results."""
    return LoadedExperiment.open(uri)


class LoadedExperiment(Experiment):
    """An Experiment with its ranking, confirmation and winner, and pandas views of them."""

    @functools.cached_property
    def ranking(self) -> Ranking:
        return rank_trials(self)

    @functools.cached_property
    def confirmed(self) -> Optional[Confirmation]:
        """The confirmation runs summed up per confirmed trial; None when there were none."""
        return confirmation(self, self.ranking)

    @functools.cached_property
    def winner(self) -> Optional[RankedTrial]:
        """The trial best_config.json holds (mid-search: would hold if the search ended now)."""
        return winner(self.ranking, self.confirmed)

    def trials_frame(self) -> "pd.DataFrame":
        """One row per trial, in leaderboard order (ranked, collapsed, never learned, diverged), then
        the unranked ones: TRIAL_COLUMNS, a params_<name> column per sampled parameter, RESULT_COLUMNS."""
        import pandas as pd

        params = [PARAMS_PREFIX + name for name in self.ranking.param_names]
        frame = pd.DataFrame([self._trial_row(t) for t in self.ranking.trials],
                             columns=[*TRIAL_COLUMNS, *params, *RESULT_COLUMNS])
        # missing numbers as NaN (floats) or <NA> (ints), never None in an object column
        return frame.astype({**{c: "Int64" for c in INT_COLUMNS}, **{c: "float64" for c in FLOAT_COLUMNS}})

    def curves_frame(self, confirmation: bool = False) -> "pd.DataFrame":
        """One row per evaluation (the results.jsonl rows that carry a FID, a step evaluated again
        after a restart once): CURVE_COLUMNS, by trial and step. With `confirmation`, the
        confirmation runs' instead, with the confirmed trial's id and the run's seed."""
        import pandas as pd

        rows = []
        if confirmation:
            for run in self.confirmations:
                trial_id, seed = parse_confirm_name(run.trial_id)
                rows += [{"trial_id": trial_id, "seed": seed, **row} for row in run.evaluations]
        else:
            for trial in self.trials:
                rows += [{"trial_id": trial.trial_id, **row} for row in trial.evaluations]
        frame = pd.DataFrame(rows, columns=list(CONFIRM_CURVE_COLUMNS if confirmation else CURVE_COLUMNS))
        return frame.astype({keys.STEP: "int64", keys.N: "Int64"})

    def _trial_row(self, t: RankedTrial) -> dict:
        confirmed = next((c for c in self.confirmed.configs if c.trial_id == t.trial_id), None) \
            if self.confirmed is not None else None
        return {
            "trial_id": t.trial_id, "position": t.position, "group": t.group, "status": t.status,
            **{PARAMS_PREFIX + k: v for k, v in t.params.items()},
            "steps_reached": t.steps_reached, "steps_target": t.steps_target,
            "fid": t.fid, "fid_step": t.last_eval_step if t.fid is not None else None,
            "best_fid": t.best_fid, "best_fid_step": t.best_fid_step, VERDICT: t.collapse,
            **t.diagnostics, "time_s": t.time_s,
            "confirm_fid_mean": confirmed.mean if confirmed else None,
            "confirm_fid_std": confirmed.std if confirmed else None,
            "confirm_runs_counted": len(confirmed.fids) if confirmed else None,
            "confirm_runs": len(confirmed.runs) if confirmed else None,
            "is_baseline": t.is_baseline, "is_winner": self.winner is not None and t.trial_id == self.winner.trial_id,
            "marks": ", ".join(t.marks),
        }
