"""The report in a real browser: headless Chromium opens it over file:// with no network.

A probe is spliced into a copy of the report: it records JavaScript errors from the first
moment and, once the page has loaded, writes them and the count of plots that drew an SVG
or a canvas into a hidden element, which `--dump-dom` hands back.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

from reports import compare

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                                         "(apt-get install -y chromium); CI installs it")

PROBE_HEAD = """<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || e)); });
window.addEventListener('unhandledrejection', function (e) { window.__errors.push('rejection: ' + String(e.reason)); });
</script>"""
PROBE_TAIL = """<script>
window.addEventListener('load', function () { setTimeout(function () {
  var plots = document.querySelectorAll('.plotly-graph-div'), drawn = [];
  plots.forEach(function (d) { if (d.querySelector('svg.main-svg, canvas')) drawn.push(d.id); });
  var out = document.createElement('pre'); out.id = 'probe'; out.style.display = 'none';
  out.textContent = JSON.stringify({errors: window.__errors, plots: plots.length, drawn: drawn,
                                    plotly: typeof Plotly});
  document.body.appendChild(out);
}, 1500); });
</script>"""


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--virtual-time-budget=15000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


class Opened(NamedTuple):
    probe: dict  # what the probe saw: errors, plots, drawn (ids), plotly
    plot_ids: list[str]  # the plot divs the page holds
    screenshot: Path


def _open(page: Path, tmp_path: Path) -> Opened:
    """Open a copy of `page` with the probe spliced in, once: its DOM after load, and a screenshot."""
    text = page.read_text()
    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", PROBE_TAIL + "</body>", 1))
    shot = tmp_path / "page.png"
    result = _chromium("--window-size=1280,2000", f"--screenshot={shot}", "--dump-dom", probed.as_uri(),
                       profile=tmp_path / "profile")
    match = re.search(r'<pre id="probe" style="display: none;">(.*?)</pre>', result.stdout, re.S)
    assert match, f"the probe never ran; chromium said: {result.stderr[-2000:]}"
    probe = json.loads(match.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                       .replace("&amp;", "&"))
    return Opened(probe, re.findall(r'<div id="(fig-[\w-]+)" class="plotly-graph-div"', text), shot)


@pytest.fixture(scope="module")
def opened_report(built_report_path, tmp_path_factory) -> Opened:
    return _open(built_report_path, tmp_path_factory.mktemp("browser"))


def test_every_plot_renders_without_javascript_errors(opened_report):
    probe = opened_report.probe
    assert probe["errors"] == []
    assert probe["plotly"] == "object"
    assert probe["plots"] == len(opened_report.plot_ids) >= 5
    assert sorted(probe["drawn"]) == sorted(opened_report.plot_ids)


def test_screenshot_is_not_blank(opened_report):
    from PIL import Image, ImageStat

    assert opened_report.screenshot.exists()
    image = Image.open(opened_report.screenshot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50
    assert max(ImageStat.Stat(image).stddev) > 10


def test_comparison_renders_without_javascript_errors(experiment_dir, synthetic, tmp_path):
    other = synthetic.write_experiment(tmp_path, synthetic.many_trials(5), name="betas-1", optuna_db=False)
    page = tmp_path / "compare.html"
    assert compare.main([str(experiment_dir), str(other), "-o", str(page)]) == 0
    opened = _open(page, tmp_path)
    assert opened.probe["errors"] == [] and opened.probe["drawn"] == opened.plot_ids == ["fig-fid-distributions"]
