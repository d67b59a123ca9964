"""Render: infos and the ranking -> one self-contained HTML page (plotly.js inlined once).

The page needs no network: plotly.js sits in <head>, sample grids are base64 PNGs, and the
CSS is inline. Tables are plain HTML, so the leaderboard reads even with JavaScript off.
"""

from __future__ import annotations

import base64
from html import escape
from typing import Any, Iterable, Optional

import plotly.graph_objects as go
import plotly.offline

from reports.lineage_info import LineageInfo
from reports.plot_info import (HeaderInfo, ImportanceInfo, ReuseInfo, SampleGridsInfo, format_duration,
                               format_timestamp)
from dcgan import keys
from experiment.confirmation import Confirmation
from experiment import schema
from experiment.ranking import COLLAPSED, DIVERGED, NOT_LEARNED, Ranking

PLOT_CONFIG = {"displaylogo": False, "responsive": True}
# Short column heads; any other diagnostic shows under its key.
DIAGNOSTIC_LABELS = {keys.CLASS_COVERAGE: "class cov.", keys.CLASS_KL: "class KL", keys.MODES_KL: "modes KL",
                     keys.DUPLICATE_RATE: "dup. rate", keys.MEMORIZATION: "memoriz."}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; background: #fafafa; }
main { max-width: 1400px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { margin: 8px 0 4px; font-size: 26px; } h2 { margin-top: 36px; border-bottom: 2px solid #ddd; padding-bottom: 4px; }
.sub { color: #666; margin: 0 0 12px; }
.banner { background: #fff3cd; border: 1px solid #e0c36c; padding: 8px 12px; border-radius: 4px; margin: 8px 0; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: 8px 24px;
         background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 12px 16px; }
.facts div b { display: block; color: #666; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.best { background: #e8f5e9; border: 1px solid #9ccc9f; border-radius: 6px; padding: 10px 14px; margin: 12px 0;
        font-size: 17px; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 7px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; position: sticky; top: 0; } td.l, th.l { text-align: left; }
.scroll { overflow-x: auto; max-height: 720px; border: 1px solid #ddd; }
tr.baseline td { background: #fff8d6; font-weight: 600; }
tr.best td { background: #e8f5e9; font-weight: 600; }
tr.collapsed td { background: #fff0e0; color: #7a4a00; }
tr.diverged td { background: #fbeaea; color: #8a2020; }
tr.not-learned td { background: #f0f0f0; color: #555; }
.mark { display: inline-block; padding: 0 6px; margin: 0 2px; border-radius: 9px; font-size: 11px; font-weight: 600;
        background: #e0e0e0; color: #333; }
.mark.collapsed { background: #ff7f0e; color: #fff; } .mark.diverged { background: #d62728; color: #fff; }
.mark.baseline { background: #333; color: #fff; } .mark.best { background: #2ca02c; color: #fff; }
.mark.partial-collapse { background: #ffd08a; } .mark.never-learned { background: #7f7f7f; color: #fff; }
.grids { display: flex; flex-wrap: wrap; gap: 16px; }
.grids figure { margin: 0; background: #fff; border: 1px solid #ddd; padding: 8px; border-radius: 6px; }
.grids figure.baseline { border: 3px solid #333; }
.grids img { width: 240px; height: 240px; image-rendering: pixelated; display: block; }
.grids figcaption { font-size: 13px; margin-top: 4px; max-width: 240px; }
.note { color: #555; font-style: italic; }
pre { background: #272822; color: #f8f8f2; padding: 10px 14px; border-radius: 4px; overflow-x: auto; }
nav a { margin-right: 12px; font-size: 14px; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; } .side > div { min-width: 0; }
"""


def page(title: str, body: Iterable[str]) -> str:
    """A whole HTML document with plotly.js inlined once in <head>."""
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>", f"<style>{CSS}</style>",
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>',
        "</head><body><main>", *body, "</main></body></html>",
    ])


def figure_div(fig: go.Figure, div_id: str) -> str:
    # plotly.js is already in <head>, so each figure is only its div and a call to newPlot.
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG)


def facts_html(info: HeaderInfo, ranking: Ranking) -> str:
    """The experiment's facts: data, how FID was measured, trials, time, versions."""
    protocol, source = ranking.protocol, ranking.protocol_source
    counts = info.status_counts
    done = ", ".join(f"{counts.get(k, 0)} {label}" for k, label in
                     ((schema.COMPLETED, "completed"), (schema.STOPPED, "stopped early"), (schema.DIVERGED, "diverged"),
                      (schema.RUNNING, "running")))
    others = ", ".join(f"{v} {k}" for k, v in counts.items() if k in (schema.PENDING, schema.FAILED) and v)
    wall = format_duration(info.wall_time_s) if info.finished else \
        f"still running (started {format_timestamp(info.started_at)})"
    facts = [
        ("dataset", f"{info.dataset} ({info.image_size}×{info.image_size})"),
        ("FIDs measured with", f"{protocol.extractor or 'extractor not recorded'}, {protocol.n} samples, "
                               f"reference {protocol.reference or 'not recorded'}"
                               + ("" if source == "experiment.json" else f" (from {source})")),
        ("search space", f"{info.space} · scheduler {info.scheduler}"),
        ("every trial", " · ".join(f"{k}={v}" for k, v in info.fixed.items()) or "n/a"),  # as --set spells it
        ("trials", f"{sum(counts.values())} of {info.trials_requested} requested: {done}"
                   + (f" ({others})" if others else "")),
        *([("budget", info.budget)] if info.budget else []),
        ("wall time", wall),
        ("compute", f"{info.gpu_hours:.2f} GPU-hours · {info.cpu_hours:.2f} CPU-hours "
                    f"(trial time {format_duration(info.trial_time_s)})"),
        ("versions", " · ".join(f"{k} {info.versions[k]}" for k in ("ray", "torch", "optuna") if k in info.versions)
         or "n/a"),
    ]
    return '<div class="facts">' + "".join(f"<div><b>{escape(k)}</b>{escape(str(v))}</div>" for k, v in facts) + "</div>"


def header_html(info: HeaderInfo, ranking: Ranking, confirmed: Optional[Confirmation] = None) -> str:
    out = [f"<h1>DCGAN search: {escape(info.name)}</h1>",
           '<p class="sub">Report on the experiment directory; trials ranked by FID (lower is better).</p>']
    if not info.finished:
        out.append(unfinished_banner())
    out += [facts_html(info, ranking), best_html(ranking)]
    if confirmed is not None:
        css = "best" if confirmed.best is not None else "banner"
        out.append(f'<div class="{css}">Confirmed: {escape(confirmed.note)}. best_config.json holds '
                   f"{escape(confirmed.best.trial_id if confirmed.best else 'the search winner')}.</div>")
    return "\n".join(out)


def confirmation_html(confirmed: Confirmation) -> str:
    """One row per confirmed config: its FID in the search, its FID with each new seed, mean ± std."""
    head = (["trial", "role", "FID in the search"] + [f"FID, seed {s}" for s in confirmed.seeds]
            + ["mean", "std", "runs counted"])
    rows = []
    for c in confirmed.configs:
        is_best = confirmed.best is not None and c.trial_id == confirmed.best.trial_id
        role = " ".join(([_mark("confirmed best")] if is_best else []) + ([_mark("baseline")] if c.is_baseline else []))
        by_seed = {r.seed: r for r in c.runs}
        cells = [_l(c.trial_id), f'<td class="l">{role}</td>', _num(c.search_fid)]
        cells += [_num(by_seed[s].fid) + ("" if by_seed[s].counts else f" ({escape(by_seed[s].verdict or by_seed[s].status)})")
                  if s in by_seed else "–" for s in confirmed.seeds]
        cells += [_num(c.mean), _num(c.std), f"{len(c.fids)}/{len(c.runs)}"]
        classes = " ".join(x for x, on in (("best", is_best), ("baseline", c.is_baseline)) if on)
        rows.append(f'<tr class="{classes}" data-trial="{escape(c.trial_id)}">'
                    + "".join(x if x.startswith("<td") else f"<td>{x}</td>" for x in cells) + "</tr>")
    steps = f" for {confirmed.steps} steps" if confirmed.steps else ""
    note = ('<p class="note">Each config trained again' + escape(steps) + " with seeds the search did not use; a run "
            "counts when it reached its last step with a finite FID and a verdict other than collapsed or never "
            "learned. The winner is the lowest mean over the runs of the configs whose every run counts: its one "
            "search run was picked for the lowest FID, so that FID is biased low.</p>")
    return (note + '<table id="confirmation-table"><thead><tr>' + "".join(f"<th>{escape(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "\n".join(rows) + "</tbody></table>")


def unfinished_banner() -> str:
    return ('<div class="banner">This search has not finished: trials below may still change, and some '
            "have no results yet.</div>")


def best_html(ranking: Ranking) -> str:
    best, baseline, gain = ranking.best, ranking.baseline, ranking.gain_over_baseline_pct
    if best is None:
        return f'<div class="banner">No winner yet: {escape(ranking.gain_note)}.</div>'
    if gain is None:
        versus = f'<span class="note">({escape(ranking.gain_note)})</span>'
    elif best.trial_id == baseline.trial_id:
        versus = "<b>the baseline itself is the best trial</b>, and best_config.json holds it"
    else:
        direction = f"{gain:.1f}% lower FID" if gain >= 0 else f"{-gain:.1f}% higher FID"
        versus = (f"<b>{escape(direction)} than the baseline</b> ({escape(baseline.trial_id)}, FID "
                  f"{baseline.fid:.2f})")
    return (f'<div class="best">Best: <b>{escape(best.trial_id)}</b>, FID <b>{best.fid:.2f}</b> at step '
            f"{best.last_eval_step}: {versus}</div>")


def leaderboard_html(ranking: Ranking, table_id: str = "leaderboard") -> str:
    params = ranking.param_names
    diag = [k for k in keys.DIAGNOSTICS if any(r.diagnostics.get(k) is not None for r in ranking.leaderboard)]
    head = (["#", "trial", "marks", "status", "FID (last)", "best FID @ step", "steps"] + params + ["collapse"]
            + [DIAGNOSTIC_LABELS.get(k, k) for k in diag])
    rows = []
    for r in ranking.leaderboard:
        is_best = ranking.best is not None and r.trial_id == ranking.best.trial_id
        classes = " ".join(c for c, on in (("best", is_best), ("baseline", r.is_baseline),
                                           ("collapsed", r.group == COLLAPSED), ("not-learned", r.group == NOT_LEARNED),
                                           ("diverged", r.group == DIVERGED)) if on)
        marks = (['<span class="mark best">best</span>'] if is_best else []) + [_mark(m) for m in r.marks]
        cells = [str(r.position), _l(r.trial_id),
                 '<td class="l" title="' + escape("; ".join(r.notes)) + '">' + " ".join(marks) + "</td>",
                 _l(r.status), _num(r.fid),
                 f"{_num(r.best_fid)} @ {r.best_fid_step}" if r.best_fid is not None else "–",
                 f"{r.steps_reached}/{r.steps_target}" if r.steps_target else str(r.steps_reached)]
        cells += [_param(r.params.get(p)) for p in params]
        cells += [_l(r.collapse or "–")] + [_num(r.diagnostics.get(k)) for k in diag]
        rows.append(f'<tr class="{classes}" data-trial="{escape(r.trial_id)}">'
                    + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells) + "</tr>")
    if not rows:
        return ('<p class="note">No trial has a FID measured the experiment\'s way yet, so nothing is ranked; '
                "the trials are listed below.</p>" + unranked_html(ranking))
    table = (f'<div class="scroll"><table id="{table_id}"><thead><tr>'
             + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr></thead><tbody>"
             + "\n".join(rows) + "</tbody></table></div>")
    legend = ('<p class="note">Sorted by the FID of each trial\'s last evaluation. Collapsed trials (real-looking '
              "samples of few modes) come after every non-collapsed one whatever their FID (a collapsed generator can "
              "score well on a few modes); then the trials that never learned (samples nowhere near the data: a "
              "learning rate too low, or a discriminator that won at once); diverged trials come last. Hover the "
              "marks for why.</p>")
    return legend + table + unranked_html(ranking)


def unranked_html(ranking: Ranking) -> str:
    if not ranking.unranked:
        return ""
    rows = "".join(f"<tr><td class=\"l\">{escape(r.trial_id)}</td><td class=\"l\">{escape(r.status)}</td>"
                   f"<td class=\"l\">{escape(', '.join(f'{k}={_param_text(v)}' for k, v in r.params.items()))}</td>"
                   f"<td class=\"l\">{escape('; '.join(r.notes))}</td></tr>" for r in ranking.unranked)
    return (f"<h3>Not ranked ({len(ranking.unranked)})</h3><p class=\"note\">No FID measured the experiment's way "
            f"({escape(ranking.protocol.describe())}) yet.</p><table class=\"unranked\"><thead><tr>"
            "<th class=\"l\">trial</th><th class=\"l\">status</th><th class=\"l\">params</th><th class=\"l\">why</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def sample_grids_html(info: SampleGridsInfo) -> str:
    if not info.grids:
        return '<p class="note">No sample grids yet.</p>'
    figures = "".join(
        f'<figure class="{"baseline" if g.is_baseline else ""}"><img alt="samples of {escape(g.trial_id)}" '
        f'src="data:image/png;base64,{base64.b64encode(g.png).decode()}">'
        f"<figcaption>{escape(g.title)}<br>step {g.step}</figcaption></figure>" for g in info.grids)
    missing = (f'<p class="note">No grid yet for: {escape(", ".join(info.missing))}</p>' if info.missing else "")
    return f'<div class="grids">{figures}</div>{missing}'


def importance_note_html(info: ImportanceInfo) -> str:
    return f'<p class="note">{escape(info.note)}</p>'


def reuse_html(info: ReuseInfo) -> str:
    if not info.commands:
        return f'<p class="note">{escape(info.note)}</p>'
    winner = info.best_trial_id or info.best_config_trial_id or ""
    return (f"<p>Winner: <b>{escape(winner)}</b>. {escape(info.note)}</p>"
            + "".join(f"<p>{escape(what)}:</p><pre>{escape(command)}</pre>" for what, command in info.commands))


def section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>' + "\n".join(parts) + "</section>"


def _mark(word: str) -> str:
    return f'<span class="mark {escape(word.replace(" ", "-"))}">{escape(word)}</span>'


def _l(text: str) -> str:
    return f'<td class="l">{escape(str(text))}</td>'


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.2e}"


def _param_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if 1e-2 <= abs(value) < 1e4 or value == 0 else f"{value:.2e}"
    return "–" if value is None else str(value)


def _param(value: Any) -> str:
    return f"<td>{escape(_param_text(value))}</td>"


def exploits_html(info: LineageInfo) -> str:
    """Every exploit: which member, at its step, went on from which member's checkpoint, and what changed."""
    if not info.exploits:
        return '<p class="note">No member went on from another one (none fell behind at a perturbation).</p>'
    rows = []
    for r in info.exploits:
        e = r.exploit
        changed = ", ".join(f"{escape(k)} {escape(_param_text(a))} &rarr; {escape(_param_text(b))}"
                            for k, (a, b) in sorted(e.changed.items()))
        rows.append(f"<tr>{_l(r.trial_id)}<td>{e.step}</td>{_l(e.source)}<td>{e.from_step}</td>"
                    f'<td class="l">{changed or "nothing"}</td></tr>')
    return ('<div class="scroll"><table id="exploits"><tr><th class="l">member</th><th>at its step</th>'
            '<th class="l">went on from</th><th>from step</th><th class="l">values changed</th></tr>'
            + "".join(rows) + "</table></div>")
