"""ClickHouse over the pipeline's tables, on chdb: views over real lake files, the `sql` command,
and the server DDL / migration runner / window loads driven through clickhouse-connect's chdb
client (the same client calls the server backend makes). Every example query of docs/sql.md runs
here on both backends and must give the same answer."""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import clickhouse_connect
import polars as pl
import pyarrow.fs as pafs
import pytest
from dagster import EnvVar

from mev_assets.core.calldata import decode_calldata
from mev_assets.core.clickhouse import (
    ROLLUPS,
    TABLES,
    TX_FEATURES_IDENTITY_COLUMNS,
    ClickHouseError,
    EmbeddedClickHouse,
    LakeSource,
    Warehouse,
    migrations,
)
from mev_assets.core.fee_features import fee_features
from mev_assets.core.lake import Lake
from mev_assets.core.registry import load_registry
from mev_assets.core.rollups import conform
from mev_assets.core.schemas import BLOCKS_SCHEMA
from mev_assets.core.source_stats import source_stats
from mev_assets.core.transactions import assemble_transactions, sightings
from mev_assets.core.txparse import decode_raw_transaction, transaction_to_row
from mev_assets.core.windows import key_start_ms
from mev_assets.resources.clickhouse import build_clickhouse_resource
from mev_assets.sql_command import SqlError, run_sql
from tests.landing_factory import sourcelog_frame, tx_frame, tx_row

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "mainnet"
SQL_DOC = ROOT / "docs" / "sql.md"
MAX_UINT256 = 2**256 - 1

# Recent days: the server tables' TTL would drop windows older than the retention.
TODAY = datetime.now(timezone.utc).date()
YESTERDAY = TODAY - timedelta(days=1)
W_REAL = f"{TODAY}T00:00:00"  # the 9 transactions of mainnet block 19807080
W_NEXT = f"{TODAY}T00:01:00"
W_LATE = f"{YESTERDAY}T23:59:00"
WINDOWS = (W_LATE, W_REAL, W_NEXT)
SOURCES = ("alpha", "beta", "gamma")
SELECTORS = ("0xa9059cbb", "0x095ea7b3", "0x7ff36ab5", "0x38ed1739", "0x3593564c")


def mainnet_rows() -> list[dict]:
    trace = json.loads((FIXTURES / "block-19807080-trace.json").read_text())
    raws = [t["meta"]["byte_code"] for t in trace[0]["block_trace"]["txn_info"]]
    return [transaction_to_row(decode_raw_transaction(raw)) for raw in raws]


def window_frames(window: str, real: list[dict], rng: random.Random, n_synthetic: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Landing rows (real mainnet txs and synthetic ones) seen by 1-3 sources, assembled into the
    window's two tables exactly as the pipeline assembles them."""
    start = key_start_ms(window)
    rows, log = [], []
    senders = [f"0x{i:040x}" for i in range(1, 7)]
    for i, base in enumerate(real):
        rows.append({**tx_row(base["hash"], start + 50 + i * 7, "alpha"), **base})
    for i in range(n_synthetic):
        size = rng.choice((0, 68, 68, 196, 260, 580))
        selector = rng.choice(SELECTORS) if size else ""
        value = str(MAX_UINT256) if i == 0 and window == W_NEXT else str(rng.choice((0, 0, 10**15, 3 * 10**18, rng.getrandbits(70))))
        tip = rng.choice((10**8, 10**9, 2 * 10**9, 15 * 10**8, 3 * 10**10))
        rows.append(tx_row(
            f"0x{rng.getrandbits(256):064x}", start + 100 + i * 97, rng.choice(SOURCES),
            **{
                "from": senders[min(int(rng.paretovariate(1.2)) - 1, 5)],
                "to": None if i % 11 == 3 else f"0x{rng.getrandbits(160):040x}",
                "value": value,
                "nonce": i,
                "tx_type": rng.choice((0, 2, 2, 2)),
                "gas_tip_cap": str(tip),
                "gas_fee_cap": str(tip + rng.choice((20, 30, 45)) * 10**9),
                "data_size": size,
                "data_4bytes": selector,
                "input": "0x" + (selector[2:] + "00" * (size - 4) if size else ""),
            },
        ))
    for row in rows:
        seen_by = [row["source"]] + [s for s in SOURCES if s != row["source"] and rng.random() < 0.6]
        for j, src in enumerate(seen_by):
            log.append((row["timestamp_ms"] + j * rng.randint(1, 40), row["hash"], src))
    landing, sourcelog = tx_frame(rows), sourcelog_frame(log)
    txs = assemble_transactions(landing, sourcelog, window)
    return txs, source_stats(sightings(landing, sourcelog), window)


def write_lake_file(root: Path, table: str, window: str, frame: pl.DataFrame) -> Path:
    """Through the lake's own writer (temp file named '.…', fsync, atomic rename over the target)."""
    return Path(Lake(pafs.LocalFileSystem(), str(root)).write_window(table, window, frame).path)


@pytest.fixture(scope="module")
def lake_frames() -> dict[str, dict[str, pl.DataFrame]]:
    rng = random.Random(19807080)
    real = mainnet_rows()
    frames: dict[str, dict[str, pl.DataFrame]] = {"mempool_transactions": {}, "mempool_source_stats": {}, "tx_features": {}}
    for window in WINDOWS:
        txs, stats = window_frames(window, real if window == W_REAL else [], rng, 40)
        frames["mempool_transactions"][window] = txs
        frames["mempool_source_stats"][window] = stats
        frames["tx_features"][window] = tx_features_frame(txs, window)
    return frames


def tx_features_frame(txs: pl.DataFrame, window: str) -> pl.DataFrame:
    """The window's tx_features as the asset builds it: calldata decoded with the shipped registry,
    fee features against a head seen 5 s before the window (base fee 12 gwei)."""
    head = {
        "received_ms": key_start_ms(window) - 5_000, "number": 19_807_080, "hash": "0x" + "ab" * 32,
        "parent_hash": "0x" + "cd" * 32, "timestamp": key_start_ms(window) // 1000 - 5,
        "base_fee_per_gas": str(12 * 10**9), "gas_used": 15_000_000, "gas_limit": 30_000_000,
        "tx_hashes": [], "source": "alpha", "collector_id": "c1",
    }
    blocks = pl.DataFrame([head], schema=BLOCKS_SCHEMA)
    decoded = decode_calldata(txs.select("hash", "from", "to", "value", "input"), load_registry())
    return (
        txs.select(TX_FEATURES_IDENTITY_COLUMNS)
        .join(decoded, on="hash", how="left")
        .join(fee_features(txs, blocks, window), on="hash", how="left")
        .sort("timestamp_ms", "hash")
    )


@pytest.fixture(scope="module")
def lake_root(tmp_path_factory, lake_frames) -> Path:
    root = tmp_path_factory.mktemp("mev_home") / "lake"
    for table, by_window in lake_frames.items():
        for window, frame in by_window.items():
            write_lake_file(root, table, window, frame)
    return root


@pytest.fixture(scope="module")
def engine(lake_root) -> EmbeddedClickHouse:
    return EmbeddedClickHouse(LakeSource.directory(lake_root))


def all_rows(lake_frames, table: str) -> pl.DataFrame:
    return pl.concat(list(lake_frames[table].values()))


# --- views over the lake ------------------------------------------------------------------------


def test_every_lake_table_is_a_view_typed_like_the_table_spec(engine):
    with engine.session() as session:
        tables = session.query_polars("SHOW TABLES").get_column("name").to_list()
        assert tables == sorted([*ROLLUPS, "mempool_source_stats", "mempool_transactions", "tx_features"])
        for name, spec in TABLES.items():
            described = session.query_polars(f"DESCRIBE {name}").select("name", "type").rows()
            assert described == [*spec.columns(), ("date", "Date")]


def test_tx_features_spec_is_the_asset_checks_schema():
    from mev_assets.assets.features import IDENTITY_COLUMNS
    from mev_assets.checks import TX_FEATURES_SCHEMA

    assert list(TX_FEATURES_IDENTITY_COLUMNS) == IDENTITY_COLUMNS
    assert TABLES["tx_features"].schema == TX_FEATURES_SCHEMA


def test_tx_features_keep_nulls_and_lists(engine, lake_frames):
    """Decoded fields that do not apply stay NULL (not ''), a swap's path is an Array, a null
    list reads as []."""
    want = all_rows(lake_frames, "tx_features")
    assert want.get_column("protocol").null_count() > 0 and want.get_column("path").null_count() > 0
    got = engine.query_polars(
        "SELECT countIf(protocol IS NULL) AS no_protocol, countIf(base_fee_gwei IS NULL) AS no_base_fee, "
        "countIf(length(path) > 0) AS with_path, countIf(decode_status = 'decoded') AS decoded, count() AS n "
        "FROM tx_features"
    ).row(0, named=True)
    assert got == {
        "no_protocol": want.get_column("protocol").null_count(),
        "no_base_fee": want.get_column("base_fee_gwei").null_count(),
        "with_path": want.filter(pl.col("path").list.len() > 0).height,
        "decoded": want.filter(pl.col("decode_status") == "decoded").height,
        "n": want.height,
    }


def test_rows_window_and_date_match_the_files(engine, lake_frames):
    got = engine.query_polars(
        "SELECT `window`, toString(date) AS day, count() AS n, uniqExact(hash) AS hashes "
        "FROM mempool_transactions GROUP BY `window`, day ORDER BY `window`"
    )
    expected = sorted((w, w[:10], f.height, f.height) for w, f in lake_frames["mempool_transactions"].items())
    assert got.rows() == expected
    stats = engine.query_polars("SELECT `window`, source, txs_seen FROM mempool_source_stats ORDER BY `window`, source")
    assert stats.rows() == all_rows(lake_frames, "mempool_source_stats").select("window", "source", "txs_seen").sort(
        "window", "source").rows()


def test_real_mainnet_transactions_round_trip(engine):
    real = {r["hash"]: r for r in mainnet_rows()}
    got = engine.query_polars(
        f"SELECT hash, `from`, `to`, value, gas_tip_cap, data_4bytes, raw_tx FROM mempool_transactions "
        f"WHERE `window` = '{W_REAL}' AND hash IN ({', '.join(repr(h) for h in real)})"
    )
    assert got.height == 9
    for row in got.iter_rows(named=True):
        want = real[row["hash"]]
        assert {k: row[k] for k in ("from", "to", "value", "gas_tip_cap", "data_4bytes", "raw_tx")} == {
            "from": want["from"], "to": want["to"], "value": want["value"], "gas_tip_cap": want["gas_tip_cap"],
            "data_4bytes": want["data_4bytes"], "raw_tx": want["raw_tx"]}


def test_sources_list_column_with_arrayjoin(engine, lake_frames):
    txs = all_rows(lake_frames, "mempool_transactions")
    got = engine.query_polars(
        "SELECT arrayJoin(sources) AS source, count() AS seen FROM mempool_transactions GROUP BY source ORDER BY source"
    )
    expected = txs.select(pl.col("sources").explode().alias("source")).group_by("source").len().sort("source")
    assert got.rows() == expected.rows()
    first = engine.query_polars("SELECT sources[1] AS first, count() AS n FROM mempool_transactions GROUP BY first ORDER BY first")
    assert first.rows() == txs.group_by(pl.col("sources").list.first().alias("first")).len().sort("first").rows()


def test_wei_decimal_strings_cast_exactly_to_uint256(engine, lake_frames):
    txs = all_rows(lake_frames, "mempool_transactions")
    values = [int(v) for v in txs.get_column("value")]
    assert MAX_UINT256 in values
    got = engine.query_polars(
        "SELECT toString(max(toUInt256(value))) AS top, "
        f"toString(sumIf(toUInt256(value), value != '{MAX_UINT256}')) AS rest, "
        "toString(sum(toUInt256(gas_fee_cap) * gas)) AS max_fee_budget FROM mempool_transactions"
    ).row(0, named=True)
    assert got["top"] == str(MAX_UINT256)
    assert got["rest"] == str(sum(v for v in values if v != MAX_UINT256))
    assert got["max_fee_budget"] == str(sum(int(f) * g for f, g in txs.select("gas_fee_cap", "gas").iter_rows()))


def test_contract_creations_keep_a_null_to(engine, lake_frames):
    txs = all_rows(lake_frames, "mempool_transactions")
    nulls = engine.query_polars("SELECT countIf(`to` IS NULL) AS n FROM mempool_transactions").item()
    assert nulls == txs.get_column("to").null_count() > 0


def test_filter_on_window_or_date_reads_only_those_files(tmp_path, lake_frames):
    root = tmp_path / "lake"
    good = lake_frames["mempool_transactions"][W_REAL]
    write_lake_file(root, "mempool_transactions", W_REAL, good)
    corrupt = root / "mempool_transactions" / f"date={YESTERDAY}" / f"window={W_LATE}.parquet"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"not parquet")
    engine = EmbeddedClickHouse(LakeSource.directory(root))
    with engine.session() as session:
        assert session.query_polars(f"SELECT count() AS n FROM mempool_transactions WHERE `window` = '{W_REAL}'").item() == good.height
        assert session.query_polars(f"SELECT count() AS n FROM mempool_transactions WHERE date = '{TODAY}'").item() == good.height
        with pytest.raises(ClickHouseError) as failure:
            session.query_polars("SELECT count() FROM mempool_transactions")
    message = str(failure.value)
    assert "\n" not in message and message.startswith("Code: ") and str(corrupt) in message


def test_unreadable_new_table_is_skipped_with_its_reason(tmp_path, lake_frames):
    root = tmp_path / "lake"
    write_lake_file(root, "mempool_transactions", W_REAL, lake_frames["mempool_transactions"][W_REAL])
    broken = root / "mev_candidates" / f"date={TODAY}" / f"window={W_REAL}.parquet"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"PAR1 truncated")
    with EmbeddedClickHouse(LakeSource.directory(root)).session() as session:
        assert "mev_candidates" not in session.views and "mev_candidates" in session.skipped
        assert session.query_polars("SELECT count() AS n FROM mempool_transactions").item() > 0
        with pytest.raises(ClickHouseError) as failure:
            session.query_polars("SELECT count() FROM mev_candidates")
    message = str(failure.value)
    assert "UNKNOWN_TABLE" in message and "mev_candidates has no view (Code: " in message and "\n" not in message


def test_empty_lake_has_typed_empty_tables(settings_factory):
    settings = settings_factory(MEV_CLICKHOUSE_URL="")  # embedded even if the shell names a server
    assert not settings.lake_dir.exists()
    engine = EmbeddedClickHouse(LakeSource.from_settings(settings))
    with engine.session() as session:
        assert session.views == sorted([*ROLLUPS, "mempool_source_stats", "mempool_transactions", "tx_features"])
        counts = session.query_polars(
            "SELECT (SELECT count() FROM mempool_transactions) AS txs, (SELECT count() FROM mempool_source_stats) AS stats")
        assert counts.rows() == [(0, 0)]
    assert run_sql(settings, "SELECT hash, sources FROM mempool_transactions", "table") == "(0 rows)"
    assert run_sql(settings, "SELECT hash, sources FROM mempool_transactions", "csv") == '"hash","sources"'
    assert json.loads(run_sql(settings, "SELECT hash FROM mempool_transactions", "json")) == []


def test_queries_run_while_a_window_file_is_replaced(tmp_path, lake_frames):
    """The lake replaces a window's file by atomic rename while queries read it: every query sees
    the old or the new version of the window, never an error or a mix."""
    root = tmp_path / "lake"
    full = lake_frames["mempool_transactions"][W_NEXT]
    part = full.head(17)
    write_lake_file(root, "mempool_transactions", W_REAL, lake_frames["mempool_transactions"][W_REAL])
    write_lake_file(root, "mempool_transactions", W_NEXT, full)
    other = lake_frames["mempool_transactions"][W_REAL].height
    engine = EmbeddedClickHouse(LakeSource.directory(root))
    stop, replaced, seen, errors = threading.Event(), [0], [], []

    def writer():
        while not stop.is_set():
            write_lake_file(root, "mempool_transactions", W_NEXT, part if replaced[0] % 2 else full)
            replaced[0] += 1

    def reader():
        try:
            for _ in range(12):
                with engine.session() as session:
                    seen.append(session.query_polars(
                        f"SELECT countIf(`window` = '{W_NEXT}') AS n, uniqExact(hash) = count() AS unique_hashes, "
                        f"countIf(`window` = '{W_REAL}') AS other FROM mempool_transactions").row(0))
        except Exception as exc:  # surfaced below with the failing query's message
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join(timeout=90)
    stop.set()
    threads[0].join(timeout=30)
    assert not errors, errors[0]
    assert len(seen) == 24 and replaced[0] > 1
    assert {n for n, _, _ in seen} <= {full.height, part.height}
    assert all(unique == 1 and n_other == other for _, unique, n_other in seen)


# --- the sql command ----------------------------------------------------------------------------


@pytest.fixture
def lake_settings(settings_factory, lake_root):
    settings = settings_factory(MEV_CLICKHOUSE_URL="")  # embedded even if the shell names a server
    settings.lake_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(lake_root, settings.lake_dir)
    return settings


def test_run_sql_formats(lake_settings, lake_frames):
    txs = all_rows(lake_frames, "mempool_transactions")
    query = "SELECT `from` AS sender, count() AS txs, groupUniqArray(1)(sources) AS some_sources FROM mempool_transactions GROUP BY sender ORDER BY txs DESC, sender"
    expected = txs.group_by(pl.col("from").alias("sender")).len("txs").sort(["txs", "sender"], descending=[True, False])

    as_csv = pl.read_csv(io.StringIO(run_sql(lake_settings, query, "csv")))
    assert as_csv.select("sender", "txs").rows() == expected.rows()
    as_json = json.loads(run_sql(lake_settings, query, "json"))
    assert [(r["sender"], int(r["txs"])) for r in as_json] == expected.rows()
    assert all(isinstance(r["some_sources"][0], list) for r in as_json)
    table = run_sql(lake_settings, query, "table").splitlines()
    assert re.search(r"sender.*txs.*some_sources", table[0])
    assert len(table) == expected.height + 2 and expected.row(0)[0] in table[1]


def test_run_sql_errors_are_one_line(lake_settings):
    with pytest.raises(SqlError) as unknown_table:
        run_sql(lake_settings, "SELECT * FROM mempool_txs", "csv")
    assert str(unknown_table.value).startswith("Code: 60.") and "mempool_txs" in str(unknown_table.value)
    with pytest.raises(SqlError, match="Syntax error"):
        run_sql(lake_settings, "SELEC 1", "table")
    with pytest.raises(SqlError, match="unknown format 'xml'"):
        run_sql(lake_settings, "SELECT 1", "xml")
    with pytest.raises(SqlError, match="empty query"):
        run_sql(lake_settings, " ; ", "csv")
    for failure in (unknown_table,):
        assert "\n" not in str(failure.value)


def test_run_sql_server_url_errors(settings_factory):
    with pytest.raises(SqlError, match="MEV_CLICKHOUSE_URL must look like"):
        run_sql(settings_factory(MEV_CLICKHOUSE_URL="tcp://127.0.0.1:9000"), "SELECT 1", "csv")
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SqlError) as refused:
        run_sql(settings_factory(MEV_CLICKHOUSE_URL=f"http://default:s3cret@127.0.0.1:{port}"), "SELECT 1", "csv")
    assert "\n" not in str(refused.value) and "s3cret" not in str(refused.value)


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_cli_sql_command(lake_settings, lake_frames):
    env = {**os.environ, "MEV_HOME": str(lake_settings.mev_home), "MEV_CLICKHOUSE_URL": ""}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mev_assets.cli", "sql", *args], env=env, capture_output=True,
                              text=True, timeout=100)

    done = cli("SELECT count() AS n FROM mempool_transactions", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ['"n"', str(sum(f.height for f in lake_frames["mempool_transactions"].values()))]
    failed = cli("SELECT * FROM mempool_txs")
    assert failed.returncode != 0 and "UNKNOWN_TABLE" in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1


def test_resource_reads_the_lake_when_no_server_is_set(lake_settings, lake_frames):
    resource = build_clickhouse_resource(lake_settings)
    assert not resource.is_server and resource.migrate() is None
    assert resource.load_window("mempool_transactions", W_NEXT, lake_frames["mempool_transactions"][W_NEXT]) is None
    total = sum(f.height for f in lake_frames["mempool_transactions"].values())
    assert resource.query_polars("SELECT count() AS n FROM mempool_transactions").item() == total


def test_resource_keeps_the_server_url_an_env_var(settings_factory):
    settings = settings_factory(MEV_CLICKHOUSE_URL="http://reader:pw@127.0.0.1:8123/mev")
    resource = build_clickhouse_resource(settings)
    assert isinstance(resource.url, EnvVar)  # resolved at run time, never written into run config
    assert resource.process_config_and_initialize().url == settings.clickhouse_url


# --- server DDL and loads, on chdb through clickhouse-connect --------------------------------------


def chdb_client():
    return clickhouse_connect.get_client(dsn="chdb://memory")


def load_everything(warehouse: Warehouse, lake_frames) -> None:
    for table, by_window in lake_frames.items():
        for window, frame in by_window.items():
            warehouse.load_window(table, window, frame)


@pytest.fixture
def warehouse():
    client = chdb_client()
    database = f"mev_test_{random.getrandbits(48):012x}"
    yield Warehouse(client, database=database, retention_days=30)
    client.command(f"DROP DATABASE IF EXISTS {database}")


def count(warehouse: Warehouse, table: str, where: str = "1", final: bool = False) -> int:
    return warehouse.client.query(
        f"SELECT count() FROM {warehouse.table(table)}{' FINAL' if final else ''} WHERE {where}").result_rows[0][0]


def test_ddl_matches_the_lake_views_and_migrates_once(warehouse):
    report = warehouse.migrate()
    assert report.applied == [m.path.name for m in migrations()] and "V001__mempool_tables.sql" in report.applied
    assert report.ttl_changed == []
    assert warehouse.migrate().applied == []
    recorded = warehouse.client.query(f"SELECT version, name FROM {warehouse.table('schema_migrations')} ORDER BY version").result_rows
    assert recorded == [(m.version, m.name) for m in migrations()]
    assert [m.path.name for m in migrations()][:2] == ["V001__mempool_tables.sql", "V002__tx_features.sql"]
    for name, spec in TABLES.items():
        described = [tuple(r[:2]) for r in warehouse.client.query(f"DESCRIBE {warehouse.table(name)}").result_rows]
        assert described == [*spec.columns(), ("date", "Date"), ("loaded_at", "DateTime64(6, 'UTC')")]
        create = warehouse.client.command(f"SHOW CREATE TABLE {warehouse.table(name)}")
        assert "ENGINE = ReplacingMergeTree(loaded_at)" in create and "PARTITION BY date" in create
        assert "TTL date + toIntervalDay(30)" in create


def test_retention_change_modifies_the_ttl(warehouse):
    warehouse.migrate()
    shorter = Warehouse(warehouse.client, warehouse.database, retention_days=7)
    report = shorter.migrate()
    assert report.applied == [] and sorted(report.ttl_changed) == sorted(TABLES)
    assert shorter.migrate().ttl_changed == []
    create = warehouse.client.command(f"SHOW CREATE TABLE {warehouse.table('mempool_transactions')}")
    assert "TTL date + toIntervalDay(7)" in create


def test_window_loads_are_idempotent(warehouse, lake_frames):
    warehouse.migrate()
    frame = lake_frames["mempool_transactions"][W_NEXT]
    where = f"`window` = '{W_NEXT}'"
    for _ in range(2):
        assert warehouse.load_window("mempool_transactions", W_NEXT, frame) == frame.height
        assert count(warehouse, "mempool_transactions", where) == frame.height
    stored = warehouse.client.query(
        f"SELECT uniqExact(hash), uniqExact(loaded_at), toString(max(toUInt256(value))) FROM {warehouse.table('mempool_transactions')}"
    ).result_rows[0]
    assert stored == (frame.height, 1, str(MAX_UINT256))
    corrected = frame.head(11)  # a re-run with fewer rows leaves only the new rows
    warehouse.load_window("mempool_transactions", W_NEXT, corrected)
    assert count(warehouse, "mempool_transactions", where) == 11 == count(warehouse, "mempool_transactions", where, final=True)
    warehouse.load_window("mempool_transactions", W_NEXT, corrected.clear())
    assert count(warehouse, "mempool_transactions", where) == 0


def test_tx_features_window_loads_are_idempotent_and_deletable(warehouse, lake_frames):
    warehouse.migrate()
    frame = lake_frames["tx_features"][W_REAL]
    where = f"`window` = '{W_REAL}'"
    for _ in range(2):
        assert warehouse.load_window("tx_features", W_REAL, frame) == frame.height
        assert count(warehouse, "tx_features", where) == frame.height == count(warehouse, "tx_features", where, final=True)
    stored = pl.from_arrow(warehouse.client.query_arrow(
        f"SELECT * EXCEPT (date, loaded_at) FROM {warehouse.table('tx_features')} ORDER BY timestamp_ms, hash"
    ))
    expected = frame.with_columns(pl.col(c).fill_null([]) for c in ("path", "fee_tiers", "commands"))
    assert stored.columns == frame.columns
    for column in ("hash", "protocol", "method", "decode_status", "amount_in", "path", "base_fee_gwei", "underpriced"):
        assert stored.get_column(column).to_list() == expected.get_column(column).to_list(), column
    assert warehouse.windows()["tx_features"] == [W_REAL]
    warehouse.delete_window("tx_features", W_REAL)  # retention
    assert count(warehouse, "tx_features") == 0 and warehouse.windows()["tx_features"] == []


def rollup_frame(day: str, sources: list[str], txs: int) -> pl.DataFrame:
    """A daily_source_coverage day in the lake's file types."""
    n = len(sources)
    return conform("daily_source_coverage", pl.DataFrame({
        "date": [date.fromisoformat(day)] * n, "source": sources, "windows_seen": [1440] * n,
        "txs_seen": [txs - i for i in range(n)], "unique_to_source": [i for i in range(n)],
        "first_arrivals": [txs // (i + 1) for i in range(n)], "shared_txs": [txs // 2] * n,
        "day_tx_count": [txs] * n, "coverage": [1 - i / 10 for i in range(n)], "first_arrival_share": [0.5] * n,
        "latency_p50_ms": [None] + [12.5] * (n - 1), "latency_p90_ms": [None] + [80.0] * (n - 1),
        "latency_p99_ms": [None] + [300.0] * (n - 1), "latency_max_ms": [None] + [2500] * (n - 1),
    }))


def test_rollup_tables_match_the_lake_files_and_load_per_day_idempotently(warehouse, tmp_path):
    warehouse.migrate()
    for name, spec in ROLLUPS.items():
        described = [tuple(r[:2]) for r in warehouse.client.query(f"DESCRIBE {warehouse.table(name)}").result_rows]
        assert described == [*spec.columns(), ("loaded_at", "DateTime64(6, 'UTC')")]
        create = warehouse.client.command(f"SHOW CREATE TABLE {warehouse.table(name)}")
        assert "ENGINE = ReplacingMergeTree(loaded_at)" in create and "TTL" not in create  # rollups outlive retention
    day1, day2 = rollup_frame("2024-05-01", ["alpha", "beta"], 900), rollup_frame("2024-05-02", ["alpha", "beta", "gamma"], 1200)
    for _ in range(2):
        assert warehouse.load_day("daily_source_coverage", "2024-05-01", day1) == 2
        assert warehouse.load_day("daily_source_coverage", "2024-05-02", day2) == 3
    assert count(warehouse, "daily_source_coverage") == 5 == count(warehouse, "daily_source_coverage", final=True)
    rebuilt = rollup_frame("2024-05-02", ["alpha"], 1300)  # a rebuilt day replaces the day's rows only
    warehouse.load_day("daily_source_coverage", "2024-05-02", rebuilt)
    assert warehouse.days() == {name: (["2024-05-01", "2024-05-02"] if name == "daily_source_coverage" else [])
                                for name in ROLLUPS}
    assert warehouse.client.query(
        f"SELECT toString(date), source, day_tx_count, latency_p50_ms FROM {warehouse.table('daily_source_coverage')} "
        "ORDER BY date, source").result_rows == [
        ("2024-05-01", "alpha", 900, None), ("2024-05-01", "beta", 900, 12.5), ("2024-05-02", "alpha", 1300, None)]
    with pytest.raises(ClickHouseError, match="rows of other days"):
        warehouse.load_day("daily_source_coverage", "2024-05-03", day1)
    with pytest.raises(ClickHouseError, match="no ClickHouse rollup table"):
        warehouse.load_day("mempool_transactions", "2024-05-01", day1)

    # the same day files in the lake: one chdb view per rollup, typed like the server table
    lake = Lake(pafs.LocalFileSystem(), str(tmp_path / "lake"))
    lake.write_day("daily_source_coverage", "2024-05-01", day1)
    lake.write_day("daily_source_coverage", "2024-05-02", day2)
    lake.write_day("daily_source_coverage", "2024-05-02", rebuilt)  # replaced, not appended
    assert lake.days("daily_source_coverage") == ["2024-05-01", "2024-05-02"]
    engine = EmbeddedClickHouse(LakeSource.directory(tmp_path / "lake"))
    with engine.session() as session:
        assert set(ROLLUPS) <= set(session.views)
        for name, spec in ROLLUPS.items():
            assert session.query_polars(f"DESCRIBE {name}").select("name", "type").rows() == spec.columns()
        assert session.query_polars(
            "SELECT toString(date) AS d, source, day_tx_count, latency_p50_ms FROM daily_source_coverage ORDER BY d, source"
        ).rows() == [("2024-05-01", "alpha", 900, None), ("2024-05-01", "beta", 900, 12.5), ("2024-05-02", "alpha", 1300, None)]


def test_lake_windows_load_into_the_server_tables(warehouse, lake_root, lake_frames):
    warehouse.migrate()
    lake = Lake(pafs.LocalFileSystem(), str(lake_root))
    for _ in range(2):
        for table in TABLES:
            loaded = warehouse.load_lake_windows(lake, table, lake.windows(table))
            assert loaded == {w: f.height for w, f in sorted(lake_frames[table].items())}
    assert count(warehouse, "mempool_transactions") == sum(f.height for f in lake_frames["mempool_transactions"].values())


def test_window_load_rejects_bad_input(warehouse, lake_frames):
    warehouse.migrate()
    frame = lake_frames["mempool_transactions"][W_NEXT]
    with pytest.raises(ClickHouseError, match="rows of other windows"):
        warehouse.load_window("mempool_transactions", W_REAL, frame)
    with pytest.raises(ClickHouseError, match="not a window key"):
        warehouse.load_window("mempool_transactions", "2024-05-05 12:00", frame)
    with pytest.raises(ClickHouseError, match="lacks columns"):
        warehouse.load_window("mempool_transactions", W_NEXT, frame.drop("sources"))
    with pytest.raises(ClickHouseError, match="no ClickHouse table"):
        warehouse.load_window("mempool_candidates", W_NEXT, frame)
    assert count(warehouse, "mempool_transactions") == 0


def test_ttl_drops_windows_older_than_the_retention(warehouse, lake_frames):
    warehouse.migrate()
    old_day = TODAY - timedelta(days=40)
    old_window = f"{old_day}T12:00:00"
    old = lake_frames["mempool_transactions"][W_NEXT].with_columns(pl.lit(old_window).alias("window"))
    warehouse.load_window("mempool_transactions", old_window, old)
    warehouse.load_window("mempool_transactions", W_NEXT, lake_frames["mempool_transactions"][W_NEXT])
    warehouse.client.command(f"OPTIMIZE TABLE {warehouse.table('mempool_transactions')} FINAL")
    windows = warehouse.client.query(f"SELECT DISTINCT `window` FROM {warehouse.table('mempool_transactions')}").result_rows
    assert windows == [(W_NEXT,)]


def test_an_applied_migration_must_not_change(warehouse, tmp_path):
    ddl = tmp_path / "ddl"
    ddl.mkdir()
    for migration in migrations():
        shutil.copy(migration.path, ddl / migration.path.name)
    warehouse.migrate(ddl)
    edited = ddl / "V001__mempool_tables.sql"
    edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(ClickHouseError, match="changed after it was applied"):
        warehouse.migrate(ddl)


# --- docs/sql.md examples, on both backends --------------------------------------------------------


def doc_examples() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", SQL_DOC.read_text(), flags=re.DOTALL)


def test_docs_have_the_researcher_examples():
    text = "\n".join(doc_examples())
    assert len(doc_examples()) >= 6
    for needle in ("GROUP BY sender", "data_4bytes", "FROM tx_features", "mempool_source_stats", "arrayJoin", "quantiles"):
        assert needle in text


@pytest.mark.parametrize("index", range(len(doc_examples())))
def test_doc_example_gives_the_same_answer_on_both_backends(index, engine, lake_frames, warehouse):
    sql = doc_examples()[index]
    embedded = engine.query_text(sql, "CSVWithNames")
    assert embedded.count("\n") >= 2, f"example {index} returned no rows on the lake:\n{sql}"
    warehouse.migrate()
    load_everything(warehouse, lake_frames)
    reader = clickhouse_connect.get_client(dsn=f"chdb://memory/{warehouse.database}")  # names resolve in it
    on_server = reader.raw_query(sql, fmt="CSVWithNames").decode()
    assert on_server == embedded


# --- S3 lake -------------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_s3_lake_through_an_s3_endpoint(settings_factory, lake_frames, monkeypatch):
    """An S3 lake (moto's S3 server on 127.0.0.1): written by the lake writer, listed, and read by
    chdb's s3() with credentials from the AWS chain. moto does not check signatures, so this proves
    the URLs, listing and plumbing, not the credentials themselves."""
    from moto.server import ThreadedMotoServer

    from mev_assets.core.lake import open_lake

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
            monkeypatch.setenv(name, value)
        settings = settings_factory(
            MEV_CLICKHOUSE_URL="", MEV_STORAGE="s3", MEV_S3_BUCKET="mev-lake", MEV_S3_PREFIX="team",
            MEV_S3_ENDPOINT_URL=f"http://{host}:{port}",
        )
        import boto3

        boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="us-east-1").create_bucket(Bucket="mev-lake")
        lake = open_lake(settings)
        for window in (W_REAL, W_NEXT):
            lake.write_window("mempool_transactions", window, lake_frames["mempool_transactions"][window])
        source = LakeSource.from_settings(settings)
        assert source.s3 is not None and source.s3.access_key_id == "testing"
        assert "testing" not in repr(source.s3)
        got = pl.read_csv(io.StringIO(run_sql(
            settings, "SELECT `window`, count() AS n FROM mempool_transactions GROUP BY `window` ORDER BY `window`", "csv")))
        assert got.rows() == [(w, lake_frames["mempool_transactions"][w].height) for w in (W_REAL, W_NEXT)]
        assert run_sql(settings, "SELECT count() FROM mempool_source_stats", "csv").splitlines()[1] == "0"
    finally:
        server.stop()
