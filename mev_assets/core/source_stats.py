"""Per-source coverage and latency of one window (``mempool_source_stats``).

Latency is measured behind the first source: for every hash seen by two or more sources,
each source's delay after the earliest sighting. Hashes only one source saw count towards
``unique_to_source`` and coverage, not towards latency.
"""

from __future__ import annotations

import polars as pl

from mev_assets.core.schemas import MEMPOOL_SOURCE_STATS_SCHEMA


def source_stats(sightings: pl.DataFrame, window: str) -> pl.DataFrame:
    """``sightings``: one row per (hash, source) with its first ``timestamp_ms``."""
    if sightings.is_empty():
        return pl.DataFrame(schema=MEMPOOL_SOURCE_STATS_SCHEMA)
    total = sightings.get_column("hash").n_unique()
    per_tx = sightings.with_columns(
        (pl.col("timestamp_ms") - pl.col("timestamp_ms").min().over("hash")).alias("delay_ms"),
        pl.len().over("hash").alias("n_sources"),
    )
    shared_delay = pl.col("delay_ms").filter(pl.col("n_sources") > 1)
    stats = per_tx.group_by("source").agg(
        pl.len().alias("txs_seen"),
        (pl.col("n_sources") == 1).sum().alias("unique_to_source"),
        (pl.col("delay_ms") == 0).sum().alias("first_arrivals"),
        (pl.col("n_sources") > 1).sum().alias("shared_txs"),
        shared_delay.quantile(0.5, "linear").alias("latency_p50_ms"),
        shared_delay.quantile(0.9, "linear").alias("latency_p90_ms"),
        shared_delay.quantile(0.99, "linear").alias("latency_p99_ms"),
        shared_delay.max().alias("latency_max_ms"),
    )
    stats = stats.with_columns(
        (pl.col("first_arrivals") / total).alias("first_arrival_share"),
        (pl.col("txs_seen") / total).alias("coverage"),
        pl.lit(window).alias("window"),
    )
    return stats.select([pl.col(c).cast(t) for c, t in MEMPOOL_SOURCE_STATS_SCHEMA.items()]).sort("source")
