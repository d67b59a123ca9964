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


@pytest.fixture(scope="module")
def report(built_report_path) -> Path:
    return built_report_path


def _probe(page: Path, tmp_path: Path) -> tuple[dict, list[str]]:
    """Open a copy of `page` with the probe spliced in; (what the probe saw, the plot div ids in the page)."""
    text = page.read_text()
    probed = tmp_path / "probed.html"
    probed.write_text(text.replace("<head>", "<head>" + PROBE_HEAD, 1).replace("</body>", PROBE_TAIL + "</body>", 1))
    result = _chromium("--dump-dom", probed.as_uri(), profile=tmp_path / "profile")
    match = re.search(r'<pre id="probe" style="display: none;">(.*?)</pre>', result.stdout, re.S)
    assert match, f"the probe never ran; chromium said: {result.stderr[-2000:]}"
    probe = json.loads(match.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                       .replace("&amp;", "&"))
    return probe, re.findall(r'<div id="(fig-[\w-]+)" class="plotly-graph-div"', text)


def test_every_plot_renders_without_javascript_errors(report, tmp_path):
    probe, expected = _probe(report, tmp_path)
    assert probe["errors"] == []
    assert probe["plotly"] == "object"
    assert probe["plots"] == len(expected) >= 5
    assert sorted(probe["drawn"]) == sorted(expected)


def test_comparison_renders_without_javascript_errors(experiment_dir, synthetic, tmp_path):
    other = synthetic.write_experiment(tmp_path, synthetic.many_trials(5), name="betas-1", optuna_db=False)
    page = tmp_path / "compare.html"
    assert compare.main([str(experiment_dir), str(other), "-o", str(page)]) == 0
    probe, expected = _probe(page, tmp_path)
    assert probe["errors"] == [] and probe["drawn"] == expected == ["fig-fid-distributions"]


def test_screenshot_is_not_blank(report, tmp_path):
    from PIL import Image, ImageStat

    shot = tmp_path / "report.png"
    result = _chromium("--window-size=1280,2000", f"--screenshot={shot}", report.as_uri(), profile=tmp_path / "p")
    assert shot.exists(), result.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is None or len(colours) > 50
    assert max(ImageStat.Stat(image).stddev) > 10
