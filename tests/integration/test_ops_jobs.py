"""Retention and replay on a real Dagster instance: a synthetic multi-day landing zone, windows
materialised into DuckDB and the lake, then retention (dry run, for real, again) and a replay."""

from __future__ import annotations

import time

import duckdb
import pytest
from dagster import instance_for_test

from mev_assets.core.lake import open_lake
from mev_assets.core.windows import key_for_start_ms, window_start_ms
from mev_assets.definitions import build_definitions
from mev_assets.ingest.landing import LandingZone
from mev_assets.ingest.wal import wal_name
from mev_assets.lane import execute_window
from mev_assets.ops_jobs import content_hash, replay_job, replay_windows, retention_job
from mev_assets.partitions import MEMPOOL_WINDOWS
from mev_assets.resources.clickhouse import build_clickhouse_resource
from tests.landing_factory import write_window

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

DAY_MS = 86_400_000


def _window(days_ago: float) -> str:
    now = time.time_ns() // 1_000_000
    return key_for_start_ms(window_start_ms(now - int(days_ago * DAY_MS), 60))


def _duckdb_windows(settings, table: str) -> list[str]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        return sorted(r[0] for r in con.execute(f'select distinct "window" from mev.{table}').fetchall())


def _run_retention(settings, instance, dry_run: bool) -> dict:
    result = retention_job.execute_in_process(
        instance=instance,
        resources={"clickhouse": build_clickhouse_resource(settings)},
        run_config={"ops": {"apply_retention": {"config": {"dry_run": dry_run}}}},
    )
    assert result.success
    report = result.output_for_node("apply_retention")
    materialized = [
        e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"
    ][0].event_specific_data.metadata
    assert materialized["report"].value == report
    return report


def test_retention_deletes_exactly_the_expired_windows_everywhere_then_nothing(settings_factory):
    settings = settings_factory(MEV_WINDOW_SECONDS=60, MEV_RETENTION_DAYS=2)
    defs = build_definitions(settings)
    zone = LandingZone(settings.landing_dir)
    lake = open_lake(settings)
    # four days of windows: two expired (5 and 3 days old), two kept (1 day and 10 minutes old)
    expired = [_window(5), _window(3)]
    kept = [_window(1), _window(10 / 1440)]
    for i, window in enumerate(expired + kept):
        write_window(zone, window, 3, offset=10 * i)
    zone.append_quarantine(expired[0], "c1", [{"reason": "bad signature", "hash": "0xdead"}])
    wal_dir = zone.wal_dir("crashed")
    wal_dir.mkdir(parents=True)
    (wal_dir / wal_name(expired[1], 7)).write_bytes(b"left over")
    (wal_dir / wal_name(kept[1], 7)).write_bytes(b"still needed")

    with instance_for_test() as instance:
        instance.add_dynamic_partitions(MEMPOOL_WINDOWS, expired + kept)
        for window in expired + kept:
            assert execute_window(defs, instance, window).success
        tables = lake.tables()
        assert {"mempool_transactions", "mempool_source_stats"} <= set(tables)
        assert _duckdb_windows(settings, "mempool_transactions") == sorted(expired + kept)

        dry = _run_retention(settings, instance, dry_run=True)
        assert dry["dry_run"] is True and dry["expired_windows"] == sorted(expired)
        assert dry["deleted"] == {}
        assert dry["expired_by_place"]["wal"] == [expired[1]]
        assert dry["expired_by_place"]["partitions"] == sorted(expired)
        assert dry["expired_by_place"]["duckdb/mempool_transactions"] == sorted(expired)
        # nothing deleted by the dry run
        assert zone.windows("mempool") == sorted(expired + kept)
        assert (wal_dir / wal_name(expired[1], 7)).exists()
        assert sorted(instance.get_dynamic_partitions(MEMPOOL_WINDOWS)) == sorted(expired + kept)

        real = _run_retention(settings, instance, dry_run=False)
        assert real["expired_windows"] == sorted(expired)
        assert real["deleted"]["partitions"] == 2
        assert real["deleted"]["duckdb/mempool_transactions"] == 6  # 3 rows in each expired window
        assert real["deleted"]["landing"] > 0
        for area in ("mempool", "sourcelog", "_quarantine"):
            assert zone.windows(area) == sorted(kept) or (area == "_quarantine" and zone.windows(area) == [])
        assert not (wal_dir / wal_name(expired[1], 7)).exists()
        assert (wal_dir / wal_name(kept[1], 7)).exists()
        for table in tables:
            assert lake.windows(table) == sorted(kept), table
        assert _duckdb_windows(settings, "mempool_transactions") == sorted(kept)
        assert _duckdb_windows(settings, "mempool_source_stats") == sorted(kept)
        assert sorted(instance.get_dynamic_partitions(MEMPOOL_WINDOWS)) == sorted(kept)
        for window in kept:
            assert zone.read_area("mempool", window).frame.height == 3

        again = _run_retention(settings, instance, dry_run=False)
        assert again["expired_windows"] == [] and again["expired_by_place"] == {}
        assert set(again["deleted"].values()) == {0}


def test_replay_of_a_range_gives_identical_content_hashes(settings_factory):
    settings = settings_factory(MEV_WINDOW_SECONDS=60)
    defs = build_definitions(settings)
    zone = LandingZone(settings.landing_dir)
    lake = open_lake(settings)
    windows = [_window(m / 1440) for m in (30, 29, 28)]
    for i, window in enumerate(windows):
        write_window(zone, window, 4, sources=("a", "b"), offset=10 * i)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(MEMPOOL_WINDOWS, windows[:2])  # the third is new to Dagster
        for window in windows[:2]:
            assert execute_window(defs, instance, window).success
        before = {w: content_hash(lake.read_window("mempool_transactions", w)) for w in windows[:2]}

        report = replay_windows(defs, instance, windows[0], windows[2], settings)
        assert [w.window for w in report.windows] == windows
        assert report.parity and report.mismatched == []
        assert report.matched == windows[:2]
        assert report.summary()["first_builds"] == [windows[2]]
        assert windows[2] in instance.get_dynamic_partitions(MEMPOOL_WINDOWS)
        for parity in report.windows[:2]:
            assert {"mempool_transactions", "mempool_source_stats"} <= set(parity.before)
            assert parity.after == parity.before
            assert parity.before["mempool_transactions"] == before[parity.window]

        # the hash sees content: a changed lake file no longer matches its rebuild
        tampered = lake.read_window("mempool_transactions", windows[0]).head(3)
        lake.write_window("mempool_transactions", windows[0], tampered)
        report = replay_windows(defs, instance, windows[0], windows[0], settings)
        assert not report.parity and report.windows[0].mismatched == ["mempool_transactions"]
        # and the rebuild restored the original content
        assert content_hash(lake.read_window("mempool_transactions", windows[0])) == before[windows[0]]

        # the job form: a range on the same instance, parity in its output metadata
        result = replay_job.execute_in_process(
            instance=instance, run_config={"ops": {"replay_range": {"config": {"first": windows[1], "last": windows[2]}}}}
        )
        assert result.success
        assert result.output_for_node("replay_range")["matched"] == 2
