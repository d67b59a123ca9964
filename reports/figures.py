"""Render: each info from `reports/plot_info.py` -> one plotly figure. Nothing is computed here."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from reports.lineage_info import LineageInfo, ScheduleInfo
from reports.plot_info import DiagnosticsInfo, FidCurvesInfo, ImportanceInfo, ParamsInfo
from experiment.confirmation import Confirmation
from experiment import schema
from experiment.ranking import COLLAPSED, DIVERGED, NOT_LEARNED, RANKED

GROUP_COLOURS = {RANKED: "#1f77b4", COLLAPSED: "#ff7f0e", NOT_LEARNED: "#7f7f7f", DIVERGED: "#d62728"}
BEST_COLOUR, BASELINE_COLOUR = "#2ca02c", "#111111"
END_SYMBOLS = {schema.STOPPED: "x", schema.DIVERGED: "star-triangle-down", schema.RUNNING: "circle-open"}
END_LABELS = {schema.STOPPED: "stopped early (ASHA)", schema.DIVERGED: "diverged", schema.RUNNING: "still running"}
TEMPLATE = "plotly_white"


def fid_curves_figure(info: FidCurvesInfo) -> go.Figure:
    """FID vs step, one line per trial; the last point says how a trial ended."""
    fig = go.Figure()
    for c in info.curves:
        colour = BEST_COLOUR if c.is_best else BASELINE_COLOUR if c.is_baseline else GROUP_COLOURS[c.group]
        tag = " (best)" if c.is_best else " (baseline)" if c.is_baseline else ""
        fig.add_trace(go.Scatter(
            x=c.steps, y=c.fids, mode="lines+markers", name=f"{c.trial_id}{tag}", legendgroup=c.trial_id,
            line=dict(color=colour, width=3 if (c.is_best or c.is_baseline) else 1.5,
                      dash="dot" if c.group == COLLAPSED else "solid"),
            marker=dict(size=5), connectgaps=False,
            hovertemplate=f"{c.trial_id}<br>step %{{x}}<br>FID %{{y:.2f}}<extra>{c.status}</extra>",
        ))
        last = _last_finite(c.steps, c.fids)
        if c.end is not None and last is not None:
            fig.add_trace(go.Scatter(
                x=[last[0]], y=[last[1]], mode="markers", legendgroup=c.trial_id, showlegend=False,
                marker=dict(symbol=END_SYMBOLS[c.end], size=13, color=colour, line=dict(width=2, color=colour)),
                hovertemplate=f"{c.trial_id}: {END_LABELS[c.end]} after step %{{x}}<extra></extra>",
            ))
    for end, symbol in END_SYMBOLS.items():  # a legend for the end markers, drawn once
        if any(c.end == end for c in info.curves):
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=END_LABELS[end],
                                     marker=dict(symbol=symbol, size=11, color="#555")))
    if info.steps_target:
        fig.add_vline(x=info.steps_target, line=dict(color="#999", dash="dash"),
                      annotation_text="target steps", annotation_position="top left")
    fig.update_yaxes(type=info.y_axis)
    fig.update_layout(template=TEMPLATE, height=480, xaxis_title="generator step",
                      yaxis_title="FID (lower is better" + (", log scale)" if info.y_axis == "log" else ")"),
                      title="FID vs steps (dotted: collapsed; markers: where a trial stopped)",
                      legend=dict(font=dict(size=10)))
    return fig


def parallel_coordinates_figure(info: ParamsInfo) -> go.Figure:
    """Hyperparameters as parallel axes, each line a trial coloured by FID (learning rates as log10)."""
    dims = []
    for axis in info.axes:
        if axis.kind == "categorical":
            index = {c: i for i, c in enumerate(axis.categories)}
            dims.append(dict(label=axis.name, values=[index.get(str(v), math.nan) if v is not None else math.nan
                                                        for v in axis.values],
                             tickvals=list(range(len(axis.categories))), ticktext=axis.categories))
        elif axis.kind == "log":
            dims.append(dict(label=f"log10 {axis.name}",
                             values=[math.log10(v) if v is not None else math.nan for v in axis.values]))
        else:
            dims.append(dict(label=axis.name, values=[v if v is not None else math.nan for v in axis.values]))
    dims.append(dict(label="FID", values=info.fids))
    fig = go.Figure(go.Parcoords(
        dimensions=dims,
        line=dict(color=info.fids, colorscale="Viridis_r", showscale=True, colorbar=dict(title="FID")),
    ))
    fig.update_layout(template=TEMPLATE, height=420, title="Hyperparameters, coloured by FID (low FID = yellow; collapsed trials left out)",
                      margin=dict(l=80, r=60, t=80, b=40))
    return fig


def param_views_figure(info: ParamsInfo) -> go.Figure:
    """FID against each hyperparameter on its own axis: learning rates on log axes."""
    n = len(info.axes)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[a.name for a in info.axes],
                        horizontal_spacing=0.08, vertical_spacing=0.18)
    for i, axis in enumerate(info.axes):
        row, col = i // cols + 1, i % cols + 1
        for group in (RANKED, COLLAPSED, NOT_LEARNED):
            idx = [j for j, g in enumerate(info.groups) if g == group and axis.values[j] is not None]
            if not idx:
                continue
            xs = [str(axis.values[j]) if axis.kind == "categorical" else axis.values[j] for j in idx]
            fig.add_trace(go.Scatter(
                x=xs, y=[info.fids[j] for j in idx], mode="markers", name=group, legendgroup=group,
                showlegend=i == 0, text=[info.trial_ids[j] for j in idx],
                marker=dict(color=GROUP_COLOURS[group], size=8, symbol="circle" if group == RANKED else "x"),
                hovertemplate="%{text}<br>" + axis.name + " %{x}<br>FID %{y:.2f}<extra></extra>",
            ), row=row, col=col)
        if axis.kind == "log":  # decades only, as powers of ten: "100μ" reads badly for a learning rate
            fig.update_xaxes(type="log", dtick=1, exponentformat="power", row=row, col=col)
        elif axis.kind == "categorical":
            fig.update_xaxes(type="category", categoryorder="array", categoryarray=axis.categories, row=row, col=col)
        fig.update_yaxes(title_text="FID" if col == 1 else None, row=row, col=col)
    fig.update_layout(template=TEMPLATE, height=300 * rows + 80, title="FID against each hyperparameter")
    return fig


def confirmation_figure(confirmed: Confirmation) -> go.Figure:
    """Each confirmed config's FID with every new seed (dots), its mean and std (bar), and its FID
    in the search (a hollow diamond)."""
    fig = go.Figure()
    labels = [f"{c.trial_id} (baseline)" if c.is_baseline else c.trial_id for c in confirmed.configs]
    for label, c in zip(labels, confirmed.configs):
        colour = BEST_COLOUR if confirmed.best and c.trial_id == confirmed.best.trial_id else (
            BASELINE_COLOUR if c.is_baseline else GROUP_COLOURS[RANKED])
        fig.add_trace(go.Scatter(x=[label] * len(c.runs), y=[r.fid for r in c.runs], mode="markers", showlegend=False,
                                 marker=dict(color=colour, size=9), text=[f"seed {r.seed}" for r in c.runs],
                                 hovertemplate="%{text}: FID %{y:.2f}<extra></extra>"))
        if c.mean is not None:
            fig.add_trace(go.Bar(x=[label], y=[c.mean], marker_color=colour, opacity=0.3, showlegend=False,
                                 error_y=dict(type="data", array=[c.std or 0.0], visible=True),
                                 hovertemplate=f"mean %{{y:.2f}} ± {c.std or 0.0:.2f}<extra></extra>"))
        if c.search_fid is not None:
            fig.add_trace(go.Scatter(x=[label], y=[c.search_fid], mode="markers", showlegend=False,
                                     marker=dict(symbol="diamond-open", size=12, color=colour),
                                     hovertemplate="in the search: FID %{y:.2f}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, height=380, yaxis_title="FID (lower is better)",
                      title="Confirmation: FID with each new seed (dots), mean ± std (bars), search FID (diamonds)")
    return fig


def importance_figure(info: ImportanceInfo) -> go.Figure:
    names = list(info.importances)[::-1]  # largest on top
    fig = go.Figure(go.Bar(x=[info.importances[n] for n in names], y=names, orientation="h",
                           marker_color="#1f77b4", hovertemplate="%{y}: %{x:.2f}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, height=120 + 40 * len(names), xaxis_title="share of FID variance (fANOVA)",
                      title="Which hyperparameters mattered", margin=dict(l=140))
    return fig


def diagnostics_figure(info: DiagnosticsInfo) -> go.Figure:
    """Precision vs recall and density vs coverage for every trial; class coverage of the top trials."""
    cols = 3 if info.has_labels else 2
    titles = ["precision vs recall", "density vs coverage"] + (["class coverage (top trials)"] if info.has_labels else [])
    fig = make_subplots(rows=1, cols=cols, subplot_titles=titles, horizontal_spacing=0.09)
    for group in (RANKED, COLLAPSED, NOT_LEARNED, DIVERGED):
        pts = [p for p in info.points if p.group == group]
        if not pts:
            continue
        common = dict(mode="markers", name=group, legendgroup=group, text=[p.trial_id for p in pts],
                      marker=dict(color=GROUP_COLOURS[group], size=9, symbol="circle" if group == RANKED else "x"))
        fig.add_trace(go.Scatter(x=[p.recall for p in pts], y=[p.precision for p in pts],
                                 hovertemplate="%{text}<br>recall %{x:.2f}<br>precision %{y:.2f}<extra></extra>",
                                 **common), row=1, col=1)
        fig.add_trace(go.Scatter(x=[p.coverage for p in pts], y=[p.density for p in pts], showlegend=False,
                                 hovertemplate="%{text}<br>coverage %{x:.2f}<br>density %{y:.2f}<extra></extra>",
                                 **common), row=1, col=2)
    if info.has_labels:
        fig.add_trace(go.Bar(x=[label for label, _ in info.class_coverage], y=[v for _, v in info.class_coverage],
                             marker_color="#9467bd", showlegend=False,
                             hovertemplate="%{x}<br>class coverage %{y:.2f}<extra></extra>"), row=1, col=3)
        fig.update_yaxes(range=[0, 1.05], row=1, col=3)
    fig.update_xaxes(title_text="recall", row=1, col=1)
    fig.update_yaxes(title_text="precision", row=1, col=1)
    fig.update_xaxes(title_text="coverage", row=1, col=2)
    fig.update_yaxes(title_text="density", row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=420, title="Mode-collapse diagnostics (last evaluation)")
    return fig


def fid_distributions_figure(series: list[tuple[str, list[float]]], comparable: bool) -> go.Figure:
    """Last FIDs of the ranked trials, one box per experiment (for reports.compare)."""
    fig = go.Figure()
    for label, fids in series:
        fig.add_trace(go.Box(y=fids, name=label, boxpoints="all", jitter=0.4, pointpos=0,
                             hovertemplate="FID %{y:.2f}<extra>" + label + "</extra>"))
    title = "FID of the ranked trials"
    if not comparable:
        title += " (NOT comparable: the experiments measure FID differently)"
    fig.update_layout(template=TEMPLATE, height=420, yaxis_title="FID (lower is better)", title=title)
    return fig


def _last_finite(steps: list[int], fids: list[float | None]) -> tuple[int, float] | None:
    for s, f in zip(reversed(steps), reversed(fids)):
        if f is not None:
            return s, f
    return None


def schedule_figure(info: ScheduleInfo) -> go.Figure:
    """The winner's values against steps: the learning rates (log axis) above, the other values below."""
    rates = [k for k in info.values if k.startswith("lr_")]
    others = [k for k in info.values if k not in rates]
    fig = make_subplots(rows=2 if others else 1, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for row, names in ((1, rates), (2, others)):
        for name in names:
            fig.add_trace(go.Scatter(x=info.steps, y=info.values[name], mode="lines+markers", name=name,
                                     line=dict(shape="hv"), hovertemplate=f"{name} %{{y:.3g}} from step %{{x}}"
                                                                          "<extra></extra>"), row=row, col=1)
    fig.update_yaxes(type="log", title_text="learning rate", row=1, col=1)
    fig.update_xaxes(title_text="generator step", row=2 if others else 1, col=1)
    fig.update_layout(template=TEMPLATE, height=420, title=f"The winner's schedule ({info.trial_id})")
    return fig


def member_curves_figure(info: LineageInfo) -> go.Figure:
    """Each member's FID against steps (log axis); a cross where it had gone on from another member."""
    fig = go.Figure()
    for c in info.curves:
        colour = BEST_COLOUR if c.is_best else BASELINE_COLOUR if c.is_control else GROUP_COLOURS[RANKED]
        tag = " (best)" if c.is_best else " (control)" if c.is_control else ""
        fig.add_trace(go.Scatter(x=c.steps, y=c.fids, mode="lines+markers", name=f"{c.trial_id}{tag}",
                                 legendgroup=c.trial_id, line=dict(color=colour, width=3 if c.is_best else 1.5),
                                 hovertemplate=f"{c.trial_id}<br>step %{{x}}<br>FID %{{y:.2f}}<extra></extra>"))
        if c.exploits:
            fig.add_trace(go.Scatter(x=[s for s, _, _ in c.exploits], y=[f for _, f, _ in c.exploits], mode="markers",
                                     legendgroup=c.trial_id, showlegend=False, text=[t for _, _, t in c.exploits],
                                     marker=dict(symbol="x", size=12, color=colour),
                                     hovertemplate=f"{c.trial_id}: %{{text}}<extra></extra>"))
    fig.update_layout(template=TEMPLATE, height=440, xaxis_title="generator step", yaxis_type="log",
                      yaxis_title="FID (log; lower is better)",
                      title="Members' FID (crosses: the first evaluation after going on from another member)")
    return fig
