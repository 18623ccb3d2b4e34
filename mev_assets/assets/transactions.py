"""``mempool_transactions`` and ``mempool_source_stats``: the per-window tables of the lane."""


import polars as pl
from dagster import AssetExecutionContext, MetadataValue, asset

from mev_assets.core.source_stats import source_stats
from mev_assets.core.transactions import assemble_transactions, sightings
from mev_assets.partitions import mempool_windows
from mev_assets.resources.clickhouse import ClickHouseResource
from mev_assets.resources.landing_zone import LandingZoneResource

WAREHOUSE = "warehouse_io_manager"
DUCKDB_POOL = "duckdb_writer"
# `window` is a reserved word in DuckDB SQL, so the partition column is always quoted.
PARTITION_EXPR = "\"window\""
PREVIEW_COLUMNS = ["timestamp_ms", "hash", "from", "to", "value", "data_4bytes", "sources"]


def _markdown_preview(frame: pl.DataFrame, columns: list[str], rows: int = 10) -> MetadataValue:
    head = frame.select(columns).head(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in head.iter_rows():
        cells = [", ".join(v) if isinstance(v, list) else ("" if v is None else str(v)) for v in row]
        lines.append("| " + " | ".join(c if len(c) <= 20 else c[:10] + "…" + c[-6:] for c in cells) + " |")
    return MetadataValue.md("\n".join(lines))


# Every per-window table: one partition per window, rows of the window replaced in DuckDB.
WINDOW_TABLE = dict(
    partitions_def=mempool_windows,
    io_manager_key=WAREHOUSE,
    metadata={"partition_expr": PARTITION_EXPR},
    pool=DUCKDB_POOL,
    kinds={"polars", "duckdb"},
)


@asset(group_name="mempool", **WINDOW_TABLE)
def mempool_transactions(
    context: AssetExecutionContext, landing_zone: LandingZoneResource, clickhouse: ClickHouseResource
) -> pl.DataFrame:
    """One row per unique pending transaction hash seen in the window, earliest sighting wins.

    Columns follow mempool-dumpster's transaction summary (see docs/data-dictionary.md).
    """
    window = context.partition_key
    zone = landing_zone.zone()
    txs = zone.read_area("mempool", window)
    log = zone.read_area("sourcelog", window)
    table = assemble_transactions(txs.frame, log.frame, window)
    quarantined = zone.read_quarantine(window)
    corrupt = txs.corrupt + log.corrupt
    for seg in corrupt:
        context.log.warning(f"quarantined unreadable segment {seg.path}: {seg.reason}")
    ts = table.get_column("timestamp_ms")
    metadata = {
        "dagster/row_count": table.height,
        "landing_rows": txs.frame.height,
        "duplicates_removed": txs.frame.height - table.height,
        "segments": len(txs.files),
        "segment_fingerprint": zone.fingerprint(window),
        "sources": sorted(set(table.get_column("sources").explode().drop_nulls().to_list())),
        "first_seen_ms": int(ts.min()) if table.height else None,
        "last_seen_ms": int(ts.max()) if table.height else None,
        "quarantined_records": quarantined.height,
        "corrupt_segments": MetadataValue.json([seg.__dict__ for seg in corrupt]),
        "preview": _markdown_preview(table, PREVIEW_COLUMNS),
    }
    metadata["clickhouse_rows_loaded"] = clickhouse.load_window("mempool_transactions", window, table)
    context.add_output_metadata({k: v for k, v in metadata.items() if v is not None})
    return table


@asset(group_name="mempool", **WINDOW_TABLE)
def mempool_source_stats(
    context: AssetExecutionContext,
    landing_zone: LandingZoneResource,
    clickhouse: ClickHouseResource,
    mempool_transactions: pl.DataFrame,
) -> pl.DataFrame:
    """Per source: transactions seen, unique to the source, first-arrival share, coverage, and
    latency percentiles behind the first source that announced each transaction."""
    window = context.partition_key
    log = landing_zone.zone().read_area("sourcelog", window).frame
    first_rows = mempool_transactions.select(
        "timestamp_ms", "hash", pl.col("sources").list.first().alias("source"), pl.lit("").alias("collector_id")
    ).drop_nulls("source")
    seen = sightings(first_rows, log.filter(pl.col("hash").is_in(mempool_transactions.get_column("hash").implode())))
    stats = source_stats(seen, window)
    # a server (MEV_CLICKHOUSE_URL) gets the window too, idempotently; a no-op when embedded
    loaded = clickhouse.load_window("mempool_source_stats", window, stats)
    context.add_output_metadata(
        {
            **({"clickhouse_rows_loaded": loaded} if loaded is not None else {}),
            "dagster/row_count": stats.height,
            "sources": stats.get_column("source").to_list(),
            "coverage": MetadataValue.json(dict(zip(stats["source"].to_list(), stats["coverage"].round(4).to_list()))),
            "latency_p50_ms": MetadataValue.json(dict(zip(stats["source"].to_list(), stats["latency_p50_ms"].to_list()))),
        }
    )
    return stats


WINDOW_ASSETS = [mempool_transactions, mempool_source_stats]
