"""The HTML report of an experiment directory (docs/experiment-layout.md).

Read -> rank -> describe -> draw, each its own module:

- `experiment`: the directory (a local path or a URI) as plain data;
- `ranking`: `rank_trials(experiment) -> Ranking`, the leaderboard's rules;
- `plot_info`: what each section shows, as NamedTuples (`_get_..._info`), no plotly;
- `figures` and `html`: those infos drawn as plotly figures and HTML;
- `build` and `compare`: the CLIs, `python -m reports.build` / `python -m reports.compare`.
"""
