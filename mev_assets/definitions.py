"""The one place where the Dagster Definitions of mev_assets are assembled."""

from __future__ import annotations

import warnings

from dagster import AssetSelection, Definitions, PreviewWarning, in_process_executor

from mev_assets.alerts import build_alerts
from mev_assets.assets import PER_WINDOW_ASSETS
from mev_assets.assets.dbt import DBT_ASSETS, build_dbt_resource
from mev_assets.assets.transactions import WAREHOUSE
from mev_assets.checks import build_asset_checks, freshness_policy
from mev_assets.jobs import daily_rollups_job, derived_windows_job, mempool_window_job
from mev_assets.ops_jobs import replay_job, retention_job, retention_schedule
from mev_assets.resources.clickhouse import build_clickhouse_resource
from mev_assets.resources.registry import ProtocolRegistryResource
from mev_assets.resources.warehouse import storage_resources
from mev_assets.schedules import daily_rollups_schedule, previous_day_backfill_schedule
from mev_assets.sensors.mempool_window_sensor import build_mempool_window_sensor
from mev_assets.settings import Settings


def build_definitions(settings: Settings) -> Definitions:
    settings.mev_home.mkdir(parents=True, exist_ok=True)
    alert_checks, alert_sensors, alert_jobs = build_alerts(settings)
    defs = Definitions(
        assets=[*PER_WINDOW_ASSETS, *DBT_ASSETS],
        asset_checks=[*build_asset_checks(settings.chain_id, settings.window_seconds), *alert_checks],
        jobs=[mempool_window_job, derived_windows_job, retention_job, replay_job, *alert_jobs, daily_rollups_job],
        schedules=[retention_schedule, previous_day_backfill_schedule, daily_rollups_schedule],
        sensors=[build_mempool_window_sensor(settings.sensor_interval_seconds, settings.sensor_lookback_hours), *alert_sensors],
        # The steps of a run take turns on the single DuckDB writer anyway (pool duckdb_writer), so
        # they run in the run's process: no process start per step, no step waiting on a sibling's slot.
        executor=in_process_executor,
        resources={
            # landing_zone + WAREHOUSE (+ s3, io_manager) for MEV_STORAGE: see docs/storage.md
            **storage_resources(settings, warehouse_key=WAREHOUSE),
            "protocol_registry": ProtocolRegistryResource(path=str(settings.protocol_registry)),
            "clickhouse": build_clickhouse_resource(settings),
            # dbt over DuckDB (local) or over the lake through the dbt-duckdb plugin (s3): docs/dbt.md
            "dbt": build_dbt_resource(settings),
        },
    )
    # freshness: the newest window at most three widths old (the width is a setting, so it is
    # applied here rather than in the @asset decorators)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)  # map_resolved_asset_specs is a preview API
        return defs.map_resolved_asset_specs(
            func=lambda spec: spec.replace_attributes(freshness_policy=freshness_policy(settings.window_seconds)),
            selection=AssetSelection.assets(*PER_WINDOW_ASSETS),
        )


defs = build_definitions(Settings.from_env())
