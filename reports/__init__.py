"""The HTML report of an experiment directory (docs/experiment-layout.md).

The directory is read, and its trials ranked, by the `experiment` package (`Experiment`,
`rank_trials`); here the ranking is described and drawn, each step its own module:

- `plot_info`: what each section shows, as NamedTuples (`_get_..._info`), no plotly;
- `figures` and `html`: those infos drawn as plotly figures and HTML;
- `build` and `compare`: the CLIs, `python -m reports.build` / `python -m reports.compare`.
"""
