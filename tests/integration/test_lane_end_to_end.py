"""The whole lane on real parts: anvil -> collector -> sensor -> assets in DuckDB.

Every transaction the traffic generator sends ends up exactly once in ``mempool_transactions``,
with the fields the node holds for it.
"""

from __future__ import annotations

import duckdb
import pytest
from dagster import instance_for_test

from mev_assets.core.windows import key_end_ms
from mev_assets.definitions import build_definitions
from mev_assets.devnet.anvil import free_port
from mev_assets.devnet.runner import start_devnet
from mev_assets.ingest.collector import CollectorThread
from mev_assets.ingest.landing import LandingZone, now_ms
from mev_assets.lane import run_sensor_requests, sensor_tick
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_sent_transactions_become_exactly_one_row_each(settings_factory, tmp_path):
    n = 120
    base = settings_factory(MEV_WINDOW_SECONDS=2, MEV_CHAIN_ID=31337, MEV_SEAL_DELAY_MS=300, MEV_GRACE_SECONDS=60)
    devnet = start_devnet(base, block_time=1, traffic=False, searcher=False, state_dir=tmp_path / "devnet")
    try:
        settings = settings_factory(
            MEV_WINDOW_SECONDS=2,
            MEV_CHAIN_ID=31337,
            MEV_SEAL_DELAY_MS=300,
            MEV_GRACE_SECONDS=60,
            MEV_SOURCES=f"primary={devnet.ws_url},secondary={devnet.ws_url}",
            MEV_COLLECTOR_ID="e2e",
            MEV_METRICS_PORT=free_port(),
        )
        with CollectorThread(settings) as ct:
            wait_for(lambda: all(lane.connected for lane in ct.collector.lanes), 30, "both subscriptions")
            sent = devnet.run_traffic(count=n)
            wait_for(lambda: ct.collector.accepted_total >= n, 60, f"{n} accepted")
            received = ct.collector.metrics.value
            wait_for(lambda: all(received("mev_collector_received_total", {"source": s}) >= n for s in ("primary", "secondary")),
                     60, "both sources to announce every tx")
        expected = {h.lower() for h in sent.hashes}
        assert len(expected) == n
        # the collector stopped cleanly, so every window it saw is sealed; the last one becomes
        # ready once it has closed (the sensor never takes an open window)
        last = max(LandingZone(settings.landing_dir).windows("mempool"))
        wait_for(lambda: now_ms() >= key_end_ms(last, 2), 10, "the last window to close")
        defs = build_definitions(settings)
        with instance_for_test() as instance:
            requests, _ = sensor_tick(defs, instance, None)
            runs = run_sensor_requests(defs, instance, requests)
            assert runs, f"no run requested: {requests}"
            failed = [r for r in runs if not r.success]
            assert not failed, [instance.all_logs(r.run_id) for r in failed][0][-5:]
        with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
            rows = con.sql('select hash, "from", nonce, sources, data_4bytes, "window" from mev.mempool_transactions').fetchall()
            hashes = [r[0] for r in rows]
            assert len(hashes) == len(set(hashes)) == n
            assert set(hashes) == expected
            assert all(sorted(r[3]) == ["primary", "secondary"] for r in rows)
            stats = con.sql("select source, sum(txs_seen) from mev.mempool_source_stats group by 1 order by 1").fetchall()
            assert stats == [("primary", n), ("secondary", n)]
        # fields agree with what the node holds for a sample of the transactions
        for tx_hash, sender, nonce, *_ in rows[:10]:
            node_tx = devnet.node.rpc("eth_getTransactionByHash", [tx_hash])
            assert node_tx["from"].lower() == sender and int(node_tx["nonce"], 16) == nonce
    finally:
        devnet.stop()
