"""The dbt daily rollups outside DuckDB: exported to the lake, one Parquet file per day.

dbt builds the rollups (``dbt_models/models/marts``) in the DuckDB file of the dbt project,
schema ``mev_daily``. After each build, :func:`export_rollups` copies the days the build rebuilt
into the lake (``lake/<model>/date=YYYY-MM-DD/part.parquet``, replaced whole, atomically), where
``mev-assets sql`` reads them (chdb view per rollup) and from where they load into a ClickHouse
server (one idempotent load per day). The file types are fixed here (:data:`ROLLUP_SCHEMAS`), so
the lake files, the chdb views and the server DDL (``V003__daily_rollups.sql``) always agree.

Which days a build rebuilt: the dbt project records, before its models run, the first date it
rebuilds (``on-run-start`` -> ``mev_daily.rollup_rebuild``, see ``macros/rollup_dates.sql``);
``NULL`` there means a full build. Days the lake does not have yet are exported too, so a lake
that missed an export (a failed upload, a lake added later) catches up on the next build.

No Dagster here: ``mev_assets/assets/dbt.py`` calls it after ``dbt build``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from mev_assets.core.lake import Lake

ROLLUP_SCHEMA = "mev_daily"
REBUILD_MARKER = "rollup_rebuild"

_COUNT = pl.Int64()
_SHARE = pl.Float64()

ROLLUP_SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "daily_mempool_stats": {
        "date": pl.Date(),
        "active_windows": _COUNT,
        "tx_count": _COUNT,
        "unique_senders": _COUNT,
        "unique_recipients": _COUNT,
        "contract_creations": _COUNT,
        "contract_calls": _COUNT,
        "first_seen_at": pl.Datetime("us", "UTC"),
        "last_seen_at": pl.Datetime("us", "UTC"),
        "total_value_eth": pl.Float64(),
        "max_fee_gwei_p50": pl.Float64(),
        "max_fee_gwei_p90": pl.Float64(),
        "max_fee_gwei_p99": pl.Float64(),
        "tip_gwei_p50": pl.Float64(),
        "tip_gwei_p90": pl.Float64(),
        "tip_gwei_p99": pl.Float64(),
    },
    "daily_source_coverage": {
        "date": pl.Date(),
        "source": pl.String(),
        "windows_seen": _COUNT,
        "txs_seen": _COUNT,
        "unique_to_source": _COUNT,
        "first_arrivals": _COUNT,
        "shared_txs": _COUNT,
        "day_tx_count": _COUNT,
        "coverage": _SHARE,
        "first_arrival_share": _SHARE,
        "latency_p50_ms": pl.Float64(),
        "latency_p90_ms": pl.Float64(),
        "latency_p99_ms": pl.Float64(),
        "latency_max_ms": pl.Int64(),
    },
    "daily_protocol_mix": {
        "date": pl.Date(),
        "protocol": pl.String(),
        "protocol_kind": pl.String(),
        "tx_count": _COUNT,
        "decoded_txs": _COUNT,
        "unique_senders": _COUNT,
        "share_of_day": _SHARE,
    },
}
# Null by meaning: statistics over no value (every amount of the day malformed, no transaction
# seen by two sources), and the kind of a pseudo-protocol such as '(no_calldata)'.
ROLLUP_NULLABLE: dict[str, frozenset[str]] = {
    "daily_mempool_stats": frozenset(
        {"total_value_eth", *(f"{fee}_p{p}" for fee in ("max_fee_gwei", "tip_gwei") for p in (50, 90, 99))}
    ),
    "daily_source_coverage": frozenset({"latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_max_ms"}),
    "daily_protocol_mix": frozenset({"protocol_kind"}),
}


@dataclass
class RollupExport:
    """What one export wrote: per rollup, the days written and their rows."""

    since: str | None  # first rebuilt day; None = a full build (every day exported)
    days: dict[str, list[str]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    frames: dict[str, dict[str, pl.DataFrame]] = field(default_factory=dict, repr=False)

    def metadata(self) -> dict[str, object]:
        return {
            "rollup_export_since": self.since or "(full build)",
            "rollup_days_exported": {model: days for model, days in self.days.items()},
            "rollup_rows_exported": dict(self.rows),
        }


def rebuilt_since(connection) -> str | None:
    """The first day the last dbt run rebuilt (``None``: a full build, or no marker yet)."""
    found = connection.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [ROLLUP_SCHEMA, REBUILD_MARKER],
    ).fetchone()[0]
    if not found:
        return None
    row = connection.execute(f"select since from {ROLLUP_SCHEMA}.{REBUILD_MARKER}").fetchone()
    return row[0].isoformat() if row and row[0] is not None else None


def conform(model: str, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with exactly the rollup's columns and file types (timestamps are UTC)."""
    schema = ROLLUP_SCHEMAS[model]
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ValueError(f"{model} lacks columns {missing}: the dbt model and ROLLUP_SCHEMAS disagree")
    columns = []
    for name, dtype in schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime) and frame.schema[name] == pl.Datetime("us"):
            column = column.dt.replace_time_zone("UTC")
        columns.append(column.cast(dtype, strict=True))
    return frame.select(columns)


def export_rollups(duckdb_path: Path | str, lake: Lake) -> RollupExport:
    """Copy the rebuilt days of every rollup from the dbt DuckDB file into ``lake``, one file per
    day (replacing that day's file), plus every day the lake does not hold yet."""
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as connection:
        since = rebuilt_since(connection)
        export = RollupExport(since=since)
        for model in ROLLUP_SCHEMAS:
            held = set(lake.days(model))
            built = {
                d.isoformat()
                for (d,) in connection.execute(f"select distinct date from {ROLLUP_SCHEMA}.{model}").fetchall()
            }
            wanted = sorted(d for d in built if since is None or d >= since or d not in held)
            frames: dict[str, pl.DataFrame] = {}
            if wanted:
                rows = connection.execute(
                    f"select * from {ROLLUP_SCHEMA}.{model} where date in (select unnest(?::date[]))",
                    [[date.fromisoformat(d) for d in wanted]],
                ).pl()
                table = conform(model, rows)
                for (day,), frame in table.partition_by("date", as_dict=True, maintain_order=True).items():
                    frames[day.isoformat()] = frame
            for day in sorted(frames):
                lake.write_day(model, day, frames[day])
            export.days[model] = sorted(frames)
            export.rows[model] = sum(f.height for f in frames.values())
            export.frames[model] = frames
    return export
