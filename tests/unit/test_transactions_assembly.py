from __future__ import annotations

import polars as pl
import pytest

from mev_assets.core.schemas import (
    MEMPOOL_SOURCE_STATS_SCHEMA,
    MEMPOOL_TRANSACTIONS_SCHEMA,
)
from mev_assets.core.source_stats import source_stats
from mev_assets.core.transactions import assemble_transactions, sightings
from tests.landing_factory import fake_hash, sourcelog_frame, tx_frame, tx_row

W = "2024-05-05T12:34:00"
T0 = 1714912440000


def test_earliest_sighting_wins_across_collectors():
    h1, h2 = fake_hash(1), fake_hash(2)
    landing = tx_frame(
        [
            tx_row(h1, T0 + 50, "b", "c2"),
            tx_row(h1, T0 + 20, "a", "c1"),
            tx_row(h2, T0 + 30, "a", "c1"),
            tx_row(h1, T0 + 90, "a", "c1"),
        ]
    )
    log = sourcelog_frame([(T0 + 20, h1, "a"), (T0 + 50, h1, "b"), (T0 + 30, h2, "a")])
    table = assemble_transactions(landing, log, W)
    assert table.schema == pl.Schema(MEMPOOL_TRANSACTIONS_SCHEMA)
    assert table.get_column("hash").to_list() == [h1, h2]
    assert table.filter(pl.col("hash") == h1).get_column("timestamp_ms").item() == T0 + 20
    assert table.get_column("sources").to_list() == [["a", "b"], ["a"]]
    assert set(table.get_column("window")) == {W}


def test_sources_are_ordered_by_first_arrival_and_include_the_landing_source():
    h = fake_hash(7)
    landing = tx_frame([tx_row(h, T0 + 5, "z")])
    # "z" has no sourcelog row (lost segment): it still appears, in arrival order.
    log = sourcelog_frame([(T0 + 9, h, "m"), (T0 + 7, h, "a"), (T0 + 30, h, "m")])
    table = assemble_transactions(landing, log, W)
    assert table.get_column("sources").to_list() == [["z", "a", "m"]]


def test_empty_window_gives_an_empty_typed_table():
    table = assemble_transactions(tx_frame([]), sourcelog_frame([]), W)
    assert table.height == 0
    assert table.schema == pl.Schema(MEMPOOL_TRANSACTIONS_SCHEMA)
    stats = source_stats(sightings(tx_frame([]), sourcelog_frame([])), W)
    assert stats.height == 0 and stats.schema == pl.Schema(MEMPOOL_SOURCE_STATS_SCHEMA)


def test_source_stats_coverage_uniqueness_and_latency():
    rows, log = [], []
    # 10 txs: "fast" sees all first; "slow" sees the first 8, 100 ms later; tx 10 only "fast"
    for i in range(10):
        h = fake_hash(i)
        rows.append(tx_row(h, T0 + i, "fast"))
        log.append((T0 + i, h, "fast"))
        if i < 8:
            log.append((T0 + i + 100 + i, h, "slow"))
    # one tx only "slow" saw
    only_slow = fake_hash(99)
    rows.append(tx_row(only_slow, T0 + 500, "slow"))
    log.append((T0 + 500, only_slow, "slow"))
    stats = source_stats(sightings(tx_frame(rows), sourcelog_frame(log)), W).to_dicts()
    by = {r["source"]: r for r in stats}
    assert by["fast"]["txs_seen"] == 10 and by["slow"]["txs_seen"] == 9
    assert by["fast"]["unique_to_source"] == 2 and by["slow"]["unique_to_source"] == 1
    assert by["fast"]["first_arrivals"] == 10 and by["slow"]["first_arrivals"] == 1
    assert by["fast"]["coverage"] == pytest.approx(10 / 11) and by["slow"]["coverage"] == pytest.approx(9 / 11)
    assert by["fast"]["latency_max_ms"] == 0
    # delays of slow: 100, 101, ..., 107
    assert by["slow"]["latency_max_ms"] == 107
    assert 103 <= by["slow"]["latency_p50_ms"] <= 104
    assert by["slow"]["shared_txs"] == 8
