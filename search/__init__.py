"""The search: `python -m search.run` on the command line, `run_search(...)` from Python.

    from search import run_search
    exp = run_search(space="ratio_lr", trials=8, steps=400)   # the CLI's options, as keyword arguments
    exp.trials_frame()                                       # experiment.load's pandas views

Nothing is imported until it is called: Ray's workers import this package too.
"""


def run_search(**options):
    """Run the search `python -m search.run` would run with these options (space="ratio_lr",
    image_size=8, set={"ngf": 8}, dry_run=True, ...) and return its experiment (search.run.run_from_python)."""
    from search.run import run_from_python

    return run_from_python(**options)
