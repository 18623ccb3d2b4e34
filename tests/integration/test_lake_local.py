"""Local storage: materialising a window writes DuckDB AND the window's lake file; re-materialising
replaces both, never duplicates."""

# no `from __future__ import annotations`: Dagster inspects the asset's context annotation

import time

import duckdb
import polars as pl
import pytest
from dagster import (
    AssetExecutionContext,
    AssetKey,
    StaticPartitionsDefinition,
    asset,
    instance_for_test,
    materialize,
)

from mev_assets.core.lake import open_lake
from mev_assets.core.windows import key_for_start_ms, window_start_ms
from mev_assets.definitions import build_definitions
from mev_assets.ingest.landing import LandingZone
from mev_assets.lane import run_sensor_requests, sensor_tick
from mev_assets.resources.warehouse import WarehouseError, build_warehouse_io_manager
from tests.landing_factory import write_window

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _past_window(width: int = 60) -> str:
    return key_for_start_ms(window_start_ms(time.time_ns() // 1_000_000, width) - 10 * width * 1000)


def _duckdb_hashes(settings, table: str, window: str) -> list[str]:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        return sorted(r[0] for r in con.execute(f'select hash from mev.{table} where "window" = ?', [window]).fetchall())


def test_materialising_writes_the_lake_file_and_rematerialising_replaces_it(settings_factory):
    settings = settings_factory(MEV_WINDOW_SECONDS=60, MEV_GRACE_SECONDS=30)
    defs = build_definitions(settings)
    zone = LandingZone(settings.landing_dir)
    lake = open_lake(settings)
    window = _past_window()
    first = write_window(zone, window, 4, sources=("a", "b"))
    path = settings.lake_dir / "mempool_transactions" / f"date={window[:10]}" / f"window={window}.parquet"
    with instance_for_test() as instance:
        requests, cursor = sensor_tick(defs, instance, None)
        assert [r.success for r in run_sensor_requests(defs, instance, requests)] == [True]
        assert path.is_file()
        table = pl.read_parquet(path)
        assert sorted(table["hash"]) == sorted(first) == _duckdb_hashes(settings, "mempool_transactions", window)
        assert set(table["window"]) == {window}
        stats = lake.read_window("mempool_source_stats", window)
        assert sorted(stats["source"]) == ["a", "b"]
        run = instance.get_runs(limit=1)[0]
        records = instance.fetch_materializations(AssetKey("mempool_transactions"), limit=1).records
        assert records[0].asset_materialization.metadata["lake_file"].value == str(path)
        assert run.run_id == records[0].run_id

        # a late segment lands: the sensor re-runs the window, which replaces file and rows
        late = write_window(zone, window, 2, collector_id="c-late", offset=100)
        requests, cursor = sensor_tick(defs, instance, cursor)
        assert [r.success for r in run_sensor_requests(defs, instance, requests)] == [True]
    folder = path.parent
    assert sorted(p.name for p in folder.iterdir()) == [path.name]  # one file, no copy, no temp file
    expected = sorted(first + late)
    assert sorted(pl.read_parquet(path)["hash"]) == expected == _duckdb_hashes(settings, "mempool_transactions", window)
    assert lake.windows("mempool_transactions") == [window]


W1, W2, W3 = "2024-05-05T23:58:00", "2024-05-05T23:59:00", "2024-05-06T00:00:00"
windows_def = StaticPartitionsDefinition([W1, W2, W3])


@asset(partitions_def=windows_def, io_manager_key="warehouse_io_manager", metadata={"partition_expr": '"window"'})
def ranged_table(context: AssetExecutionContext) -> pl.DataFrame:
    """Rows for every window of the run except W2 (a window without rows)."""
    keys = [k for k in context.partition_keys if k != W2]
    bad = context.run.tags.get("test/stray")
    return pl.DataFrame({"window": keys + ([bad] if bad else []), "n": list(range(len(keys) + (1 if bad else 0)))})


def test_a_multi_window_run_writes_one_file_per_window_and_stray_rows_are_refused(settings_factory):
    settings = settings_factory()
    io = {"warehouse_io_manager": build_warehouse_io_manager(settings)}
    lake = open_lake(settings)
    range_tags = {"dagster/asset_partition_range_start": W1, "dagster/asset_partition_range_end": W3}
    with instance_for_test() as instance:
        result = materialize([ranged_table], instance=instance, resources=io, tags=range_tags)
        assert result.success
        assert lake.windows("ranged_table") == [W1, W2, W3]
        assert lake.read_window("ranged_table", W1)["window"].to_list() == [W1]
        assert lake.read_window("ranged_table", W2).height == 0  # an empty window still replaces its file
        assert lake.read_window("ranged_table", W3)["window"].to_list() == [W3]
        with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
            assert con.sql('select "window" from mev.ranged_table order by 1').fetchall() == [(W1,), (W3,)]

        # a row outside the run's windows would be silently lost by a per-window store: refused, nothing written
        before = {k: lake.read_window("ranged_table", k) for k in (W1, W2, W3)}
        bad = materialize([ranged_table], instance=instance, resources=io, partition_key=W1,
                          tags={"test/stray": W3}, raise_on_error=False)
        assert not bad.success
        failure = next(e for e in bad.all_events if e.event_type_value == "STEP_FAILURE")
        assert WarehouseError.__name__ in str(failure.step_failure_data.error)
        assert "outside the run's partition" in str(failure.step_failure_data.error)
        assert all(lake.read_window("ranged_table", k).equals(v) for k, v in before.items())
