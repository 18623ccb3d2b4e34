"""MEV_STORAGE=s3 end to end, against an S3-compatible server on loopback (moto in server mode).

A collector on a real anvil writes its segments into the bucket, the sensor finds the windows
there, the assets read the landing zone and write their tables as the lake's Parquet files in the
bucket (the Dagster I/O), and under $MEV_HOME only the WAL and the Dagster instance remain.
"""

from __future__ import annotations

import json
import uuid

import boto3
import polars as pl
import pytest
from dagster import AssetKey, instance_for_test
from moto.server import ThreadedMotoServer

from mev_assets.core.lake import lake_glob, open_lake
from mev_assets.core.windows import key_end_ms, key_start_ms
from mev_assets.definitions import build_definitions
from mev_assets.devnet.anvil import free_port
from mev_assets.devnet.runner import start_devnet
from mev_assets.ingest.collector import CollectorThread
from mev_assets.ingest.landing import LandingZone, now_ms
from mev_assets.ingest.quarantine import QuarantineLog, quarantine_record
from mev_assets.ingest.storage import S3Store
from mev_assets.lane import run_sensor_requests, sensor_tick
from tests.landing_factory import write_window
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

PREFIX = "team/mev"


@pytest.fixture
def s3_server(monkeypatch):
    """A moto S3 server on 127.0.0.1 with a fresh bucket (moto keeps buckets per process, so every
    test gets its own name); credentials only in this test's environment."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "moto-test-key",
        "AWS_SECRET_ACCESS_KEY": "moto-test-secret",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # never probe instance metadata from a test
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    bucket = f"mev-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    try:
        yield url, client, bucket
    finally:
        server.stop()


def _keys(client, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return sorted(keys)


def _s3_env(url: str, bucket: str) -> dict:
    return {"MEV_STORAGE": "s3", "MEV_S3_BUCKET": bucket, "MEV_S3_PREFIX": PREFIX, "MEV_S3_ENDPOINT_URL": url}


@pytest.mark.timeout(240)
def test_collector_sensor_and_assets_run_on_s3(settings_factory, s3_server, tmp_path):
    url, client, bucket = s3_server
    n = 60
    chain = dict(MEV_WINDOW_SECONDS=2, MEV_CHAIN_ID=31337, MEV_SEAL_DELAY_MS=300, MEV_GRACE_SECONDS=60)
    base = settings_factory(**chain)
    devnet = start_devnet(base, block_time=1, traffic=False, searcher=False, state_dir=tmp_path / "devnet")
    try:
        settings = settings_factory(
            **chain, **_s3_env(url, bucket), MEV_SOURCES=f"primary={devnet.ws_url},secondary={devnet.ws_url}",
            MEV_COLLECTOR_ID="s3c", MEV_METRICS_PORT=free_port(),
        )
        with CollectorThread(settings) as ct:
            assert ct.collector.lz.location == f"s3://{bucket}/{PREFIX}/landing"
            wait_for(lambda: all(lane.connected for lane in ct.collector.lanes), 30, "both subscriptions")
            sent = devnet.run_traffic(count=n)
            expected = {h.lower() for h in sent.hashes}
            # accepted from one source and seen by the other too (bits 1 and 2), before we stop
            wait_for(lambda: all(ct.collector.seen.get(h) == 3 for h in expected), 60, f"{n} seen by both sources")
    finally:
        devnet.stop()

    # the collector wrote segments, markers and its heartbeat into the bucket
    landing = _keys(client, bucket, f"{PREFIX}/landing/")
    segments = [k for k in landing if k.startswith(f"{PREFIX}/landing/mempool/window=") and k.endswith(".parquet")]
    assert segments and all(k.rsplit("/", 1)[1].startswith("s3c-") for k in segments)
    assert any(k.endswith("/_SEALED.s3c") for k in landing)
    beat = json.loads(client.get_object(Bucket=bucket, Key=f"{PREFIX}/landing/_collectors/s3c.json")["Body"].read())
    assert beat["stopped"] is True and beat["accepted"] >= n

    zone = LandingZone.from_settings(settings)
    last = max(zone.windows("mempool"))
    wait_for(lambda: now_ms() >= key_end_ms(last, 2), 10, "the last window to close")
    defs = build_definitions(settings)
    settings.dagster_home.mkdir(parents=True)  # the instance lives where it would in production
    with instance_for_test(temp_dir=str(settings.dagster_home)) as instance:
        requests, _ = sensor_tick(defs, instance, None)
        windows = sorted(r.partition_key for r in requests)
        assert windows == zone.windows("mempool")  # the sensor found every window in the bucket
        runs = run_sensor_requests(defs, instance, requests)
        failed = [r for r in runs if not r.success]
        assert not failed, [e.message for e in instance.all_logs(failed[0].run_id)][-5:] if failed else None
        meta = instance.fetch_materializations(AssetKey("mempool_transactions"), limit=1).records[0]
        lake_url = meta.asset_materialization.metadata["lake_file"].value
        assert lake_url.startswith(f"s3://{bucket}/{PREFIX}/lake/mempool_transactions/date=")

    # the assets' outputs are the lake's files in the bucket, one per (table, window)
    lake_keys = _keys(client, bucket, f"{PREFIX}/lake/")
    for table in ("mempool_transactions", "mempool_source_stats"):
        assert [k for k in lake_keys if k.startswith(f"{PREFIX}/lake/{table}/")] == [
            f"{PREFIX}/lake/{table}/date={w[:10]}/window={w}.parquet" for w in windows
        ]
    lake = open_lake(settings)
    txs = lake.read_windows("mempool_transactions", windows)
    assert txs.height == n and set(txs["hash"]) == expected  # exactly one row per sent transaction
    assert all(sorted(s) == ["primary", "secondary"] for s in txs["sources"].to_list())
    # mempool_source_stats loaded mempool_transactions back from S3 (its input): both sources saw all
    stats = lake.read_windows("mempool_source_stats", windows)
    assert stats.group_by("source").agg(pl.col("txs_seen").sum()).sort("source").rows() == [("primary", n), ("secondary", n)]
    assert lake_glob(settings, "mempool_transactions") == f"s3://{bucket}/{PREFIX}/lake/mempool_transactions/date=*/window=*.parquet"

    # nothing under $MEV_HOME but the WAL (only its lock is left) and the Dagster instance
    home = settings.mev_home
    stray = [p for p in home.rglob("*") if p.is_file()
             and not p.is_relative_to(home / "landing" / "_wal") and not p.is_relative_to(settings.dagster_home)]
    assert stray == []
    assert [p.name for p in (home / "landing" / "_wal" / "s3c").iterdir()] == ["LOCK"]
    assert not settings.duckdb_path.exists()


@pytest.mark.timeout(60)
def test_landing_zone_on_s3_reads_writes_and_quarantines_like_a_local_one(settings_factory, s3_server, tmp_path):
    url, client, bucket = s3_server
    settings = settings_factory(**_s3_env(url, bucket))
    zone = LandingZone.from_settings(settings)
    assert isinstance(zone.store, S3Store) and zone.wal_dir("c1") == settings.landing_dir / "_wal" / "c1"
    local = LandingZone(tmp_path / "local")
    w1, w2 = "2024-05-05T12:00:00", "2024-05-05T12:01:00"
    for z in (zone, local):
        write_window(z, w1, 3, sources=("a", "b"))
        write_window(z, w2, 2, collector_id="c2")
        write_window(z, w2, 1, collector_id="c2", seq=2, offset=10, seal=False)
    # same listings, same fingerprints (the sensor's run keys do not depend on the storage mode)
    assert zone.windows() == local.windows() == [w1, w2] and zone.windows(since=w2) == [w2]
    assert [s.name for s in zone.segment_files("mempool", w2)] == ["c2-000001.parquet", "c2-000002.parquet"]
    assert zone.sealed_by(w2) == local.sealed_by(w2) == {"c2"}
    assert zone.fingerprints([w1, w2]) == {w1: zone.fingerprint(w1), w2: zone.fingerprint(w2)} == local.fingerprints([w1, w2])
    assert zone.read_area("mempool", w2).frame.height == 3
    assert zone.ready_windows(key_end_ms(w2, 60) + 120_000, 60, 30) == [w1, w2]

    # S3 has no append: each quarantine flush is one new object, read back in write order
    q = QuarantineLog(zone, "c1", s3_flush_seconds=0)
    q.write(w1, quarantine_record(key_start_ms(w1) + 1, "a", "c1", "bad_rlp: first", "0x01"))
    q.sync()
    q.write(w1, quarantine_record(key_start_ms(w1) + 2, "a", "c1", "bad_rlp: second", "0x02"))
    q.close()
    zone.append_quarantine(w1, "c1-other", [quarantine_record(key_start_ms(w1) + 3, "b", "c1-other", "wrong_chain_id: x", {})])
    objects = _keys(client, bucket, f"{PREFIX}/landing/_quarantine/window={w1}/")
    assert len(objects) == 3 and all(k.endswith(".jsonl") for k in objects)
    reasons = zone.read_quarantine(w1).sort("timestamp_ms")["reason"].to_list()
    assert reasons == ["bad_rlp: first", "bad_rlp: second", "wrong_chain_id: x"]
    assert [r["payload"] for r in zone.quarantine_records(w1, "c1")] == ["0x01", "0x02"]  # not c1-other's

    # an unreadable segment is moved aside with its reason, not fatal, not lost
    client.put_object(Bucket=bucket, Key=f"{PREFIX}/landing/mempool/window={w1}/c9-000000.parquet", Body=b"not parquet")
    read = zone.read_area("mempool", w1)
    assert read.frame.height == 3 and [c.path for c in read.corrupt] == [f"_quarantine/segments/mempool.window={w1}.c9-000000.parquet"]
    assert zone.store.get(read.corrupt[0].path) == b"not parquet"
    assert zone.store.get(read.corrupt[0].path + ".reason").decode().startswith(read.corrupt[0].reason[:20])
    assert "c9-000000.parquet" not in [s.name for s in zone.segment_files("mempool", w1)]
