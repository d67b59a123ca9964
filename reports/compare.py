"""`python -m reports.compare EXP_A EXP_B [-o FILE]`: two experiments side by side.

For instance a `ratio_lr` search against a `betas` search: their headers, the best of each,
FID distributions (flagged when the two measure FID differently) and both leaderboards.
"""

from __future__ import annotations

import argparse
import posixpath
import sys
import time
from html import escape

from experiment import Experiment, ExperimentError, rank_trials
from reports import figures, html
from reports.build import require_results
from reports.output import check_writable, write_text
from reports.plot_info import _get_comparison_info, _get_header_info


def build_comparison(where_a: str, where_b: str) -> str:
    """The comparison page for two experiment directories, as HTML text."""
    experiments = [Experiment.open(w) for w in (where_a, where_b)]
    for e in experiments:
        require_results(e)
    rankings = [rank_trials(e) for e in experiments]
    info = _get_comparison_info(*rankings)
    headers = [_get_header_info(e) for e in experiments]
    columns = "".join(
        f"<div><h2>{escape(label)}</h2>{html.unfinished_banner() if not header.finished else ''}"
        f"{html.facts_html(header, ranking)}{html.best_html(ranking)}</div>"
        for label, header, ranking in zip(info.labels, headers, rankings))
    series = [(label, fids) for label, fids in zip(info.labels, info.fids)]
    body = [
        f"<h1>Compare: {escape(info.labels[0])} vs {escape(info.labels[1])}</h1>",
        f'<div class="{"best" if info.comparable else "banner"}">{escape(info.note)}</div>',
        f'<div class="side">{columns}</div>',
        html.section("distributions", "FID distributions",
                     html.figure_div(figures.fid_distributions_figure(series, info.comparable), "fig-fid-distributions")),
        *(html.section(f"leaderboard-{i}", f"Leaderboard: {label}", html.leaderboard_html(r, f"leaderboard-{i}"))
          for i, (label, r) in enumerate(zip(info.labels, rankings))),
    ]
    return html.page(f"Compare {info.labels[0]} vs {info.labels[1]}", body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.compare", description=__doc__.splitlines()[0])
    parser.add_argument("experiment_a", help="first experiment directory (local path or URI)")
    parser.add_argument("experiment_b", help="second experiment directory (local path or URI)")
    parser.add_argument("-o", "--output", help="where to write the HTML (default: compare-<A>-vs-<B>.html "
                                               "in the current directory)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        for where in (args.experiment_a, args.experiment_b):
            Experiment.open(where)
        target = args.output or _default_output(args.experiment_a, args.experiment_b)
        check_writable(target)
        text = build_comparison(args.experiment_a, args.experiment_b)
        write_text(target, text)
    except ExperimentError as e:
        print(f"reports.compare: {e}", file=sys.stderr)
        return 2
    print(f"wrote {target} ({len(text.encode()) / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)")
    return 0


def _default_output(where_a: str, where_b: str) -> str:
    def name(where: str) -> str:
        return posixpath.basename(where.rstrip("/")) or "experiment"

    # Beside neither experiment: the page belongs to both, so it goes where the user is.
    return f"compare-{name(where_a)}-vs-{name(where_b)}.html"


if __name__ == "__main__":
    sys.exit(main())
