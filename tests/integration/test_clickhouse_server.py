"""The ClickHouse server backend against a real server: runs only when MEV_CLICKHOUSE_URL is set.

No ClickHouse server recent enough for clickhouse-connect can be installed on the build machines,
so these tests are skipped there; the same DDL, loads and queries run on chdb in
tests/unit/test_clickhouse_embedded.py. Each test works in a database of its own and drops it.

    MEV_CLICKHOUSE_URL=http://default:@127.0.0.1:8123 .venv/bin/pytest tests/integration/test_clickhouse_server.py
"""

from __future__ import annotations

import io
import json
import os
import random
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import polars as pl
import pytest

from mev_assets.core.clickhouse import TABLES, Warehouse, migrations, server_client
from mev_assets.core.source_stats import source_stats
from mev_assets.core.transactions import assemble_transactions, sightings
from mev_assets.core.txparse import decode_raw_transaction, transaction_to_row
from mev_assets.core.windows import key_start_ms
from mev_assets.sql_command import run_sql
from tests.landing_factory import sourcelog_frame, tx_frame, tx_row
from tests.unit.test_clickhouse_embedded import tx_features_frame

URL = os.environ.get("MEV_CLICKHOUSE_URL", "")
pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not URL, reason="MEV_CLICKHOUSE_URL is not set: no ClickHouse server to test against"),
]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mainnet"
TODAY = datetime.now(timezone.utc).date()
WINDOW = f"{TODAY}T00:00:00"


def window_tables(window: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The 9 transactions of mainnet block 19807080 plus synthetic ones, seen by two sources,
    assembled as the pipeline assembles them."""
    trace = json.loads((FIXTURES / "block-19807080-trace.json").read_text())
    real = [transaction_to_row(decode_raw_transaction(t["meta"]["byte_code"])) for t in trace[0]["block_trace"]["txn_info"]]
    rng = random.Random(7)
    start = key_start_ms(window)
    rows = [{**tx_row(r["hash"], start + 10 + i, "alpha"), **r} for i, r in enumerate(real)]
    rows += [tx_row(f"0x{rng.getrandbits(256):064x}", start + 500 + i, "beta", value=str(rng.getrandbits(80)))
             for i in range(30)]
    log = [(r["timestamp_ms"] + 15, r["hash"], "beta" if r["source"] == "alpha" else "alpha") for r in rows[::2]]
    landing, sourcelog = tx_frame(rows), sourcelog_frame(log)
    return assemble_transactions(landing, sourcelog, window), source_stats(sightings(landing, sourcelog), window)


@pytest.fixture
def warehouse():
    client, _ = server_client(URL, use_database=False)
    database = f"mev_it_{uuid.uuid4().hex[:12]}"
    try:
        yield Warehouse(client, database=database, retention_days=30)
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database}")
        client.close()


def count(warehouse: Warehouse, table: str, final: bool = False) -> int:
    return warehouse.client.query(f"SELECT count() FROM {warehouse.table(table)}{' FINAL' if final else ''}").result_rows[0][0]


def test_ddl_applies_once_with_the_retention_ttl(warehouse):
    report = warehouse.migrate()
    assert report.applied == [m.path.name for m in migrations()]
    assert warehouse.migrate().applied == []
    for name, spec in TABLES.items():
        described = [tuple(r[:2]) for r in warehouse.client.query(f"DESCRIBE {warehouse.table(name)}").result_rows]
        assert described[: len(spec.schema)] == spec.columns()
        assert "TTL date + toIntervalDay(30)" in warehouse.client.command(f"SHOW CREATE TABLE {warehouse.table(name)}")
    shorter = Warehouse(warehouse.client, warehouse.database, retention_days=7)
    assert sorted(shorter.migrate().ttl_changed) == sorted(TABLES)
    assert "TTL date + toIntervalDay(7)" in warehouse.client.command(
        f"SHOW CREATE TABLE {warehouse.table('mempool_transactions')}")


def test_window_load_is_idempotent(warehouse):
    warehouse.migrate()
    txs, stats = window_tables(WINDOW)
    features = tx_features_frame(txs, WINDOW)
    for _ in range(2):
        warehouse.load_window("mempool_transactions", WINDOW, txs)
        warehouse.load_window("mempool_source_stats", WINDOW, stats)
        warehouse.load_window("tx_features", WINDOW, features)
        assert count(warehouse, "mempool_transactions") == txs.height == count(warehouse, "mempool_transactions", final=True)
        assert count(warehouse, "mempool_source_stats") == stats.height
        assert count(warehouse, "tx_features") == features.height == count(warehouse, "tx_features", final=True)
    warehouse.load_window("mempool_transactions", WINDOW, txs.head(5))
    assert count(warehouse, "mempool_transactions") == 5
    warehouse.delete_window("tx_features", WINDOW)
    assert count(warehouse, "tx_features") == 0


def test_ttl_drops_expired_days(warehouse):
    warehouse.migrate()
    txs, _ = window_tables(WINDOW)
    old_window = f"{TODAY - timedelta(days=40)}T00:00:00"
    warehouse.load_window("mempool_transactions", old_window, txs.with_columns(pl.lit(old_window).alias("window")))
    warehouse.load_window("mempool_transactions", WINDOW, txs)
    warehouse.client.command(f"OPTIMIZE TABLE {warehouse.table('mempool_transactions')} FINAL")
    rows = warehouse.client.query(f"SELECT DISTINCT `window` FROM {warehouse.table('mempool_transactions')}").result_rows
    assert rows == [(WINDOW,)]


def test_sql_command_on_the_server(warehouse, settings_factory):
    warehouse.migrate()
    txs, _ = window_tables(WINDOW)
    warehouse.load_window("mempool_transactions", WINDOW, txs)
    parts = urlsplit(URL)
    settings = settings_factory(MEV_CLICKHOUSE_URL=urlunsplit(parts._replace(path=f"/{warehouse.database}")))
    got = pl.read_csv(io.StringIO(run_sql(
        settings, "SELECT sources[1] AS first_source, count() AS n FROM mempool_transactions GROUP BY first_source "
        "ORDER BY first_source", "csv")))
    expected = txs.group_by(pl.col("sources").list.first().alias("first_source")).len("n").sort("first_source")
    assert got.rows() == expected.rows()
    top = json.loads(run_sql(settings, "SELECT toString(sum(toUInt256(value))) AS wei FROM mempool_transactions", "json"))
    assert top == [{"wei": str(sum(int(v) for v in txs.get_column("value")))}]
