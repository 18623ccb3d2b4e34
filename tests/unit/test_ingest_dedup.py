"""Dedup: the seen set (TTL, per-source bits) and its rebuild from sealed segments."""

from __future__ import annotations

import pytest

from mev_assets.core.windows import key_start_ms, window_key
from mev_assets.ingest.dedup import SeenSet, SourceIndex, rebuild_seen
from mev_assets.ingest.landing import LandingZone
from mev_assets.ingest.records import TX_COLUMNS
from mev_assets.ingest.segments import WindowBatch, seal_batch


def _tx(ts: int, h: str, source: str) -> tuple:
    values = {c: None for c in TX_COLUMNS}
    values.update(timestamp_ms=ts, hash=h, source=source, chain_id=1, tx_type=2, value="0", nonce=0, gas=21000)
    return tuple(values[c] for c in TX_COLUMNS)


@pytest.mark.timeout(30)
def test_seen_set_ttl_and_source_bits():
    src = SourceIndex(["a", "b"])
    a, b = src.bit("a"), src.bit("b")
    assert (a, b, src.bit("c")) == (1, 2, 4) and src.names() == ["a", "b", "c"]
    seen = SeenSet(ttl_ms=1000)
    assert seen.accept("0x1", 100, a)
    assert not seen.accept("0x1", 150, b)  # already accepted: only the bit is added
    assert seen.get("0x1") == a | b
    assert seen.accept("0x2", 600, a)
    assert not seen.add_source("0x2", a)  # not a first sighting for a
    assert seen.add_source("0x2", b) and seen.get("0x2") == a | b
    assert not seen.add_source("0x3", a)  # never accepted: no sighting
    assert seen.expire(1099) == 0
    assert seen.expire(1101) == 1 and "0x1" not in seen and "0x2" in seen
    assert seen.expire(1601) == 1 and len(seen) == 0
    # after expiry the hash can be accepted again
    assert seen.accept("0x1", 2000, a)


@pytest.mark.timeout(60)
def test_rebuild_from_own_recent_segments(tmp_path):
    lz = LandingZone(tmp_path)
    now = key_start_ms("2026-03-01T12:00:00")
    ws = 60
    recent = window_key(now - 120_000, ws)
    old = window_key(now - 4000_000, ws)
    b1 = WindowBatch(recent, 0, txs=[_tx(now - 119_000, "0xaa", "a"), _tx(now - 118_000, "0xbb", "b")], sightings=[(now - 110_000, "0xaa", "b")])
    seal_batch(lz, "me", b1)
    seal_batch(lz, "me", WindowBatch(old, 0, txs=[_tx(now - 3999_000, "0xold", "a")]))
    seal_batch(lz, "other", WindowBatch(recent, 0, txs=[_tx(now - 119_000, "0xcc", "a")]))
    # "me-x" is a different collector whose name starts like ours
    seal_batch(lz, "me-x", WindowBatch(recent, 0, txs=[_tx(now - 119_000, "0xdd", "a")]))
    src = SourceIndex(["a", "b"])
    seen = rebuild_seen(lz, "me", src, ttl_ms=3600_000, now_ms=now, window_seconds=ws)
    assert set(seen.masks) == {"0xaa", "0xbb"}
    assert seen.get("0xaa") == src.bit("a") | src.bit("b")
    assert seen.get("0xbb") == src.bit("b")
    # expiry still works on the rebuilt set, by the original acceptance time
    assert seen.expire(now - 119_000 + 3600_000 + 1) == 1 and set(seen.masks) == {"0xbb"}
