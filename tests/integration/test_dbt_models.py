"""dbt daily rollups on a real Dagster instance and a real DuckDB warehouse.

Per-window assets are materialised from landing data written here, across two UTC dates; then the
dbt assets run ``dbt build``. Expected numbers are computed with polars from the landing rows this
test wrote, not read back from the per-window tables.
"""

import io
import json
import random
from dataclasses import dataclass

import duckdb
import polars as pl
import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    ExecuteInProcessResult,
    instance_for_test,
    materialize,
)
from eth_abi import encode

from mev_assets.assets.dbt import DBT_ASSETS, build_dbt_resource
from mev_assets.assets.features import tx_features
from mev_assets.assets.transactions import WINDOW_ASSETS
from mev_assets.core.lake import open_lake
from mev_assets.core.registry import DEFAULT_REGISTRY_PATH
from mev_assets.core.rollups import ROLLUP_SCHEMAS
from mev_assets.definitions import build_definitions
from mev_assets.ingest.landing import LandingZone
from mev_assets.partitions import MEMPOOL_WINDOWS
from mev_assets.resources.registry import ProtocolRegistryResource
from mev_assets.settings import Settings
from mev_assets.sql_command import run_sql
from tests.landing_factory import fake_hash, sourcelog_frame, tx_frame, tx_row

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

DAY1_WINDOWS = ["2024-05-01T23:58:00", "2024-05-01T23:59:00"]
DAY2_WINDOWS = ["2024-05-02T00:00:00", "2024-05-02T00:01:00"]
SOURCES = ("alpha", "beta", "gamma")
TX_KINDS = ["transfer", "transfer", "creation", "erc20_transfer", "erc20_transfer", "v2_swap", "v2_swap", "unknown"]
ERC20_TRANSFER = "0xa9059cbb"  # transfer(address,uint256)
SWAP_EXACT_ETH_FOR_TOKENS = "0x7ff36ab5"  # swapExactETHForTokens(uint256,address[],address,uint256)
UNISWAP_V2_ROUTER = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
TOKENS = ["0x6b175474e89094c44da98b954eedeac495271d0f", "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"]
GWEI = 10**9
PER_WINDOW = [*WINDOW_ASSETS, tx_features]


def _window_start_ms(window: str) -> int:
    return int(pl.Series([window]).str.to_datetime("%Y-%m-%dT%H:%M:%S", time_zone="UTC").dt.epoch("ms")[0])


def _calldata(rng: random.Random, kind: str, sender: str) -> tuple[str | None, str]:
    """(to, input) of one transaction of ``kind``, calldata ABI-encoded as a wallet would."""
    if kind == "transfer":
        return "0x" + f"{rng.randrange(25):040x}", "0x"
    if kind == "creation":
        return None, "0x6080604052" + rng.randbytes(40).hex()
    if kind == "erc20_transfer":
        args = encode(["address", "uint256"], ["0x" + f"{rng.randrange(25):040x}", rng.randrange(10**24)])
        return rng.choice(TOKENS), ERC20_TRANSFER + args.hex()
    if kind == "v2_swap":
        deadline = 1_714_608_000 + rng.randrange(3600)
        args = encode(
            ["uint256", "address[]", "address", "uint256"], [rng.randrange(10**20), [WETH, rng.choice(TOKENS)], sender, deadline]
        )
        return UNISWAP_V2_ROUTER, SWAP_EXACT_ETH_FOR_TOKENS + args.hex()
    return "0x" + f"{rng.randrange(25):040x}", "0xdeadbeef" + rng.randbytes(32).hex()


def _random_window(rng: random.Random, window: str, first_id: int, n: int) -> tuple[list[dict], list[tuple]]:
    """``n`` varied transactions of one window: senders, recipients, creations, calldata, fees,
    values and which sources saw them how late. Returns landing rows and sourcelog sightings."""
    start = _window_start_ms(window)
    rows, sightings = [], []
    for i in range(n):
        tx_hash = fake_hash(first_id + i)
        first_seen = start + rng.randrange(0, 59_000)
        seen_by = [SOURCES[0]] + [s for s in SOURCES[1:] if rng.random() < 0.6]
        rng.shuffle(seen_by)
        sender = "0x" + f"{rng.randrange(12):040x}"
        to, data = _calldata(rng, rng.choice(TX_KINDS), sender)
        fee_cap = rng.randrange(5 * GWEI, 400 * GWEI)
        tx_type = rng.choice([0, 2, 2, 2])
        tip = fee_cap if tx_type == 0 else rng.randrange(0, min(fee_cap, 5 * GWEI))
        size = (len(data) - 2) // 2
        rows.append(
            tx_row(
                tx_hash,
                first_seen,
                seen_by[0],
                tx_type=tx_type,
                **{"from": sender, "to": to},
                value=str(rng.choice([0, rng.randrange(10**12, 10**21)])),
                gas_price=str(fee_cap),
                gas_fee_cap=str(fee_cap),
                gas_tip_cap=str(tip),
                input=data,
                data_size=size,
                data_4bytes=data[:10] if size >= 4 else "",
            )
        )
        delay = 0
        for source in seen_by:
            sightings.append((first_seen + delay, tx_hash, source))
            delay += rng.randrange(1, 250)
    return rows, sightings


def _write(zone: LandingZone, window: str, rows: list[dict], sightings: list[tuple], collector_id="c1", seq=1):
    zone.write_segment("mempool", window, collector_id, seq, tx_frame(rows))
    zone.write_segment("sourcelog", window, collector_id, seq, sourcelog_frame(sightings, collector_id))
    zone.mark_sealed(window, collector_id)


def _landing_frames(written: dict[str, tuple[list, list]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    txs = pl.concat([tx_frame(rows).with_columns(pl.lit(w).alias("window")) for w, (rows, _) in written.items()])
    log = pl.concat([sourcelog_frame(s).with_columns(pl.lit(w).alias("window")) for w, (_, s) in written.items()])
    date = pl.col("window").str.slice(0, 10).str.to_date("%Y-%m-%d").alias("date")
    return txs.with_columns(date), log.with_columns(date)


def expected_daily_stats(txs: pl.DataFrame) -> pl.DataFrame:
    fee_cap = pl.col("gas_fee_cap").cast(pl.Float64) / 1e9
    tip = pl.col("gas_tip_cap").cast(pl.Float64) / 1e9
    return (
        txs.group_by("date")
        .agg(
            pl.col("window").n_unique().alias("active_windows"),
            pl.len().alias("tx_count"),
            pl.col("from").n_unique().alias("unique_senders"),
            pl.col("to").drop_nulls().n_unique().alias("unique_recipients"),
            pl.col("to").is_null().sum().alias("contract_creations"),
            ((pl.col("data_4bytes") != "") & pl.col("to").is_not_null()).sum().alias("contract_calls"),
            pl.from_epoch(pl.col("timestamp_ms").min(), "ms").alias("first_seen_at"),
            pl.from_epoch(pl.col("timestamp_ms").max(), "ms").alias("last_seen_at"),
            (pl.col("value").cast(pl.Float64, strict=False) / 1e18).sum().alias("total_value_eth"),
            *[fee_cap.quantile(q, "linear").alias(f"max_fee_gwei_p{int(q * 100)}") for q in (0.5, 0.9, 0.99)],
            *[tip.quantile(q, "linear").alias(f"tip_gwei_p{int(q * 100)}") for q in (0.5, 0.9, 0.99)],
        )
        .sort("date")
    )


def expected_source_coverage(txs: pl.DataFrame, log: pl.DataFrame) -> pl.DataFrame:
    """Coverage over the day's transactions; latency percentiles per window (transactions seen by
    two or more sources) weighted by how many transactions each was measured over."""
    firsts = log.group_by("window", "hash", "source").agg(pl.col("timestamp_ms").min(), pl.col("date").first())
    delays = firsts.with_columns(
        (pl.col("timestamp_ms") - pl.col("timestamp_ms").min().over("window", "hash")).alias("delay"),
        pl.len().over("window", "hash").alias("n_sources"),
    )
    per_window = (
        delays.filter(pl.col("n_sources") > 1)
        .group_by("window", "source")
        .agg(
            pl.col("date").first(),
            pl.len().alias("n"),
            pl.col("delay").max().alias("latency_max_ms"),
            *[pl.col("delay").quantile(q, "linear").alias(f"p{int(q * 100)}") for q in (0.5, 0.9, 0.99)],
        )
    )
    latency = per_window.group_by("date", "source").agg(
        *[((pl.col(f"p{p}") * pl.col("n")).sum() / pl.col("n").sum()).alias(f"latency_p{p}_ms") for p in (50, 90, 99)],
        pl.col("latency_max_ms").max(),
    )
    day_txs = txs.group_by("date").agg(pl.len().alias("day_tx_count"))
    counts = delays.group_by("date", "source").agg(
        pl.col("window").n_unique().alias("windows_seen"),
        pl.len().alias("txs_seen"),
        (pl.col("n_sources") == 1).sum().alias("unique_to_source"),
        (pl.col("delay") == 0).sum().alias("first_arrivals"),
    )
    return (
        counts.join(day_txs, on="date")
        .with_columns(
            (pl.col("txs_seen") / pl.col("day_tx_count")).alias("coverage"),
            (pl.col("first_arrivals") / pl.col("day_tx_count")).alias("first_arrival_share"),
        )
        .join(latency, on=["date", "source"], how="left")
        .sort("date", "source")
    )


def expected_protocol_mix(features: pl.DataFrame) -> pl.DataFrame:
    """From the tx_features rows: unattributed transactions under their decode status."""
    labelled = features.with_columns(
        pl.col("window").str.slice(0, 10).str.to_date("%Y-%m-%d").alias("date"),
        pl.coalesce("protocol", pl.format("({})", "decode_status")).alias("protocol"),
    )
    day_txs = labelled.group_by("date").agg(pl.len().alias("day_tx_count"))
    return (
        labelled.group_by("date", "protocol")
        .agg(
            pl.len().alias("tx_count"),
            (pl.col("decode_status") == "decoded").sum().alias("decoded_txs"),
            pl.col("from").n_unique().alias("unique_senders"),
        )
        .join(day_txs, on="date")
        .with_columns((pl.col("tx_count") / pl.col("day_tx_count")).alias("share_of_day"))
        .drop("day_tx_count")
        .sort("date", "protocol")
    )


def _query(settings, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        return con.sql(sql).pl()


def _assert_frames_close(got: pl.DataFrame, want: pl.DataFrame, key: list[str]):
    got = got.sort(key).select(want.columns)
    assert got.height == want.height, (got, want)
    for column in want.columns:
        g, w = got.get_column(column).to_list(), want.get_column(column).to_list()
        if want.schema[column].is_float():
            assert g == pytest.approx(w, rel=1e-9, abs=1e-9), column
        else:
            assert g == w, column


@dataclass
class Warehouse:
    settings: Settings
    instance: DagsterInstance
    resources: dict
    zone: LandingZone
    written: dict[str, tuple[list, list]]  # window -> (landing rows, sightings)
    first_build: ExecuteInProcessResult


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """Four windows over two dates through the per-window assets, then one ``dbt build``.

    Module-scoped: every dbt run costs seconds, so the tests share the first build; the
    incremental test runs last and only adds to it."""
    with pytest.MonkeyPatch.context() as env:
        for key in ("DAGSTER_HOME", "MEV_SOURCES", "MEV_CHAIN_ID", "MEV_COLLECTOR_ID", "MEV_STORAGE"):
            env.delenv(key, raising=False)
        env.setenv("MEV_HOME", str(tmp_path_factory.mktemp("dbt") / "mev_home"))
        env.setenv("MEV_WINDOW_SECONDS", "60")
        settings = Settings.from_env()
        resources = {
            **build_definitions(settings).resources,
            "protocol_registry": ProtocolRegistryResource(path=str(DEFAULT_REGISTRY_PATH)),
            "dbt": build_dbt_resource(settings),
        }
        zone = LandingZone(settings.landing_dir)
        rng = random.Random(20240501)
        written = {}
        for i, window in enumerate(DAY1_WINDOWS + DAY2_WINDOWS):
            written[window] = _random_window(rng, window, first_id=1000 * (i + 1), n=25 + 5 * i)
            _write(zone, window, *written[window])
        with instance_for_test() as instance:
            instance.add_dynamic_partitions(MEMPOOL_WINDOWS, list(written))
            for window in written:
                assert materialize(PER_WINDOW, partition_key=window, instance=instance, resources=resources).success
            first_build = materialize(DBT_ASSETS, instance=instance, resources=resources)
            yield Warehouse(settings, instance, resources, zone, written, first_build)


def _check_results(result) -> dict[tuple[str, str], object]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def test_dbt_sources_map_to_the_per_window_assets_and_tests_are_checks():
    (rollups,) = DBT_ASSETS
    deps = {key.to_user_string(): {d.asset_key.to_user_string() for d in spec.deps} for key, spec in rollups.specs_by_key.items()}
    assert deps["stg_mempool_transactions"] == {"mempool_transactions"}
    assert deps["stg_mempool_source_stats"] == {"mempool_source_stats"}
    assert deps["daily_mempool_stats"] == {"stg_mempool_transactions"}
    assert deps["daily_source_coverage"] == {"stg_mempool_transactions", "stg_mempool_source_stats"}
    assert deps["stg_tx_features"] == {"tx_features"}
    assert deps["daily_protocol_mix"] == {"stg_tx_features"}
    assert rollups.partitions_def is None
    assert rollups.node_def.pool == "duckdb_writer"  # dbt writes the DuckDB file: one writer at a time
    checks = {(c.asset_key.to_user_string(), c.name) for c in rollups.check_specs}
    assert ("daily_mempool_stats", "unique_daily_mempool_stats_date") in checks
    assert ("daily_source_coverage", "unique_combination_daily_source_coverage_date__source") in checks
    assert ("stg_mempool_transactions", "expression_is_true_stg_mempool_transactions_tip_wei_max_fee_wei") in checks


def test_daily_rollups_match_independent_computation(warehouse):
    settings, result = warehouse.settings, warehouse.first_build
    assert result.success
    built = {e.asset_key for e in result.get_asset_materialization_events()}
    assert {AssetKey("daily_mempool_stats"), AssetKey("daily_source_coverage")} <= built

    checks = _check_results(result)
    assert len(checks) == len(list(DBT_ASSETS[0].check_specs))
    assert [name for name, e in checks.items() if not e.passed] == []

    txs, log = _landing_frames(warehouse.written)
    stats = _query(settings, "select * from mev_daily.daily_mempool_stats")
    _assert_frames_close(stats, expected_daily_stats(txs), ["date"])
    coverage = _query(settings, "select * from mev_daily.daily_source_coverage")
    _assert_frames_close(coverage, expected_source_coverage(txs, log), ["date", "source"])

    mix = _query(settings, "select * from mev_daily.daily_protocol_mix")
    features = _query(settings, 'select "window", "from", protocol, decode_status from mev.tx_features')
    assert features.height == txs.height
    _assert_frames_close(mix, expected_protocol_mix(features), ["date", "protocol"])
    # the Uniswap V2 router swaps written above are that protocol's transactions, every one decoded
    v2 = mix.filter(pl.col("protocol") == "uniswap_v2_router02").sort("date")
    v2_written = txs.filter(pl.col("to") == UNISWAP_V2_ROUTER).group_by("date").len().sort("date")
    assert v2.get_column("tx_count").to_list() == v2.get_column("decoded_txs").to_list() == v2_written["len"].to_list()
    assert mix.group_by("date").agg(pl.col("share_of_day").sum()).get_column("share_of_day").to_list() == pytest.approx([1, 1])


def test_rollups_are_exported_to_the_lake_and_queryable_with_sql(warehouse):
    """After the build, one lake file per rollup and day, a chdb view per rollup, the same rows as
    DuckDB; the export is in the run's metadata (an observation per rollup)."""
    settings = warehouse.settings
    lake = open_lake(settings)
    for model in ROLLUP_SCHEMAS:
        assert lake.days(model) == ["2024-05-01", "2024-05-02"], model
    observations = {
        e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata
        for e in warehouse.first_build.get_asset_observation_events()
    }
    assert set(observations) == set(ROLLUP_SCHEMAS)
    assert observations["daily_mempool_stats"]["lake_days_exported"].value == ["2024-05-01", "2024-05-02"]
    assert observations["daily_mempool_stats"]["rebuilt_since"].value == "(full build)"

    got = pl.read_csv(io.StringIO(run_sql(
        settings, "SELECT toString(date) AS date, tx_count, unique_senders, tip_gwei_p90 FROM daily_mempool_stats ORDER BY date",
        "csv")))
    want = _query(settings, "select strftime(date, '%Y-%m-%d') as date, tx_count, unique_senders, tip_gwei_p90 "
                            "from mev_daily.daily_mempool_stats order by date")
    assert got.get_column("date").to_list() == want.get_column("date").to_list() == ["2024-05-01", "2024-05-02"]
    assert got.get_column("tx_count").to_list() == want.get_column("tx_count").to_list()
    assert got.get_column("tip_gwei_p90").to_list() == pytest.approx(want.get_column("tip_gwei_p90").to_list())
    coverage = run_sql(settings, "SELECT count() AS n FROM daily_source_coverage", "json")
    assert json.loads(coverage) == [{"n": _query(settings, "select count(*) as n from mev_daily.daily_source_coverage")["n"][0]}]
    mix = json.loads(run_sql(settings, "SELECT protocol, sum(tx_count) AS txs FROM daily_protocol_mix "
                                       "GROUP BY protocol ORDER BY protocol", "json"))
    assert {r["protocol"]: r["txs"] for r in mix} == dict(
        _query(settings, "select protocol, sum(tx_count)::bigint as txs from mev_daily.daily_protocol_mix group by all").rows()
    )


def test_incremental_rebuild_keeps_retired_days_and_flags_broken_rows(warehouse):
    settings, instance, resources, zone = warehouse.settings, warehouse.instance, warehouse.resources, warehouse.zone
    written = dict(warehouse.written)
    day1_before = _query(settings, "select * from mev_daily.daily_mempool_stats where date = '2024-05-01'")

    # Retention drops day 1 from the per-window tables; its rollup must survive the next build.
    with duckdb.connect(str(settings.duckdb_path)) as con:
        for table in ("mempool_transactions", "mempool_source_stats", "tx_features"):
            con.execute(f"delete from mev.{table} where \"window\" < '2024-05-02'")

    # A late segment re-runs the last window of day 2: more rows, one a broken import
    # (priority fee above the max fee) that must fail a check without being dropped.
    late_window = DAY2_WINDOWS[-1]
    rng = random.Random(7)
    late_rows, late_sightings = _random_window(rng, late_window, first_id=90_000, n=6)
    late_rows[0]["gas_tip_cap"] = str(int(late_rows[0]["gas_fee_cap"]) + 1)
    _write(zone, late_window, late_rows, late_sightings, collector_id="c-late")
    assert materialize(PER_WINDOW, partition_key=late_window, instance=instance, resources=resources).success

    result = materialize(DBT_ASSETS, instance=instance, resources=resources, raise_on_error=False)
    checks = _check_results(result)
    broken = checks[("stg_mempool_transactions", "expression_is_true_stg_mempool_transactions_tip_wei_max_fee_wei")]
    assert broken.passed is False
    assert broken.severity == AssetCheckSeverity.WARN
    assert [name for name, e in checks.items() if not e.passed] == [("stg_mempool_transactions", broken.check_name)]
    assert result.success  # a warning check does not stop the rollups

    day1_after = _query(settings, "select * from mev_daily.daily_mempool_stats where date = '2024-05-01'")
    assert day1_after.equals(day1_before)

    rows, sightings = written[late_window]
    written[late_window] = (rows + late_rows, sightings + late_sightings)
    txs, log = _landing_frames(written)
    day2 = pl.col("date") == pl.date(2024, 5, 2)
    _assert_frames_close(
        _query(settings, "select * from mev_daily.daily_mempool_stats where date = '2024-05-02'"),
        expected_daily_stats(txs.filter(day2)),
        ["date"],
    )
    _assert_frames_close(
        _query(settings, "select * from mev_daily.daily_source_coverage where date = '2024-05-02'"),
        expected_source_coverage(txs.filter(day2), log.filter(day2)),
        ["date", "source"],
    )
    _assert_frames_close(
        _query(settings, "select * from mev_daily.daily_protocol_mix where date = '2024-05-02'"),
        expected_protocol_mix(_query(settings, 'select "window", "from", protocol, decode_status from mev.tx_features')),
        ["date", "protocol"],
    )
    assert _query(settings, "select count(*) as n from mev_daily.daily_protocol_mix where date = '2024-05-01'")["n"][0] > 0

    # the incremental build re-exported the days it rebuilt: the lake (and `mev-assets sql`) has the late rows
    observed = {e.asset_key.to_user_string(): e.event_specific_data.asset_observation.metadata
                for e in result.get_asset_observation_events()}
    assert observed["daily_mempool_stats"]["rebuilt_since"].value == "2024-05-01"
    counts = json.loads(run_sql(settings, "SELECT toString(date) AS day, tx_count FROM daily_mempool_stats ORDER BY day", "json"))
    assert counts == [
        {"day": "2024-05-01", "tx_count": day1_before["tx_count"][0]},
        {"day": "2024-05-02", "tx_count": txs.filter(day2).height},
    ]
