"""Assemble the ``mempool_transactions`` table of one window from its landing segments.

One row per unique hash, earliest sighting wins (across sources and collectors); ``sources``
lists every source that announced the hash in this window, first arrival first.
"""

from __future__ import annotations

import polars as pl

from mev_assets.core.schemas import MEMPOOL_TRANSACTIONS_SCHEMA


def sightings(landing_txs: pl.DataFrame, sourcelog: pl.DataFrame) -> pl.DataFrame:
    """First sighting of each (hash, source): the sourcelog plus the accepted rows themselves.

    The accepted rows are included so a source is never missing from ``sources`` when its
    sourcelog segment was lost or quarantined.
    """
    both = pl.concat(
        [
            sourcelog.select("timestamp_ms", "hash", "source"),
            landing_txs.select("timestamp_ms", "hash", "source"),
        ],
        how="vertical",
    )
    return both.group_by("hash", "source").agg(pl.col("timestamp_ms").min())


def assemble_transactions(landing_txs: pl.DataFrame, sourcelog: pl.DataFrame, window: str) -> pl.DataFrame:
    firsts = (
        landing_txs.sort("timestamp_ms", "collector_id", "source", "hash")
        .unique(subset="hash", keep="first", maintain_order=True)
        .drop("source", "collector_id")
    )
    sources = (
        sightings(landing_txs, sourcelog)
        .sort("timestamp_ms", "source")
        .group_by("hash", maintain_order=True)
        .agg(pl.col("source").alias("sources"))
    )
    table = firsts.join(sources, on="hash", how="left").with_columns(pl.lit(window).alias("window"))
    return table.select([pl.col(c).cast(t) for c, t in MEMPOOL_TRANSACTIONS_SCHEMA.items()]).sort("timestamp_ms", "hash")
