"""A dbt-duckdb plugin: the dbt sources read the per-window tables from the Parquet lake.

Used in S3 storage mode (profiles.yml, target ``s3``), where the per-window tables live only in
the lake on S3 and DuckDB's httpfs extension is not available. dbt-duckdb calls :meth:`Plugin.load`
when a model refers to a source whose ``meta`` names this plugin (``models/sources_lake.yml``),
and stores the returned Arrow table as the source table (schema ``mev_lake``) of the run's local
DuckDB file.

Only the days the run rebuilds are read: the dbt project records the first rebuilt date before
any model runs (``on-run-start``, ``mev_daily.rollup_rebuild``, NULL for a full build), and the
lake lists and reads only the window files of that day and later, and only the columns the
staging models select (source ``meta.lake_columns``). Where the lake is comes from the same
environment as everything else (``MEV_STORAGE``, ``MEV_S3_*``; credentials from the AWS chain).

Thin adapter: the listing and reading is :mod:`mev_assets.core.lake`.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from dbt.adapters.duckdb.plugins import BasePlugin
from dbt.adapters.duckdb.utils import SourceConfig

from mev_assets.core.clickhouse import TABLES
from mev_assets.core.lake import open_lake
from mev_assets.core.rollups import rebuilt_since
from mev_assets.settings import Settings


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self._connection = None

    def configure_connection(self, conn) -> None:
        # the run's DuckDB connection: where on-run-start recorded the first rebuilt date
        self._connection = conn

    def load(self, source_config: SourceConfig):
        table = source_config.identifier
        if table not in TABLES:
            raise ValueError(f"the lake plugin reads the per-window tables ({', '.join(TABLES)}), not {table!r}")
        since = rebuilt_since(self._connection.cursor()) if self._connection is not None else None
        lake = open_lake(Settings.from_env())
        schema = pl.DataFrame(schema=TABLES[table].schema).to_arrow().schema
        return lake.read_files(lake.window_files_since(table, since), schema, source_config.get("lake_columns"))
