"""``tx_features`` on real parts: devnet traffic through the collector, then the window job."""

from __future__ import annotations

import duckdb
import pytest
from dagster import AssetKey, instance_for_test

from mev_assets.core.windows import key_end_ms
from mev_assets.definitions import build_definitions
from mev_assets.devnet.anvil import free_port
from mev_assets.devnet.runner import start_devnet
from mev_assets.ingest.collector import CollectorThread
from mev_assets.ingest.landing import LandingZone, now_ms
from mev_assets.lane import run_sensor_requests, sensor_tick
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

def test_every_window_transaction_gets_features(settings_factory, tmp_path):
    n = 150
    env = dict(MEV_WINDOW_SECONDS=2, MEV_CHAIN_ID=31337, MEV_SEAL_DELAY_MS=300, MEV_GRACE_SECONDS=60)
    devnet = start_devnet(settings_factory(**env), block_time=1, traffic=False, searcher=False, state_dir=tmp_path / "dn")
    try:
        settings = settings_factory(**env, MEV_SOURCES=f"node={devnet.ws_url}", MEV_COLLECTOR_ID="feat",
                                    MEV_METRICS_PORT=free_port())
        with CollectorThread(settings) as ct:
            wait_for(lambda: ct.collector.lanes[0].connected, 30, "subscription")
            # a head before the first tx, so every tx has a base fee to bid against
            wait_for(lambda: ct.collector.metrics.value("mev_collector_blocks_total", {"source": "node"}) >= 1, 30, "a head")
            sent = devnet.run_traffic(count=n)
            wait_for(lambda: ct.collector.accepted_total >= n, 60, f"{n} accepted")
        last = max(LandingZone(settings.landing_dir).windows("mempool"))
        wait_for(lambda: now_ms() >= key_end_ms(last, 2), 10, "the last window to close")
        defs = build_definitions(settings)
        with instance_for_test() as instance:
            requests, _ = sensor_tick(defs, instance, None)
            runs = run_sensor_requests(defs, instance, requests)
            assert runs and all(r.success for r in runs)
            event = instance.get_latest_materialization_event(AssetKey("tx_features"))
            meta = event.asset_materialization.metadata
            assert "decoded_share_by_protocol" in meta and "undecoded_share" in meta
    finally:
        devnet.stop()
    kinds = {tx.hash.lower(): tx.kind for tx in sent.txs}
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        rows = con.sql(
            """select f.hash, f.protocol, f.method, f.decode_status, f.swap_kind, f.base_fee_per_gas,
                      f.effective_tip_per_gas, f.fee_rank, t."window"
               from mev.tx_features f join mev.mempool_transactions t using (hash)"""
        ).fetchall()
    assert {r[0] for r in rows} == set(kinds)
    by_hash = {r[0]: r for r in rows}
    expected_method = {"token_transfer": "transfer", "approval": "approve"}
    for tx_hash, kind in kinds.items():
        _, protocol, method, status, swap_kind, *_ = by_hash[tx_hash]
        if kind == "eth_transfer":
            assert status == "no_calldata"
        elif kind.startswith("swap"):
            assert (status, method) == ("decoded", kind)
            assert protocol and "uniswap_v2" in protocol.lower()
            assert swap_kind == ("exact_in" if kind.startswith("swapExact") else "exact_out")
        else:
            assert (status, method) == ("decoded", expected_method[kind])
    # every transaction saw a head (1-second blocks), and ranks run 1..n within each window
    assert all(r[5] is not None for r in rows)
    per_window: dict[str, list[int]] = {}
    for r in rows:
        per_window.setdefault(r[8], []).append(r[7])
    for ranks in per_window.values():
        assert sorted(ranks) == list(range(1, len(ranks) + 1))
