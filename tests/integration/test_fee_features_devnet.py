"""Fee features against a real node: anvil -> collector -> landing zone -> fee_features.

The base fee a pending tx is measured against must be the base fee the node then really gives
the next block, and for a tx mined in that block the effective tip must be what its receipt
says it paid above the base fee.
"""

from __future__ import annotations

import polars as pl
import pytest

from mev_assets.core.fee_features import fee_features
from mev_assets.core.transactions import assemble_transactions
from mev_assets.core.windows import key_for_start_ms, key_start_ms
from mev_assets.devnet.anvil import free_port
from mev_assets.devnet.runner import start_devnet
from mev_assets.ingest.collector import CollectorThread
from mev_assets.ingest.landing import LandingZone
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

WINDOW_SECONDS = 2
N_TXS = 60


def _landed_blocks(zone: LandingZone) -> pl.DataFrame:
    frames = [zone.read_area("blocks", key).frame for key in zone.windows("blocks")]
    return pl.concat(frames) if frames else pl.DataFrame()


def test_base_fee_and_effective_tip_agree_with_the_node(settings_factory, tmp_path):
    env = dict(MEV_WINDOW_SECONDS=WINDOW_SECONDS, MEV_CHAIN_ID=31337, MEV_SEAL_DELAY_MS=300, MEV_GRACE_SECONDS=60)
    devnet = start_devnet(settings_factory(**env), block_time=1, traffic=False, searcher=False,
                          state_dir=tmp_path / "devnet")
    try:
        rpc = devnet.node.rpc
        settings = settings_factory(**env, MEV_SOURCES=f"primary={devnet.ws_url}", MEV_COLLECTOR_ID="fees",
                                    MEV_METRICS_PORT=free_port())
        zone = LandingZone(settings.landing_dir)
        with CollectorThread(settings) as ct:
            wait_for(lambda: all(lane.connected for lane in ct.collector.lanes), 30, "the subscription")
            # a tx needs a head received before it to know its base fee: let one land first
            wait_for(lambda: _landed_blocks(zone).height, 30, "a first head in the landing zone", poll=0.2)
            sent = devnet.run_traffic(count=N_TXS)
            wait_for(lambda: ct.collector.accepted_total >= N_TXS, 60, f"{N_TXS} accepted")
            receipts = {h.lower(): wait_for(lambda h=h: rpc("eth_getTransactionReceipt", [h]), 60, f"receipt of {h}")
                        for h in sent.hashes}
            last_mined = max(int(r["blockNumber"], 16) for r in receipts.values())
            # the heads that mined them are in sealed landing segments
            wait_for(lambda: _landed_blocks(zone).height and _landed_blocks(zone)["number"].max() >= last_mined,
                     30, f"head {last_mined} in the landing zone", poll=0.2)

        heads = _landed_blocks(zone)
        features = []
        for window in zone.windows("mempool"):
            landing_txs = zone.read_area("mempool", window).frame
            if landing_txs.height == 0:
                continue
            table = assemble_transactions(landing_txs, zone.read_area("sourcelog", window).frame, window)
            # as the asset does: the heads of this window and of the one before
            previous = key_for_start_ms(key_start_ms(window) - WINDOW_SECONDS * 1000)
            window_heads = pl.concat([zone.read_area("blocks", k).frame for k in (previous, window)])
            features.append(
                fee_features(table, window_heads, window)
                .join(table.select("hash", "timestamp_ms"), on="hash")
                .with_columns(window=pl.lit(window))
            )
        out = pl.concat(features)
        assert sorted(out["hash"]) == sorted(receipts)

        block_cache: dict[int, dict] = {}

        def block(number: int) -> dict:
            if number not in block_cache:
                block_cache[number] = rpc("eth_getBlockByNumber", [hex(number), False])
            return block_cache[number]

        first_receipt = heads.group_by("number").agg(pl.col("received_ms").min())
        mined_in_next = 0
        for row in out.iter_rows(named=True):
            # the head the tx arrived under: the highest-numbered one received by then
            seen = first_receipt.filter(pl.col("received_ms") <= row["timestamp_ms"])["number"].max()
            assert seen is not None, "the devnet mines every second: a head precedes every tx"
            pending_base_fee = int(block(seen + 1)["baseFeePerGas"], 16)
            assert row["base_fee_per_gas"] == str(pending_base_fee), (row["hash"], seen)

            receipt = receipts[row["hash"]]
            mined = int(receipt["blockNumber"], 16)
            if mined == seen + 1:
                mined_in_next += 1
                paid_tip = int(receipt["effectiveGasPrice"], 16) - pending_base_fee
                assert row["effective_tip_per_gas"] == str(paid_tip), row["hash"]
                assert row["underpriced"] is False

            node_tx = rpc("eth_getTransactionByHash", [row["hash"]])
            assert row["value_wei"] == str(int(node_tx["value"], 16))
            assert row["gas_limit"] == int(node_tx["gas"], 16)
            assert row["max_fee_per_gas"] == str(int(node_tx.get("maxFeePerGas", node_tx["gasPrice"]), 16))
        # most txs go into the very next block; require enough of them for the tip check to mean something
        assert mined_in_next >= N_TXS // 2, f"only {mined_in_next} of {N_TXS} mined in the block after their head"

        # the traffic generator sends each account's next nonce only after the previous one is mined
        assert not out["is_replacement"].any()
        assert set(out["nonce_gap"].drop_nulls()) <= {0}
        # fee ranks number each window's txs 1..n
        for ranks in out.group_by("window").agg(pl.col("fee_rank").sort())["fee_rank"]:
            assert ranks.to_list() == list(range(1, len(ranks) + 1))
    finally:
        devnet.stop()
