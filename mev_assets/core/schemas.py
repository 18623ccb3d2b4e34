"""Column schemas of the landing zone files and the per-window tables (polars dtypes).

Wei amounts are decimal strings: they can exceed every fixed-width integer type (up to 2**256).
Hex values (hashes, addresses, calldata, raw transactions) are lowercase ``0x`` strings, as in
mempool-dumpster's archives, so files interoperate and read well in SQL.
"""

from __future__ import annotations

import polars as pl

# One accepted transaction as the collector (or an importer) saw it first.
LANDING_TX_SCHEMA: dict[str, pl.DataType] = {
    "timestamp_ms": pl.Int64(),
    "hash": pl.String(),
    "chain_id": pl.Int64(),
    "tx_type": pl.Int64(),
    "from": pl.String(),
    "to": pl.String(),
    "value": pl.String(),
    "nonce": pl.UInt64(),
    "gas": pl.UInt64(),
    "gas_price": pl.String(),
    "gas_tip_cap": pl.String(),
    "gas_fee_cap": pl.String(),
    "data_size": pl.Int64(),
    "data_4bytes": pl.String(),
    "input": pl.String(),
    "raw_tx": pl.String(),
    "source": pl.String(),
    "collector_id": pl.String(),
}

# Every (hash, source) sighting, first time each source announced the hash.
SOURCELOG_SCHEMA: dict[str, pl.DataType] = {
    "timestamp_ms": pl.Int64(),
    "hash": pl.String(),
    "source": pl.String(),
    "collector_id": pl.String(),
}

# New heads, with the block's transaction hashes.
BLOCKS_SCHEMA: dict[str, pl.DataType] = {
    "received_ms": pl.Int64(),
    "number": pl.Int64(),
    "hash": pl.String(),
    "parent_hash": pl.String(),
    "timestamp": pl.Int64(),
    "base_fee_per_gas": pl.String(),
    "gas_used": pl.Int64(),
    "gas_limit": pl.Int64(),
    "tx_hashes": pl.List(pl.String()),
    "source": pl.String(),
    "collector_id": pl.String(),
}

# Records that failed validation, kept with the reason.
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "timestamp_ms": pl.Int64(),
    "source": pl.String(),
    "collector_id": pl.String(),
    "reason": pl.String(),
    "payload": pl.String(),
}

# The per-window table: one row per unique hash, earliest sighting wins. The landing columns,
# with `sources` (every announcing source, first arrival first) in place of `source` and
# `collector_id`, and the window key first.
_PER_COLLECTOR = ("source", "collector_id")
MEMPOOL_TRANSACTIONS_SCHEMA: dict[str, pl.DataType] = {
    "window": pl.String(),
    **{c: t for c, t in LANDING_TX_SCHEMA.items() if c not in _PER_COLLECTOR and c not in ("input", "raw_tx")},
    "sources": pl.List(pl.String()),
    "input": pl.String(),
    "raw_tx": pl.String(),
}

MEMPOOL_SOURCE_STATS_SCHEMA: dict[str, pl.DataType] = {
    "window": pl.String(),
    "source": pl.String(),
    "txs_seen": pl.Int64(),
    "unique_to_source": pl.Int64(),
    "first_arrivals": pl.Int64(),
    "first_arrival_share": pl.Float64(),
    "coverage": pl.Float64(),
    "shared_txs": pl.Int64(),
    "latency_p50_ms": pl.Float64(),
    "latency_p90_ms": pl.Float64(),
    "latency_p99_ms": pl.Float64(),
    "latency_max_ms": pl.Int64(),
}


def empty_frame(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)
