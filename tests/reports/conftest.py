"""The reports' own fixture; the synthetic experiments are in tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def built_report_path(experiment_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default experiment's report, built once per session through the CLI."""
    from reports import build

    out = tmp_path_factory.mktemp("report") / "report.html"
    assert build.main([str(experiment_dir), "-o", str(out)]) == 0
    return out
