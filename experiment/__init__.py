"""The experiment directory: one package owns its format (docs/experiment-layout.md).

- `layout`: `Experiment(uri)`, the directory's one reader and writer, on any pyarrow filesystem;
- `schema`: the results.jsonl row keys (dcgan's, and `time_s`), the statuses, experiment.json's
  fields, NaN-to-null;
- `ranking`: `rank_trials(experiment) -> Ranking`, the leaderboard's rules;
- `confirmation`: the top trials and the baseline trained again with other seeds, summed up;
- `winner`: the trial best_config.json holds, and that file;
- `notebook`: `load(uri)`, the experiment with pandas views (`trials_frame()`, `curves_frame()`).

`search/` writes through it, `reports/` reads through it; it imports neither.
"""

from experiment.layout import Experiment, ExperimentError, Trial, is_uri, storage_uri
from experiment.notebook import LoadedExperiment, load
from experiment.ranking import Ranking, RankedTrial, rank_trials
from experiment.winner import winner

__all__ = ["Experiment", "ExperimentError", "Trial", "is_uri", "storage_uri", "Ranking", "RankedTrial", "rank_trials",
           "winner", "load", "LoadedExperiment"]
