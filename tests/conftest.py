"""Shared fixtures: isolated settings per test (own MEV_HOME and DAGSTER_HOME)."""

from __future__ import annotations

import pytest

from mev_assets.settings import Settings


@pytest.fixture
def settings_factory(tmp_path, monkeypatch):
    """Settings rooted in the test's temp dir; keyword arguments override environment values."""

    def make(**env: str) -> Settings:
        base = {"MEV_HOME": str(tmp_path / "mev_home"), "MEV_METRICS_PORT": "0"}
        base.update({k: str(v) for k, v in env.items()})
        for key in (
            "DAGSTER_HOME", "MEV_SOURCES", "MEV_CHAIN_ID", "MEV_WINDOW_SECONDS", "MEV_COLLECTOR_ID",
            "MEV_CLICKHOUSE_URL", "MEV_RETENTION_DAYS", "MEV_STORAGE", "MEV_PROTOCOL_REGISTRY",
        ):
            monkeypatch.delenv(key, raising=False)
        for key, value in base.items():
            monkeypatch.setenv(key, value)
        return Settings.from_env()

    return make
