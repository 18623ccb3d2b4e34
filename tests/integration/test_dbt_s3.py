"""dbt daily rollups in S3 storage mode, end to end against moto's S3 server on loopback.

The per-window assets write the lake on S3; ``dbt build`` (target ``s3``) reads it through the
dbt-duckdb plugin ``mev_assets.dbt_lake_plugin`` into a local DuckDB file; the rollups are then
exported to the S3 lake, one file per day, and ``mev-assets sql`` reads them from there.
"""

import io
import random

import duckdb
import polars as pl
import pytest
from dagster import AssetKey, instance_for_test, materialize

from mev_assets.assets.dbt import DBT_ASSETS, dbt_duckdb_path
from mev_assets.core.lake import open_lake
from mev_assets.core.registry import DEFAULT_REGISTRY_PATH
from mev_assets.core.rollups import ROLLUP_SCHEMAS
from mev_assets.definitions import build_definitions
from mev_assets.ingest.landing import LandingZone
from mev_assets.partitions import MEMPOOL_WINDOWS
from mev_assets.resources.registry import ProtocolRegistryResource
from mev_assets.sql_command import run_sql
from tests.integration.test_dbt_models import (
    DAY1_WINDOWS,
    DAY2_WINDOWS,
    PER_WINDOW,
    _landing_frames,
    _random_window,
    _write,
    expected_daily_stats,
)
from tests.integration.test_s3_mode import PREFIX, _keys, _s3_env
from tests.integration.test_s3_mode import s3_server as s3_server  # the fixture

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_dbt_rollups_read_and_export_the_s3_lake(settings_factory, s3_server):
    url, client, bucket = s3_server
    settings = settings_factory(**_s3_env(url, bucket), MEV_WINDOW_SECONDS="60", MEV_CLICKHOUSE_URL="")
    defs = build_definitions(settings)
    assert defs.resolve_job_def("daily_rollups_job") is not None
    assert "daily_rollups_schedule" in {s.name for s in defs.schedules}
    resources = {**defs.resources, "protocol_registry": ProtocolRegistryResource(path=str(DEFAULT_REGISTRY_PATH))}

    zone = LandingZone.from_settings(settings)
    rng = random.Random(20240501)
    written = {}
    for i, window in enumerate(DAY1_WINDOWS + DAY2_WINDOWS):
        written[window] = _random_window(rng, window, first_id=1000 * (i + 1), n=20 + 3 * i)
        _write(zone, window, *written[window])

    with instance_for_test() as instance:
        instance.add_dynamic_partitions(MEMPOOL_WINDOWS, list(written))
        for window in written:
            assert materialize(PER_WINDOW, partition_key=window, instance=instance, resources=resources).success
        first = materialize(DBT_ASSETS, instance=instance, resources=resources)
        assert first.success
        assert {AssetKey(m) for m in ROLLUP_SCHEMAS} <= {e.asset_key for e in first.get_asset_materialization_events()}

        # the rollups are in the bucket, one file per day, and `mev-assets sql` (chdb on S3) reads them
        day_files = [k for k in _keys(client, bucket, f"{PREFIX}/lake/daily_mempool_stats/") if k.endswith(".parquet")]
        assert day_files == [f"{PREFIX}/lake/daily_mempool_stats/date={d}/part.parquet" for d in ("2024-05-01", "2024-05-02")]
        txs, _ = _landing_frames(written)
        want = expected_daily_stats(txs)
        got = pl.read_csv(io.StringIO(run_sql(
            settings, "SELECT toString(date) AS date, tx_count, unique_senders, contract_creations "
            "FROM daily_mempool_stats ORDER BY date", "csv")))
        assert got.rows() == [
            (str(d), n, s, c) for d, n, s, c in want.select("date", "tx_count", "unique_senders", "contract_creations").rows()
        ]
        assert open_lake(settings).days("daily_protocol_mix") == ["2024-05-01", "2024-05-02"]

        # the next build rebuilds from the latest day minus the lookback: the plugin reads only those days
        late_window = DAY2_WINDOWS[-1]
        late_rows, late_sightings = _random_window(random.Random(3), late_window, first_id=90_000, n=4)
        _write(zone, late_window, late_rows, late_sightings, collector_id="c-late")
        assert materialize(PER_WINDOW, partition_key=late_window, instance=instance, resources=resources).success
        second = materialize(DBT_ASSETS, instance=instance, resources=resources)
        assert second.success
        observed = {e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata
                    for e in second.get_asset_observation_events()}
        assert observed["daily_mempool_stats"]["rebuilt_since"].value == "2024-05-01"

    with duckdb.connect(str(dbt_duckdb_path(settings)), read_only=True) as con:
        read_windows = [r[0] for r in con.execute('select distinct "window" from mev_lake.mempool_transactions order by 1').fetchall()]
    assert read_windows == DAY1_WINDOWS + DAY2_WINDOWS  # lookback 1 day: both days of this lake
    day2 = pl.read_csv(io.StringIO(run_sql(settings, "SELECT tx_count FROM daily_mempool_stats WHERE date = '2024-05-02'", "csv")))
    assert day2["tx_count"].to_list() == [txs.filter(pl.col("date") == pl.date(2024, 5, 2)).height + len(late_rows)]
    # local disk holds the dbt DuckDB file (rollups), never a warehouse of the per-window tables
    assert not settings.duckdb_path.exists() and dbt_duckdb_path(settings).exists()
