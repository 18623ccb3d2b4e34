"""Bad input from a node is quarantined with its reason; the lane keeps going.

A scripted node on loopback speaks the real JSON-RPC subscription protocol and pushes broken
JSON, non-transaction results, real mainnet transactions (wrong chain id for a devnet collector),
forged signatures and objects with missing fields, then valid transactions."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from mev_assets.ingest.collector import CollectorThread
from mev_assets.ingest.fakenode import FakeNode, synthetic_tx_objects
from mev_assets.ingest.landing import LandingZone
from mev_assets.settings import PROJECT_ROOT, Settings, Source
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

MAINNET_BLOCK = PROJECT_ROOT / "tests/fixtures/mainnet/block-19807080.json"


def mainnet_objects() -> list[dict]:
    data = json.loads(MAINNET_BLOCK.read_text())
    block = data[0] if isinstance(data, list) else data
    return block["transactions"]


def settings_for(tmp_path: Path, url: str, chain_id: int) -> Settings:
    return Settings(
        mev_home=tmp_path / "home", dagster_home=tmp_path / "home" / "dagster", window_seconds=1, chain_id=chain_id,
        sources=(Source("fake", url),), collector_id="q1", seal_delay_ms=150, metrics_port=0,
    )


def quarantine_rows(lz: LandingZone) -> pl.DataFrame:
    frames = [lz.read_quarantine(k) for k in lz.windows("mempool")]
    return pl.concat(frames) if frames else pl.DataFrame()


@pytest.mark.timeout(60)
def test_bad_messages_are_quarantined_with_reasons_and_valid_ones_still_land(tmp_path):
    valid = synthetic_tx_objects(5, 31337)
    mainnet = mainnet_objects()[:3]
    forged = dict(valid[0], **{"from": "0x" + "77" * 20})  # signature recovers to someone else
    tampered = dict(valid[1], value=hex(int(valid[1]["value"], 16) + 1))  # re-encodes to another hash
    missing = {k: v for k, v in valid[2].items() if k != "nonce"}
    with FakeNode() as node:
        s = settings_for(tmp_path, node.url, 31337)
        lz = LandingZone(s.landing_dir)
        with CollectorThread(s) as ct:
            c = ct.collector
            node.wait_subscribed(1)
            node.push_text('{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":')  # cut off
            node.push_text("not json at all")
            node.push_result(12345)
            node.push_txs(mainnet + [forged, tampered, missing])
            node.push_txs(valid)
            wait_for(lambda: c.accepted_total == 5 and c.quarantined_total == 9, what="all handled")
            assert c.lanes[0].sessions == 1 and c.lanes[0].connected  # never dropped the connection
        codes = {k: c.metrics.value("mev_collector_quarantined_total", {"source": "fake", "reason": k})
                 for k in ("malformed_json", "bad_message", "wrong_chain_id", "bad_signature", "hash_mismatch", "missing_field")}
        assert codes == {"malformed_json": 2, "bad_message": 1, "wrong_chain_id": 3, "bad_signature": 1,
                         "hash_mismatch": 1, "missing_field": 1}
    txs = pl.concat([lz.read_area("mempool", k).frame for k in lz.windows()])
    assert sorted(txs["hash"]) == sorted(o["hash"] for o in valid)  # the forged hash was accepted once valid
    q = quarantine_rows(lz)
    assert q.height == 9 and set(q["source"]) == {"fake"} and set(q["collector_id"]) == {"q1"}
    reasons = q["reason"].to_list()
    assert sum(r.startswith("wrong_chain_id: chain id 1 != expected 31337") for r in reasons) == 3
    assert any(r.startswith("bad_signature: signature recovers to") for r in reasons)
    assert any(r.startswith("missing_field:") and "nonce" in r for r in reasons)
    assert any(r.startswith("malformed_json:") for r in reasons)
    # the payload is kept: the raw text for broken JSON, the object otherwise
    by_reason = dict(zip(q["reason"], q["payload"]))
    assert "not json at all" in q["payload"].to_list()
    wrong_chain = [p for r, p in by_reason.items() if r.startswith("wrong_chain_id")]
    assert json.loads(wrong_chain[0])["hash"] in {o["hash"] for o in mainnet}


@pytest.mark.timeout(60)
def test_mainnet_objects_are_accepted_by_a_mainnet_collector(tmp_path):
    objs = mainnet_objects()
    with FakeNode(chain_id=1) as node:
        s = settings_for(tmp_path, node.url, 1)
        lz = LandingZone(s.landing_dir)
        with CollectorThread(s) as ct:
            node.wait_subscribed(1)
            node.push_txs(objs)
            wait_for(lambda: ct.collector.accepted_total == len(objs), what="mainnet block accepted")
    txs = pl.concat([lz.read_area("mempool", k).frame for k in lz.windows()])
    assert sorted(txs["hash"]) == sorted(o["hash"].lower() for o in objs)
    by_hash = {o["hash"]: o for o in objs}
    for row in txs.iter_rows(named=True):
        o = by_hash[row["hash"]]
        assert row["from"] == o["from"].lower() and row["nonce"] == int(o["nonce"], 16)
        assert row["value"] == str(int(o["value"], 16)) and row["chain_id"] == 1
