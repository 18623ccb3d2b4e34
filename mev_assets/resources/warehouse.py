"""The warehouse I/O manager of every per-window table (resource key ``warehouse_io_manager``).

* local mode (:class:`LocalWarehouseIOManager`): the table in DuckDB through
  dagster-duckdb-polars (``partition_expr`` on ``"window"``: re-materialising a window replaces
  its rows) PLUS the window's file in the Parquet lake under ``$MEV_HOME/lake``. Inputs load
  from DuckDB.
* s3 mode (:class:`S3LakeIOManager`): the lake on S3 *is* the I/O - outputs are written as the
  window's Parquet file, inputs load the partitions' files. The S3 connection comes from the
  dagster-aws ``S3Resource`` (endpoint, region, optional explicit keys or profile).

Both write ``lake/<table>/date=YYYY-MM-DD/window=<key>.parquet`` (:mod:`mev_assets.core.lake`),
one file per partition key of the run: a run over several windows (a multi-partition backfill)
splits its frame by the partition column, and a window without rows still gets its (empty)
file, so re-materialising always replaces, never leaves a stale copy behind.
"""

# no `from __future__ import annotations`: Dagster resolves ResourceDependency[...] at runtime

from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow.fs as pafs
from dagster import (
    ConfigurableIOManager,
    InputContext,
    IOManager,
    MetadataValue,
    OutputContext,
    ResourceDependency,
)
from dagster_aws.s3 import S3PickleIOManager, S3Resource
from dagster_duckdb_polars import DuckDBPolarsIOManager
from pydantic import PrivateAttr

from mev_assets.core.lake import LAKE, Lake, LakeFile, s3_filesystem
from mev_assets.resources.landing_zone import build_landing_zone_resource

DUCKDB_SCHEMA = "mev"


class WarehouseError(ValueError):
    """An output or input the warehouse cannot store or load as a per-window table."""


# ---- shared by both modes ---------------------------------------------------------------
def _table(context: InputContext | OutputContext) -> str:
    return context.asset_key.path[-1]


def _partition_column(context: OutputContext, table: str) -> str:
    expr = str((context.definition_metadata or {}).get("partition_expr") or "").strip()
    column = expr[1:-1] if len(expr) > 1 and expr[0] == expr[-1] == '"' else expr
    if not column or not column.replace("_", "").isalnum():
        raise WarehouseError(
            f"{table}: the warehouse needs metadata partition_expr naming the partition column "
            f"(e.g. '\"window\"'), got {expr!r}"
        )
    return column


def split_by_window(context: OutputContext, frame: Any) -> dict[str, pl.DataFrame]:
    """The output's rows per partition key of the run; rejects rows outside those keys."""
    table = _table(context)
    if not isinstance(frame, pl.DataFrame):
        raise WarehouseError(f"{table}: the warehouse stores polars DataFrames, got {type(frame).__name__}")
    if not context.has_asset_partitions:
        raise WarehouseError(f"{table}: the warehouse stores per-window tables; this asset has no partitions")
    keys = list(context.asset_partition_keys)
    column = _partition_column(context, table)
    if column not in frame.columns:
        raise WarehouseError(f"{table}: the output has no partition column {column!r} (columns: {frame.columns})")
    stray = frame.filter(pl.col(column).is_null() | ~pl.col(column).is_in(keys))
    if stray.height:
        found = sorted({str(v) for v in stray.get_column(column).unique().head(5).to_list()})
        raise WarehouseError(
            f"{table}: {stray.height} row(s) have {column} outside the run's partition(s) {keys[:3]}"
            f"{'...' if len(keys) > 3 else ''}: {found}; nothing was written"
        )
    if len(keys) == 1:
        return {keys[0]: frame}
    parts = frame.partition_by(column, as_dict=True, maintain_order=True)
    by_key = {k[0] if isinstance(k, tuple) else k: part for k, part in parts.items()}
    return {key: by_key.get(key, frame.clear()) for key in keys}


def _lake_metadata(files: list[LakeFile]) -> dict[str, Any]:
    if len(files) == 1:
        return {"lake_file": MetadataValue.text(files[0].url), "lake_bytes": files[0].bytes}
    return {
        "lake_files": MetadataValue.json([f.url for f in files]),
        "lake_bytes": sum(f.bytes for f in files),
    }


# ---- local: DuckDB + lake ---------------------------------------------------------------
class _DuckDBAndLake(IOManager):
    def __init__(self, duckdb: IOManager, lake: Lake, database: str, schema: str):
        self.duckdb = duckdb
        self.lake = lake
        self.database = database
        self.schema = schema

    def _ensure_table(self, context: OutputContext, obj: pl.DataFrame) -> None:
        """Create the (empty) table when a window has no rows: dagster-duckdb-polars skips empty
        frames, and a downstream asset of an empty first window would find no table to read."""
        empty = obj.to_arrow()  # noqa: F841 - DuckDB reads the local by name
        with duckdb.connect(self.database) as con:
            con.execute(f"create schema if not exists {self.schema}")
            con.execute(f"create table if not exists {self.schema}.{_table(context)} as select * from empty")

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if not context.has_asset_partitions:
            self.duckdb.handle_output(context, obj)  # an unpartitioned table: DuckDB only
            return
        parts = split_by_window(context, obj)  # validate before anything is written
        if isinstance(obj, pl.DataFrame) and obj.is_empty():
            self._ensure_table(context, obj)
        self.duckdb.handle_output(context, obj)
        files = [self.lake.write_window(_table(context), key, frame) for key, frame in parts.items()]
        context.add_output_metadata(_lake_metadata(files))

    def load_input(self, context: InputContext) -> Any:
        return self.duckdb.load_input(context)


class LocalWarehouseIOManager(DuckDBPolarsIOManager):
    """DuckDB (dagster-duckdb-polars) plus the window's Parquet file under ``lake_root``."""

    lake_root: str

    def create_io_manager(self, context) -> IOManager:
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)  # DuckDB does not create it
        return _DuckDBAndLake(
            super().create_io_manager(context),
            Lake(pafs.LocalFileSystem(), self.lake_root),
            self.database,
            self.schema_ or "public",
        )


# ---- s3: the lake is the I/O ------------------------------------------------------------
def filesystem_for(s3: S3Resource) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem with the S3Resource's endpoint, region and credentials."""
    access, secret, token = s3.aws_access_key_id, s3.aws_secret_access_key, s3.aws_session_token
    if not (access and secret) and s3.profile_name:
        import boto3

        creds = boto3.session.Session(profile_name=s3.profile_name).get_credentials()
        if creds is not None:
            frozen = creds.get_frozen_credentials()
            access, secret, token = frozen.access_key, frozen.secret_key, frozen.token
    endpoint = s3.endpoint_url or ""
    if endpoint and "://" not in endpoint:
        endpoint = f"{'https' if s3.use_ssl else 'http'}://{endpoint}"
    return s3_filesystem(
        endpoint, s3.region_name or "us-east-1",
        access_key=access, secret_key=secret, session_token=token, anonymous=s3.use_unsigned_session,
    )


class S3LakeIOManager(ConfigurableIOManager):
    """Per-window tables as Parquet in ``s3://<s3_bucket>/<s3_prefix>/lake/``."""

    s3: ResourceDependency[S3Resource]
    s3_bucket: str
    s3_prefix: str = ""

    _lake: Lake | None = PrivateAttr(default=None)

    @property
    def lake(self) -> Lake:
        if self._lake is None:
            base = "/".join(p for p in (self.s3_bucket, self.s3_prefix.strip("/"), LAKE) if p)
            self._lake = Lake(filesystem_for(self.s3), base)
        return self._lake

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        parts = split_by_window(context, obj)
        files = [self.lake.write_window(_table(context), key, frame) for key, frame in parts.items()]
        context.add_output_metadata({"row_count": sum(f.rows for f in files), **_lake_metadata(files)})

    def load_input(self, context: InputContext) -> pl.DataFrame:
        table = _table(context)
        if not context.has_asset_partitions:
            raise WarehouseError(f"{table}: the warehouse stores per-window tables; load it for a window")
        keys = list(context.asset_partition_keys)
        if not keys:
            return pl.DataFrame()
        columns = (context.definition_metadata or {}).get("columns")
        return self.lake.read_windows(table, keys, list(columns) if columns else None)


# ---- the resources of a storage mode ----------------------------------------------------
def build_s3_resource(settings) -> S3Resource:
    """dagster-aws S3 resource from the settings (credentials: the standard AWS chain)."""
    return S3Resource(endpoint_url=settings.s3_endpoint_url or None, region_name=settings.s3_region)


def build_warehouse_io_manager(settings, s3: S3Resource | None = None):
    if settings.storage == "s3":
        return S3LakeIOManager(s3=s3 or build_s3_resource(settings), s3_bucket=settings.s3_bucket, s3_prefix=settings.s3_prefix)
    return LocalWarehouseIOManager(database=str(settings.duckdb_path), schema=DUCKDB_SCHEMA, lake_root=str(settings.lake_dir))


def storage_resources(settings, warehouse_key: str) -> dict[str, Any]:
    """Every storage resource of the Definitions for ``settings.storage``.

    local: ``landing_zone`` (directory) and ``<warehouse_key>`` (DuckDB + lake).
    s3: ``s3`` (dagster-aws), ``landing_zone`` and ``<warehouse_key>`` on the bucket, and
    the default ``io_manager`` as pickles under ``<prefix>/dagster/`` so that no asset output
    lands on local disk.
    """
    if settings.storage != "s3":
        return {
            "landing_zone": build_landing_zone_resource(settings),
            warehouse_key: build_warehouse_io_manager(settings),
        }
    s3 = build_s3_resource(settings)
    return {
        "s3": s3,
        "landing_zone": build_landing_zone_resource(settings, s3),
        warehouse_key: build_warehouse_io_manager(settings, s3),
        "io_manager": S3PickleIOManager(
            s3_resource=s3, s3_bucket=settings.s3_bucket, s3_prefix="/".join(p for p in (settings.s3_prefix, "dagster") if p)
        ),
    }
