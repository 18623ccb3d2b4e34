"""ClickHouse as a Dagster resource: the server named by ``MEV_CLICKHOUSE_URL``, or chdb over the lake.

A thin adapter over :mod:`mev_assets.core.clickhouse`. With a server, :meth:`load_window` puts a
materialised window into the server tables (idempotently; the DDL is applied on first use);
without one it does nothing, because the embedded backend reads the lake files in place.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Optional

import polars as pl
from dagster import ConfigurableResource, EnvVar
from pydantic import PrivateAttr

from mev_assets.core.clickhouse import (
    ClickHouseError,
    EmbeddedClickHouse,
    LakeSource,
    MigrationReport,
    Warehouse,
    server_client,
)
from mev_assets.settings import Settings


class ClickHouseResource(ConfigurableResource):
    """ClickHouse SQL over the pipeline's tables, and window loads into a ClickHouse server."""

    # http(s)://[user[:password]@]host[:port][/database]; None = embedded (chdb over the lake).
    # Set it with EnvVar("MEV_CLICKHOUSE_URL") (see build_clickhouse_resource): the URL may hold a
    # password, and an EnvVar is resolved at run time, never stored in run configuration.
    url: Optional[str] = None
    retention_days: int = 30
    # where the lake is (the values of Settings; only the embedded backend reads them)
    lake_dir: str = ""
    storage: str = "local"
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"

    _migrated: bool = PrivateAttr(default=False)

    @property
    def is_server(self) -> bool:
        return bool(self.url)

    def lake(self) -> LakeSource:
        return LakeSource.from_settings(
            SimpleNamespace(
                lake_dir=self.lake_dir, storage=self.storage, s3_bucket=self.s3_bucket, s3_prefix=self.s3_prefix,
                s3_endpoint_url=self.s3_endpoint_url, s3_region=self.s3_region,
            )
        )

    def warehouse(self) -> Warehouse:
        """The server's tables (the client is not bound to the database, which may not exist yet)."""
        if not self.url:
            raise ClickHouseError("no ClickHouse server configured (MEV_CLICKHOUSE_URL is not set)")
        client, database = server_client(self.url, use_database=False)
        return Warehouse(client, database=database, retention_days=self.retention_days)

    def migrate(self) -> Optional[MigrationReport]:
        """Apply pending DDL and the retention TTL on the server; None when embedded."""
        if not self.is_server:
            return None
        report = self.warehouse().migrate()
        self._migrated = True
        return report

    def load_window(self, table: str, window: str, frame: pl.DataFrame) -> Optional[int]:
        """Replace ``window``'s rows of ``table`` on the server (rows loaded); None when embedded."""
        if not self.is_server:
            return None
        if not self._migrated:
            self.migrate()
        return self.warehouse().load_window(table, window, frame)

    def load_day(self, table: str, day: str, frame: pl.DataFrame) -> Optional[int]:
        """Replace ``day``'s rows of the daily rollup ``table`` on the server; None when embedded
        (the embedded backend reads the rollup files in the lake)."""
        if not self.is_server:
            return None
        if not self._migrated:
            self.migrate()
        return self.warehouse().load_day(table, day, frame)

    def query_polars(self, sql: str) -> pl.DataFrame:
        if self.is_server:
            client, _ = server_client(self.url)
            try:
                return pl.from_arrow(client.query_arrow(sql))
            except Exception as exc:
                raise ClickHouseError.from_exception(exc) from None
            finally:
                client.close()
        return EmbeddedClickHouse(self.lake()).query_polars(sql)


def build_clickhouse_resource(settings: Settings) -> ClickHouseResource:
    """The resource for ``settings``; the server URL (if any) stays an EnvVar."""
    return ClickHouseResource(
        url=EnvVar("MEV_CLICKHOUSE_URL") if settings.clickhouse_url else None,
        retention_days=settings.retention_days,
        lake_dir=str(settings.lake_dir),
        storage=settings.storage,
        s3_bucket=settings.s3_bucket,
        s3_prefix=settings.s3_prefix,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
    )
