"""Collector mechanics against a scripted loopback node: sealing, markers, recovery, dedup,
hash-mode fallback, heads, late records and the per-id lock."""

from __future__ import annotations

import os
import time
from pathlib import Path

import polars as pl
import pytest

from mev_assets.core.windows import key_end_ms, key_for_start_ms, window_start_ms
from mev_assets.ingest.collector import Collector, CollectorLockedError, CollectorThread
from mev_assets.ingest.dedup import rebuild_seen
from mev_assets.ingest.fakenode import FakeNode, synthetic_tx_objects
from mev_assets.ingest.landing import LandingZone
from mev_assets.ingest.records import (
    encode_block,
    encode_sighting,
    encode_tx,
    tx_record,
)
from mev_assets.ingest.segments import WindowBatch, next_seq, seal_batch
from mev_assets.ingest.wal import WriteAheadLog, frame
from mev_assets.settings import Settings, Source
from tests.waiting import wait_for

CHAIN = 31337


def make_settings(tmp_path: Path, **kw) -> Settings:
    base = dict(
        mev_home=tmp_path / "home", dagster_home=tmp_path / "home" / "dagster", window_seconds=1,
        chain_id=CHAIN, collector_id="c1", seal_delay_ms=150, metrics_port=0, fetch_rate=1000.0, fetch_batch=10,
    )
    base.update(kw)
    return Settings(**base)


def area_rows(lz: LandingZone, area: str) -> pl.DataFrame:
    frames = [lz.read_area(area, k).frame for k in lz.windows(area)]
    return pl.concat(frames) if frames else pl.DataFrame()


def accepted(c: Collector) -> int:
    return c.accepted_total


@pytest.mark.timeout(60)
def test_sealing_writes_atomic_segments_and_a_marker_for_every_window(tmp_path):
    objs = synthetic_tx_objects(30, CHAIN)
    with FakeNode() as node:
        s = make_settings(tmp_path, sources=(Source("a", node.url),))
        lz = LandingZone(s.landing_dir)
        ct = CollectorThread(s, heartbeat_interval=0.2).start()
        c = ct.collector
        start_key = key_for_start_ms(window_start_ms(c.started_ms, 1))
        node.wait_subscribed(1)
        node.push_txs(objs)
        wait_for(lambda: accepted(c) == 30, what="30 accepted")
        # a few more windows pass with no traffic: they must be sealed too (empty partitions)
        last_busy = window_start_ms(int(time.time() * 1000), 1)
        target = key_for_start_ms(last_busy + 3000)
        wait_for(lambda: "c1" in lz.sealed_by(target), what="three empty windows sealed")
        beat = wait_for(lambda: [b for b in lz.heartbeats() if b["collector_id"] == "c1"], what="heartbeat")[0]
        assert beat["pid"] == os.getpid() and beat["window_seconds"] == 1 and not beat["stopped"]
        ct.stop()
    txs = area_rows(lz, "mempool")
    assert txs.height == 30 and txs["hash"].n_unique() == 30
    assert set(txs["hash"]) == {o["hash"] for o in objs}
    assert set(txs["collector_id"]) == {"c1"} and set(txs["source"]) == {"a"}
    log_ = area_rows(lz, "sourcelog")
    assert log_.height == 30 and set(log_["source"]) == {"a"}
    # every window from the collector's start to its stop has its marker, empty ones included
    keys = lz.windows("mempool")
    assert keys[0] == start_key
    expected = [key_for_start_ms(t) for t in range(window_start_ms(c.started_ms, 1), window_start_ms(int(time.time() * 1000), 1), 1000)]
    for key in expected:
        assert "c1" in lz.sealed_by(key), key
    assert any(not lz.segment_files("mempool", k) for k in keys)  # some windows were empty
    # nothing half-written, WAL emptied, clean-stop heartbeat
    leftovers = [p for p in s.landing_dir.rglob(".tmp-*")]
    assert leftovers == []
    assert sorted(p.name for p in lz.wal_dir("c1").iterdir()) == ["LOCK"]
    assert [b for b in lz.heartbeats() if b["collector_id"] == "c1"][0]["stopped"] is True


def _raw_tx_tuple(obj: dict, ts: int, source: str) -> tuple:
    from mev_assets.core.txparse import transaction_from_rpc, transaction_to_row

    return tx_record(ts, transaction_to_row(transaction_from_rpc(obj)), source)


@pytest.mark.timeout(60)
def test_recovery_replays_unsealed_logs_and_never_duplicates_sealed_ones(tmp_path):
    s = make_settings(tmp_path, window_seconds=60, sources=(Source("a", "ws://127.0.0.1:9"),))
    lz = LandingZone(s.landing_dir)
    objs = synthetic_tx_objects(8, CHAIN)
    k1, k2 = "2026-01-01T00:00:00", "2026-01-01T00:01:00"
    t1, t2 = key_end_ms(k1, 60) - 5000, key_end_ms(k2, 60) - 5000
    wal = WriteAheadLog(lz.wal_dir("c1"))
    # (k1, 0): crashed after sealing but before deleting its log -> must not be replayed again
    b1 = WindowBatch(k1, 0, txs=[_raw_tx_tuple(o, t1, "a") for o in objs[:3]])
    wal.open(k1, 0).write(b"".join(frame(encode_tx(r)) for r in b1.txs))
    seal_batch(lz, "c1", b1)
    # (k2, 0): never sealed; its last record is torn
    recs = [_raw_tx_tuple(o, t2, "a") for o in objs[3:8]]
    data = b"".join(frame(encode_tx(r)) for r in recs)
    data += frame(encode_sighting((t2 + 1, objs[3]["hash"], "b")))
    data += frame(encode_block((t2 + 2, 7, "0x" + "ab" * 32, "0x" + "cd" * 32, 1, "7", 21000, 30_000_000, [objs[3]["hash"]], "a")))
    torn = frame(encode_tx(_raw_tx_tuple(synthetic_tx_objects(1, CHAIN, seed=9)[0], t2, "a")))
    wal.open(k2, 0).write(data + torn[: len(torn) // 2])
    wal.close()

    c = Collector(s)
    c.acquire_lock()
    try:
        rep = c.recover()
    finally:
        c.release_lock()
    assert (rep.files, rep.already_sealed, rep.replayed_files, rep.torn_files) == (2, 1, 1, 1)
    assert rep.txs == 5 and sorted(rep.windows_marked) == [k1, k2]
    txs = area_rows(lz, "mempool")
    assert txs.height == 8 and txs["hash"].n_unique() == 8  # no duplicate of the sealed k1 batch
    assert area_rows(lz, "sourcelog").filter(pl.col("source") == "b")["hash"].to_list() == [objs[3]["hash"]]
    blocks = lz.read_area("blocks", k2).frame
    assert blocks["number"].to_list() == [7] and blocks["tx_hashes"].to_list() == [[objs[3]["hash"]]]
    assert os.listdir(lz.wal_dir("c1")) == ["LOCK"]
    assert lz.sealed_by(k1) == {"c1"} and lz.sealed_by(k2) == {"c1"}
    assert next_seq(lz, k2, "c1", lz.wal_dir("c1")) == 1
    # the windows lie beyond the dedup TTL from today, so the start-up rebuild skipped them;
    # rebuilt as of their own time, the set knows every landed hash with its sources' bits
    assert len(c.seen) == 0
    seen = rebuild_seen(lz, "c1", c.source_index, 3600_000, key_end_ms(k2, 60), 60)
    assert set(seen.masks) == {o["hash"] for o in objs}
    assert seen.get(objs[3]["hash"]) == c.source_index.bit("a") | c.source_index.bit("b")
    # recovering again finds nothing to do
    c2 = Collector(s)
    c2.acquire_lock()
    try:
        assert c2.recover().files == 0
    finally:
        c2.release_lock()


@pytest.mark.timeout(60)
def test_two_sources_one_row_each_sighting_logged_and_invalid_first_then_valid(tmp_path):
    objs = synthetic_tx_objects(6, CHAIN)
    with FakeNode() as node:
        s = make_settings(tmp_path, sources=(Source("a", node.url), Source("b", node.url)))
        lz = LandingZone(s.landing_dir)
        with CollectorThread(s) as ct:
            c = ct.collector
            node.wait_subscribed(2)
            # a forged copy (wrong sender) of objs[0] arrives before the real one
            forged = dict(objs[0], **{"from": "0x" + "99" * 20})
            node.push_tx(forged)
            wait_for(lambda: c.quarantined_total == 2, what="forged copy quarantined by both lanes")
            node.push_txs(objs)
            node.push_txs(objs[:2])  # re-announced: duplicates, no new rows or sightings
            wait_for(lambda: accepted(c) == 6 and c.metrics.value("mev_collector_duplicates_total", {"source": "a"})
                     + c.metrics.value("mev_collector_duplicates_total", {"source": "b"}) == 6 + 4, what="all messages handled")
        txs = area_rows(lz, "mempool")
        assert txs.height == 6 and txs["hash"].n_unique() == 6
        sl = area_rows(lz, "sourcelog")
        assert sl.height == 12  # (hash, source) once each
        assert sl.group_by("hash").agg(pl.col("source").sort()).get_column("source").to_list() == [["a", "b"]] * 6
        q = pl.concat([lz.read_quarantine(k) for k in lz.windows("mempool")])
        assert q.height == 2 and all(r.startswith("bad_signature: ") for r in q["reason"])
        assert c.metrics.value("mev_collector_quarantined_total", {"source": "a", "reason": "bad_signature"}) == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["hashes", "reject_full"])
def test_hash_mode_fetches_objects_in_rate_limited_batches(tmp_path, mode):
    objs = synthetic_tx_objects(25, CHAIN)
    with FakeNode(mode=mode) as node:
        s = make_settings(tmp_path, sources=(Source("a", node.url),), fetch_rate=200.0, fetch_batch=10)
        lz = LandingZone(s.landing_dir)
        with CollectorThread(s) as ct:
            c = ct.collector
            node.wait_subscribed(1)
            t0 = time.monotonic()
            node.push_txs(objs)
            wait_for(lambda: accepted(c) == 25, what="25 fetched and accepted")
            elapsed = time.monotonic() - t0
            assert c.lanes[0].mode == "hashes"
            assert c.metrics.value("mev_collector_subscription_mode", {"source": "a"}) == 0
        batches = [r for r in node.requests if isinstance(r, dict) and r.get("method") == "eth_getTransactionByHash"]
        assert len(batches) == 25
        assert c.metrics.value("mev_collector_fetch_requests_total", {"source": "a"}) >= 3  # <= 10 per batch
        assert elapsed >= (25 - 10) / 200 * 0.9  # token bucket: burst of one batch, then 200/s
        txs = area_rows(lz, "mempool")
        assert sorted(txs["hash"]) == sorted(o["hash"] for o in objs)
        # timestamps are the hash announcements' receipt times, not the fetch times
        assert txs["timestamp_ms"].max() - txs["timestamp_ms"].min() < 1000


@pytest.mark.timeout(60)
def test_heads_are_recorded_once_across_sources(tmp_path):
    objs = synthetic_tx_objects(3, CHAIN)
    block = {
        "number": "0x10", "hash": "0x" + "be" * 32, "parentHash": "0x" + "af" * 32, "timestamp": "0x65000000",
        "baseFeePerGas": "0x3b9aca00", "gasUsed": "0x5208", "gasLimit": "0x1c9c380", "miner": "0x" + "00" * 20,
        "nonce": "0x0000000000000000", "transactions": [o["hash"] for o in objs],
    }
    with FakeNode() as node:
        s = make_settings(tmp_path, sources=(Source("a", node.url), Source("b", node.url)))
        lz = LandingZone(s.landing_dir)
        with CollectorThread(s) as ct:
            node.wait_subscribed(2)
            wait_for(lambda: all(cl.heads_sub for cl in node.clients), what="heads subscriptions")
            node.push_head(block)
            wait_for(lambda: ct.collector.metrics.value("mev_collector_blocks_total", {"source": "a"})
                     + ct.collector.metrics.value("mev_collector_blocks_total", {"source": "b"}) == 1, what="block")
        blocks = area_rows(lz, "blocks")
        assert blocks.height == 1
        row = blocks.row(0, named=True)
        assert row["number"] == 16 and row["base_fee_per_gas"] == str(10**9) and row["gas_used"] == 21000
        assert row["tx_hashes"] == [o["hash"] for o in objs] and row["timestamp"] == 0x65000000


@pytest.mark.timeout(60)
def test_late_record_for_a_sealed_window_goes_to_the_next_seq(tmp_path):
    objs = synthetic_tx_objects(2, CHAIN)
    with FakeNode() as node:
        s = make_settings(tmp_path, sources=(Source("a", node.url),))
        lz = LandingZone(s.landing_dir)
        with CollectorThread(s) as ct:
            c = ct.collector
            node.wait_subscribed(1)
            node.push_tx(objs[0])
            wait_for(lambda: accepted(c) == 1, what="first tx")
            key = wait_for(lambda: next((k for k in lz.windows("mempool") if lz.segment_files("mempool", k)
                                         and "c1" in lz.sealed_by(k)), None), what="window sealed and marked")
            marker_before = lz.read_json(lz.sealed_marker(key, "c1"))
            late_ts = key_end_ms(key, 1) - 10  # received "in" the sealed window (e.g. a slow fetch)
            c._loop.call_soon_threadsafe(c.on_tx, c.lanes[0], objs[1], late_ts, True)
            wait_for(lambda: len(lz.segment_files("mempool", key)) == 2, what="late segment")
            wait_for(lambda: lz.read_json(lz.sealed_marker(key, "c1")) != marker_before, what="marker rewritten")
        names = [p.name for p in lz.segment_files("mempool", key)]
        assert names == ["c1-000000.parquet", "c1-000001.parquet"]
        assert lz.read_area("mempool", key).frame["hash"].to_list() == [objs[0]["hash"], objs[1]["hash"]]


@pytest.mark.timeout(60)
def test_same_id_fails_fast_different_ids_share_the_landing_zone(tmp_path):
    with FakeNode() as node:
        s = make_settings(tmp_path, sources=(Source("a", node.url),))
        with CollectorThread(s):
            with pytest.raises(CollectorLockedError, match="collector id 'c1' is already running.*MEV_COLLECTOR_ID"):
                CollectorThread(s).start()
            other = make_settings(tmp_path, sources=(Source("a", node.url),), collector_id="c2")
            with CollectorThread(other) as ct2:
                node.wait_subscribed(2)
                node.push_txs(synthetic_tx_objects(4, CHAIN))
                wait_for(lambda: ct2.collector.accepted_total == 4, what="c2 accepted")
        lz = LandingZone(s.landing_dir)
        txs = area_rows(lz, "mempool")
        assert txs.group_by("collector_id").len().sort("collector_id").rows() == [("c1", 4), ("c2", 4)]
        assert len({p.name for k in lz.windows() for p in lz.segment_files("mempool", k)}) == len(
            [p for k in lz.windows() for p in lz.segment_files("mempool", k)])
