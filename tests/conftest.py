"""Shared fixtures. `metrics_cache`: one DCGAN_CACHE folder for the whole session, so that the
metrics tests train each classifier once instead of once per test."""

import pytest


@pytest.fixture(scope="session")
def metrics_cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("dcgan-cache")


@pytest.fixture
def metrics_cache(metrics_cache_dir, monkeypatch):
    monkeypatch.setenv("DCGAN_CACHE", str(metrics_cache_dir))
    monkeypatch.setenv("DCGAN_NO_DOWNLOAD", "1")
    return metrics_cache_dir
