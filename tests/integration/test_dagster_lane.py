"""The lane's Dagster wiring on a real instance: sensor ticks, partitions, materialisations."""

from __future__ import annotations

import time

import duckdb
import pytest
from dagster import SensorResult, build_sensor_context, instance_for_test, materialize

from mev_assets.assets.transactions import WINDOW_ASSETS
from mev_assets.core.windows import key_for_start_ms, window_key, window_start_ms
from mev_assets.definitions import build_definitions
from mev_assets.ingest.landing import LandingZone
from mev_assets.lane import run_sensor_requests, sensor_tick
from mev_assets.partitions import MEMPOOL_WINDOWS
from tests.landing_factory import write_window

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _past_windows(n: int, width: int = 60) -> list[str]:
    start = window_start_ms(time.time_ns() // 1_000_000, width) - 10 * width * 1000
    return [key_for_start_ms(start + i * width * 1000) for i in range(n)]


def _tick(defs, instance, cursor=None) -> SensorResult:
    sensor = defs.resolve_sensor_def("mempool_window_sensor")
    with build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources) as ctx:
        return sensor(ctx)


@pytest.fixture
def lane(settings_factory):
    settings = settings_factory(MEV_WINDOW_SECONDS=60, MEV_GRACE_SECONDS=30)
    return settings, build_definitions(settings), LandingZone(settings.landing_dir)


def test_sensor_registers_ready_windows_and_skips_the_open_one(lane):
    settings, defs, zone = lane
    w1, w2 = _past_windows(2)
    write_window(zone, w1, 3)
    write_window(zone, w2, 0)
    open_window = window_key(time.time_ns() // 1_000_000, 60)
    write_window(zone, open_window, 2)
    with instance_for_test() as instance:
        result = _tick(defs, instance)
        assert sorted(r.partition_key for r in result.run_requests) == [w1, w2]
        assert all(r.run_key.startswith(r.partition_key + "@") for r in result.run_requests)
        added = [k for req in result.dynamic_partitions_requests for k in req.partition_keys]
        assert sorted(added) == [w1, w2]
        again = _tick(defs, instance, result.cursor)
        assert not again.run_requests


def test_late_segment_reruns_the_window(lane):
    settings, defs, zone = lane
    (w1,) = _past_windows(1)
    write_window(zone, w1, 2)
    with instance_for_test() as instance:
        first = _tick(defs, instance)
        write_window(zone, w1, 1, collector_id="c-late", offset=50)
        second = _tick(defs, instance, first.cursor)
        assert [r.partition_key for r in second.run_requests] == [w1]
        assert second.run_requests[0].tags["mev/rerun"] == "true"
        assert second.run_requests[0].run_key != first.run_requests[0].run_key


def test_sensor_run_requests_execute_on_the_instance(lane):
    settings, defs, zone = lane
    w1, w2 = _past_windows(2)
    hashes = write_window(zone, w1, 5, sources=("a", "b"))
    write_window(zone, w2, 0)
    with instance_for_test() as instance:
        requests, cursor = sensor_tick(defs, instance, None)
        assert set(instance.get_dynamic_partitions(MEMPOOL_WINDOWS)) == {w1, w2}
        runs = run_sensor_requests(defs, instance, requests)
        assert [r.success for r in runs] == [True, True]
        # a second pass over the same requests launches nothing (run keys already used)
        assert run_sensor_requests(defs, instance, requests) == []
        run = instance.get_run_by_id(runs[0].run_id)
        assert run.tags["dagster/sensor_name"] == "mempool_window_sensor"
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        got = con.sql(f"select hash from mev.mempool_transactions where \"window\" = '{w1}' order by hash").fetchall()
        assert [h for (h,) in got] == sorted(hashes)
        assert con.sql(f"select count(*) from mev.mempool_transactions where \"window\" = '{w2}'").fetchone() == (0,)
        stats = con.sql(f"select source, txs_seen, coverage from mev.mempool_source_stats where \"window\" = '{w1}' order by source").fetchall()
        assert stats == [("a", 5, 1.0), ("b", 5, 1.0)]


def test_materialize_assets_is_idempotent_per_window(lane):
    settings, defs, zone = lane
    (w1,) = _past_windows(1)
    write_window(zone, w1, 4)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(MEMPOOL_WINDOWS, [w1])
        for _ in range(2):
            result = materialize(WINDOW_ASSETS, partition_key=w1, instance=instance, resources=defs.resources)
            assert result.success
        meta = result.asset_materializations_for_node("mempool_transactions")[0].metadata
        assert meta["dagster/row_count"].value == 4
        assert meta["sources"].value == ["a"]
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert con.sql("select count(*) from mev.mempool_transactions").fetchone() == (4,)


def test_an_empty_first_window_creates_empty_tables_downstream_can_read(lane):
    settings, defs, zone = lane
    (w1,) = _past_windows(1)
    write_window(zone, w1, 0)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(MEMPOOL_WINDOWS, [w1])
        result = materialize(WINDOW_ASSETS, partition_key=w1, instance=instance, resources=defs.resources)
        assert result.success
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        assert con.sql("select count(*) from mev.mempool_transactions").fetchone() == (0,)
        assert con.sql("select count(*) from mev.mempool_source_stats").fetchone() == (0,)
