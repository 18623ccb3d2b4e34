"""The one place where the Dagster Definitions of mev_assets are assembled."""

from __future__ import annotations

from dagster import Definitions

from mev_assets.assets.transactions import WAREHOUSE, WINDOW_ASSETS
from mev_assets.jobs import mempool_window_job
from mev_assets.resources.warehouse import storage_resources
from mev_assets.sensors.mempool_window_sensor import build_mempool_window_sensor
from mev_assets.settings import Settings


def build_definitions(settings: Settings) -> Definitions:
    settings.mev_home.mkdir(parents=True, exist_ok=True)
    return Definitions(
        assets=WINDOW_ASSETS,
        jobs=[mempool_window_job],
        sensors=[build_mempool_window_sensor(settings.sensor_interval_seconds, settings.sensor_lookback_hours)],
        # landing_zone + WAREHOUSE (+ s3, io_manager) for MEV_STORAGE: see docs/storage.md
        resources=storage_resources(settings, warehouse_key=WAREHOUSE),
    )


defs = build_definitions(Settings.from_env())
