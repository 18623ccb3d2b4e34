"""``mempool_transactions`` and ``mempool_source_stats``: the per-window tables of the lane."""


import warnings

import polars as pl
from dagster import AssetExecutionContext, BackfillPolicy, BetaWarning, MetadataValue, asset

from mev_assets.core.backfill import DEFAULT_WINDOWS_PER_RUN
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


def run_windows(context: AssetExecutionContext) -> list[str]:
    """The windows of this run: one for a sensor run, many for a backfill run (a key range)."""
    return list(context.partition_keys)


def by_window(frame: pl.DataFrame, windows: list[str]) -> dict[str, pl.DataFrame]:
    """``frame``'s rows per window of ``windows`` (an empty frame for a window without rows)."""
    if len(windows) == 1:
        return {windows[0]: frame}
    parts = {k[0]: part for k, part in frame.partition_by("window", as_dict=True).items()}
    return {w: parts.get(w, frame.clear()) for w in windows}


# A backfill (Dagster's UI, the previous-day schedule, `mev-assets materialize --from --to`) runs many
# windows per run, so a day is tens of runs rather than 1,440; the sensor still runs one window each.
WINDOW_BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=DEFAULT_WINDOWS_PER_RUN)

# Every per-window table: one partition per window, rows of the window replaced in DuckDB.
WINDOW_TABLE = dict(
    partitions_def=mempool_windows,
    backfill_policy=WINDOW_BACKFILL_POLICY,
    io_manager_key=WAREHOUSE,
    metadata={"partition_expr": PARTITION_EXPR},
    pool=DUCKDB_POOL,
    kinds={"polars", "duckdb"},
)


def window_table_asset(**kwargs):
    """``@asset`` of a per-window table (:data:`WINDOW_TABLE`), plus ``kwargs``."""
    with warnings.catch_warnings():
        # backfill_policy is a beta parameter in Dagster 1.13; chosen knowingly (multi-window backfills)
        warnings.simplefilter("ignore", BetaWarning)
        return asset(**WINDOW_TABLE, **kwargs)


@window_table_asset(group_name="mempool")
def mempool_transactions(
    context: AssetExecutionContext, landing_zone: LandingZoneResource, clickhouse: ClickHouseResource
) -> pl.DataFrame:
    """One row per unique pending transaction hash seen in the window, earliest sighting wins.

    Columns follow mempool-dumpster's transaction summary (see docs/data-dictionary.md).
    """
    windows = run_windows(context)
    zone = landing_zone.zone()
    tables, landing_rows, segments, fingerprints, quarantined, corrupt = [], 0, 0, {}, 0, []
    for window in windows:
        txs = zone.read_area("mempool", window)
        log = zone.read_area("sourcelog", window)
        tables.append(assemble_transactions(txs.frame, log.frame, window))
        landing_rows += txs.frame.height
        segments += len(txs.files)
        fingerprints[window] = zone.fingerprint(window)
        quarantined += zone.read_quarantine(window).height
        corrupt += txs.corrupt + log.corrupt
    table = pl.concat(tables, how="vertical")
    for seg in corrupt:
        context.log.warning(f"quarantined unreadable segment {seg.path}: {seg.reason}")
    ts = table.get_column("timestamp_ms")
    metadata = {
        "dagster/row_count": table.height,
        "windows": len(windows),
        "landing_rows": landing_rows,
        "duplicates_removed": landing_rows - table.height,
        "segments": segments,
        "segment_fingerprint": fingerprints[windows[0]] if len(windows) == 1 else MetadataValue.json(fingerprints),
        "sources": sorted(set(table.get_column("sources").explode().drop_nulls().to_list())),
        "first_seen_ms": int(ts.min()) if table.height else None,
        "last_seen_ms": int(ts.max()) if table.height else None,
        "quarantined_records": quarantined,
        "corrupt_segments": MetadataValue.json([seg.__dict__ for seg in corrupt]),
        "preview": _markdown_preview(table, PREVIEW_COLUMNS),
    }
    loaded = [clickhouse.load_window("mempool_transactions", w, part) for w, part in by_window(table, windows).items()]
    if any(n is not None for n in loaded):
        metadata["clickhouse_rows_loaded"] = sum(n or 0 for n in loaded)
    context.add_output_metadata({k: v for k, v in metadata.items() if v is not None})
    return table


@window_table_asset(group_name="mempool")
def mempool_source_stats(
    context: AssetExecutionContext,
    landing_zone: LandingZoneResource,
    clickhouse: ClickHouseResource,
    mempool_transactions: pl.DataFrame,
) -> pl.DataFrame:
    """Per source: transactions seen, unique to the source, first-arrival share, coverage, and
    latency percentiles behind the first source that announced each transaction."""
    windows = run_windows(context)
    zone = landing_zone.zone()
    stats_parts = []
    for window, txs in by_window(mempool_transactions, windows).items():
        log = zone.read_area("sourcelog", window).frame
        first_rows = txs.select(
            "timestamp_ms", "hash", pl.col("sources").list.first().alias("source"), pl.lit("").alias("collector_id")
        ).drop_nulls("source")
        seen = sightings(first_rows, log.filter(pl.col("hash").is_in(txs.get_column("hash").implode())))
        stats_parts.append(source_stats(seen, window))
    stats = pl.concat(stats_parts, how="vertical")
    # a server (MEV_CLICKHOUSE_URL) gets each window too, idempotently; a no-op when embedded
    loaded = [clickhouse.load_window("mempool_source_stats", w, part) for w, part in zip(windows, stats_parts)]
    coverage = {
        w: dict(zip(part["source"].to_list(), part["coverage"].round(4).to_list())) for w, part in zip(windows, stats_parts)
    }
    latency = {
        w: dict(zip(part["source"].to_list(), part["latency_p50_ms"].to_list())) for w, part in zip(windows, stats_parts)
    }
    single = len(windows) == 1
    context.add_output_metadata(
        {
            **({"clickhouse_rows_loaded": sum(n or 0 for n in loaded)} if any(n is not None for n in loaded) else {}),
            "dagster/row_count": stats.height,
            "windows": len(windows),
            "sources": sorted(set(stats.get_column("source").to_list())),
            # one window: coverage per source; several: per window, then per source (see checks._previous_coverage)
            **({"coverage": MetadataValue.json(coverage[windows[0]])} if single
               else {"coverage_by_window": MetadataValue.json(coverage)}),
            "latency_p50_ms": MetadataValue.json(latency[windows[0]] if single else latency),
        }
    )
    return stats


WINDOW_ASSETS = [mempool_transactions, mempool_source_stats]
