"""Retention: the expiry rule, the plan, and the deletes of the landing zone and ClickHouse tables."""

from __future__ import annotations

import json
import random
import time

import clickhouse_connect
import polars as pl
import pytest

from mev_assets.core.clickhouse import TABLES, Warehouse
from mev_assets.core.retention import RetentionError, expired_windows, plan_retention, retention_cutoff_ms
from mev_assets.core.windows import key_for_start_ms, key_start_ms
from mev_assets.ingest.landing import LandingZone
from mev_assets.ingest.wal import wal_name
from tests.landing_factory import write_window

NOW = key_start_ms("2024-05-10T12:00:00")


def test_a_window_expires_only_once_it_ended_retention_days_ago():
    keys = [
        "2024-05-08T11:58:00",  # ended 11:59 two days ago: expired
        "2024-05-08T11:59:00",  # ends exactly at the cutoff: expired
        "2024-05-08T12:00:00",  # ends one minute after the cutoff: kept (partly inside the period)
        "2024-05-10T11:59:00",
        "not-a-window",
        "2024-05-08T11:59:00",
    ]
    assert expired_windows(keys, NOW, 2, 60) == ["2024-05-08T11:58:00", "2024-05-08T11:59:00"]
    assert retention_cutoff_ms(NOW, 2) == key_start_ms("2024-05-08T12:00:00")
    # a wider window that started before the cutoff but ends after it is kept
    assert expired_windows(["2024-05-08T11:55:00"], NOW, 2, 600) == []


def test_retention_refuses_less_than_a_day():
    with pytest.raises(RetentionError, match="at least one day"):
        expired_windows([], NOW, 0, 60)


def test_the_plan_lists_expired_keys_per_place():
    plan = plan_retention(
        {"landing": ["2024-05-01T00:00:00", "2024-05-10T00:00:00"], "lake/t": ["2024-05-02T00:00:00"], "wal": []},
        NOW, 3, 60,
    )
    assert plan.expired == {"landing": ["2024-05-01T00:00:00"], "lake/t": ["2024-05-02T00:00:00"], "wal": []}
    assert plan.windows == ["2024-05-01T00:00:00", "2024-05-02T00:00:00"]
    assert plan.cutoff_key == "2024-05-07T12:00:00"
    assert not plan.is_empty
    assert plan_retention({"landing": ["2024-05-10T00:00:00"]}, NOW, 3, 60).is_empty


def test_landing_delete_window_removes_every_area_and_wal_leftovers_but_spares_live_collectors(tmp_path):
    zone = LandingZone(tmp_path / "landing")
    old, kept = "2024-05-01T00:00:00", "2024-05-01T00:01:00"
    write_window(zone, old, 3)
    write_window(zone, kept, 2)
    zone.append_quarantine(old, "c1", [{"reason": "bad", "hash": "0x1"}])
    for collector in ("dead", "live"):
        wal_dir = zone.wal_dir(collector)
        wal_dir.mkdir(parents=True)
        (wal_dir / wal_name(old, 1)).write_bytes(b"x")
        (wal_dir / wal_name(kept, 1)).write_bytes(b"x")
    assert zone.wal_windows() == [old, kept]

    removed = zone.delete_window(old, keep_collectors=frozenset({"live"}))
    assert any("mempool/window=" in r for r in removed) and any("_quarantine/" in r for r in removed)
    assert zone.windows("mempool") == [kept] and zone.windows("sourcelog") == [kept]
    assert zone.windows("_quarantine") == []
    assert not (zone.wal_dir("dead") / wal_name(old, 1)).exists()
    assert (zone.wal_dir("live") / wal_name(old, 1)).exists()  # a live collector may still have it open
    assert (zone.wal_dir("dead") / wal_name(kept, 1)).exists()
    assert zone.read_area("mempool", kept).frame.height == 2
    assert zone.delete_window(old, keep_collectors=frozenset({"live"})) == []  # idempotent
    assert json.loads(zone.store.get(zone.sealed_marker(kept, "c1")))["collector_id"] == "c1"


@pytest.fixture
def warehouse():
    client = clickhouse_connect.get_client(dsn="chdb://memory")
    database = f"mev_retention_{random.getrandbits(48):012x}"
    wh = Warehouse(client, database=database, retention_days=30)
    wh.migrate()
    yield wh
    client.command(f"DROP DATABASE IF EXISTS {database}")


def test_warehouse_lists_and_deletes_windows(warehouse):
    spec = TABLES["mempool_source_stats"]
    # recent windows: the tables' TTL (30 days) would drop old rows on its own
    today = time.time_ns() // 1_000_000
    old, kept = key_for_start_ms(today - today % 60_000 - 3_600_000), key_for_start_ms(today - today % 60_000)
    empty = pl.DataFrame(schema=spec.schema)
    for window in (old, kept):
        row = {c: None for c in spec.schema}
        frame = pl.concat([empty, pl.DataFrame([row], schema=spec.schema)]).with_columns(
            pl.lit(window).alias("window")
        )
        frame = frame.with_columns(pl.col(c).fill_null(strategy="zero") for c in frame.columns if c != "window")
        frame = frame.with_columns(pl.col(c).fill_null("x") for c, t in spec.schema.items() if t == pl.String)
        warehouse.load_window("mempool_source_stats", window, frame)
    assert warehouse.windows()["mempool_source_stats"] == [old, kept]
    warehouse.delete_window("mempool_source_stats", old)
    warehouse.delete_window("mempool_source_stats", old)  # idempotent
    assert warehouse.windows()["mempool_source_stats"] == [kept]
    assert warehouse.windows()["mempool_transactions"] == []
