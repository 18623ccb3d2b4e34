"""The one place where the Dagster Definitions of mev_assets are assembled."""

from __future__ import annotations

from dagster import Definitions
from dagster_duckdb_polars import DuckDBPolarsIOManager

from mev_assets.assets.transactions import WAREHOUSE, WINDOW_ASSETS
from mev_assets.jobs import mempool_window_job
from mev_assets.resources.landing_zone import LandingZoneResource
from mev_assets.sensors.mempool_window_sensor import build_mempool_window_sensor
from mev_assets.settings import Settings


def build_definitions(settings: Settings) -> Definitions:
    settings.mev_home.mkdir(parents=True, exist_ok=True)
    return Definitions(
        assets=WINDOW_ASSETS,
        jobs=[mempool_window_job],
        sensors=[build_mempool_window_sensor(settings.sensor_interval_seconds, settings.sensor_lookback_hours)],
        resources={
            "landing_zone": LandingZoneResource(
                root=str(settings.landing_dir),
                window_seconds=settings.window_seconds,
                grace_seconds=settings.grace_seconds,
            ),
            WAREHOUSE: DuckDBPolarsIOManager(database=str(settings.duckdb_path), schema="mev"),
        },
    )


defs = build_definitions(Settings.from_env())
