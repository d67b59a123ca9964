"""`python -m reports.build EXPERIMENT_DIR [-o FILE]`: one self-contained HTML report.

EXPERIMENT_DIR is a local path or a URI (file://, s3://, gs://). The report goes to
`<exp>/report.html` unless -o says otherwise; it opens with no network.
"""

from __future__ import annotations

import argparse
import posixpath
import sys
import time

from dcgan.files import EXIT_DISK_FULL, disk_full, disk_full_line
from experiment import Experiment, ExperimentError, Ranking, is_uri, rank_trials
from experiment.confirmation import confirmation
from experiment.layout import REPORT_HTML
from reports import figures, html
from reports.lineage_info import _get_lineage_info
from reports.output import check_writable, write_text
from reports.plot_info import (_get_diagnostics_info, _get_fid_curves_info, _get_header_info, _get_importance_info,
                               _get_params_info, _get_reuse_info, _get_sample_grids_info)

SECTIONS = (("leaderboard", "Leaderboard"), ("confirmation", "Confirmation"), ("samples", "Samples"),
            ("curves", "FID vs steps"),
            ("params", "Hyperparameters"), ("importance", "Importance"), ("diagnostics", "Diagnostics"),
            ("reuse", "Reuse the winner"))


def require_results(experiment: Experiment) -> None:
    if not any(t.evaluations for t in experiment.trials):
        n = len(experiment.trials)
        raise ExperimentError(f"{experiment.display} has no results yet ({n} trial(s), none evaluated); "
                              "build the report once a trial has reached its first evaluation")


def report_body(experiment: Experiment, ranking: Ranking) -> list[str]:
    """The report's sections, top to bottom, as HTML fragments."""
    nav = "<nav>" + "".join(f'<a href="#{a}">{t}</a>' for a, t in SECTIONS) + "</nav>"
    importance = _get_importance_info(experiment)
    curves = _get_fid_curves_info(ranking, experiment.meta.get("steps"))
    diagnostics = _get_diagnostics_info(ranking)
    confirmed = confirmation(experiment, ranking)
    return [
        html.header_html(_get_header_info(experiment), ranking, confirmed), nav,
        html.section("leaderboard", "Leaderboard", html.leaderboard_html(ranking)),
        html.section("confirmation", "Confirmation: the top trials and the baseline, trained again with other seeds",
                     *([html.confirmation_html(confirmed),
                        html.figure_div(figures.confirmation_figure(confirmed), "fig-confirmation")] if confirmed
                       else ['<p class="note">No confirmation runs (search.run --confirm 0, or the search has not '
                             "reached its end).</p>"])),
        html.section("samples", "Samples: top trials and the baseline (latest step)",
                     html.sample_grids_html(_get_sample_grids_info(experiment, ranking))),
        html.section("curves", "FID vs steps",
                     html.figure_div(figures.fid_curves_figure(curves), "fig-fid-curves") if curves.curves
                     else '<p class="note">No FID yet.</p>'),
        *_lineage_sections(experiment, ranking),
        html.section("params", "Hyperparameters", *_params_parts(ranking)),
        html.section("importance", "Hyperparameter importance", html.importance_note_html(importance),
                     *([html.figure_div(figures.importance_figure(importance), "fig-importance")]
                       if importance.importances else [])),
        html.section("diagnostics", "Diagnostics",
                     html.figure_div(figures.diagnostics_figure(diagnostics), "fig-diagnostics") if diagnostics.points
                     else '<p class="note">No diagnostics yet.</p>'),
        html.section("reuse", "Reuse the winner", html.reuse_html(_get_reuse_info(experiment, ranking))),
    ]


def _lineage_sections(experiment: Experiment, ranking: Ranking) -> list[str]:
    """A population-based search's: the winner's schedule, and the members with their exploits."""
    info = _get_lineage_info(experiment, ranking)
    if not info.curves:
        return []
    return [
        html.section("schedule", "The winner's schedule: its values against steps (they replay it from step 0)",
                     html.figure_div(figures.schedule_figure(info.schedule), "fig-schedule") if info.schedule
                     else '<p class="note">The winner has no schedule recorded.</p>'),
        html.section("lineage", "Population: who went on from whom",
                     html.figure_div(figures.member_curves_figure(info), "fig-members"), html.exploits_html(info)),
    ]


def _params_parts(ranking: Ranking) -> list[str]:
    views = _get_params_info(ranking)
    if not (views.axes and views.fids):
        return ['<p class="note">No trial with a comparable FID has sampled hyperparameters yet.</p>']
    lines = _get_params_info(ranking, include_collapsed=False)
    parallel = (html.figure_div(figures.parallel_coordinates_figure(lines), "fig-parallel") if lines.fids
                else '<p class="note">Every trial with a FID collapsed: no parallel coordinates.</p>')
    return [parallel, html.figure_div(figures.param_views_figure(views), "fig-param-views")]


def build_report(experiment: Experiment) -> str:
    """The whole report for one experiment, as HTML text."""
    require_results(experiment)
    ranking = rank_trials(experiment)
    return html.page(f"DCGAN search: {experiment.name}", report_body(experiment, ranking))


def default_output(where: str) -> str:
    if is_uri(where):
        return where.rstrip("/") + "/" + REPORT_HTML
    return posixpath.join(Experiment(where).root, REPORT_HTML)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.build", description=__doc__.splitlines()[0])
    parser.add_argument("experiment", help="experiment directory: a local path or a URI (file://, s3://, gs://)")
    parser.add_argument("-o", "--output", help="where to write the HTML (default: <experiment>/report.html)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        experiment = Experiment.open(args.experiment)
        target = args.output or default_output(args.experiment)
        check_writable(target)
        text = build_report(experiment)
        write_text(target, text)
    except ExperimentError as e:
        print(f"reports.build: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if (full := disk_full(e)) is None:
            raise
        print(f"reports.build: {disk_full_line(full, 'run it again')}", file=sys.stderr)
        return EXIT_DISK_FULL  # the report there was before, if any, is left whole
    seconds = time.perf_counter() - started
    print(f"wrote {target} ({len(text.encode()) / 1e6:.1f} MB, {len(experiment.trials)} trials, {seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
