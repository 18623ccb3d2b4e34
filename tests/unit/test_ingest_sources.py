"""Source lanes: backoff schedule, hash checks, reconnect after a dropped connection."""

from __future__ import annotations

import time

import pytest

from mev_assets.ingest.collector import CollectorThread
from mev_assets.ingest.fakenode import FakeNode, synthetic_tx_objects
from mev_assets.ingest.sources import Backoff, is_hash
from mev_assets.settings import Settings, Source


@pytest.mark.timeout(10)
def test_backoff_doubles_with_jitter_caps_and_resets():
    lo = Backoff(base=0.25, cap=30.0, healthy_after=30.0, rng=lambda: 0.0)
    hi = Backoff(base=0.25, cap=30.0, healthy_after=30.0, rng=lambda: 1.0)
    lows = [lo.next_delay() for _ in range(12)]
    highs = [hi.next_delay() for _ in range(12)]
    assert highs[:5] == [0.25, 0.5, 1.0, 2.0, 4.0]
    assert lows[:3] == [0.125, 0.25, 0.5]  # equal jitter: never below half the step
    assert max(highs) == 30.0 and highs[-1] == 30.0 and lows[-1] == 15.0
    hi.session_ended(5.0)  # a short session does not reset
    assert hi.next_delay() == 30.0
    hi.session_ended(31.0)  # a healthy one does
    assert hi.next_delay() == 0.25


@pytest.mark.timeout(10)
def test_is_hash():
    assert is_hash("0x" + "ab" * 32) and is_hash("0X" + "AB" * 32)
    assert not is_hash("0x" + "ab" * 31) and not is_hash("0x" + "zz" * 32) and not is_hash(None) and not is_hash(5)


@pytest.mark.timeout(60)
def test_dropped_connection_reconnects_and_keeps_collecting(tmp_path):
    objs = synthetic_tx_objects(10, 31337)
    with FakeNode() as node:
        s = Settings(mev_home=tmp_path / "h", dagster_home=tmp_path / "h" / "d", window_seconds=1, chain_id=31337,
                     sources=(Source("a", node.url),), collector_id="r1", seal_delay_ms=100, metrics_port=0)
        with CollectorThread(s, backoff_base=0.05) as ct:
            c, lane = ct.collector, ct.collector.lanes[0]
            node.wait_subscribed(1)
            node.push_txs(objs[:5])
            deadline = time.monotonic() + 20
            while c.accepted_total < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
            node.drop_connections()
            while lane.sessions < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert lane.sessions == 2 and lane.connected
            node.wait_subscribed(1)
            node.push_txs(objs)  # the first five again (duplicates) and five new
            while c.accepted_total < 10 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert c.accepted_total == 10
            assert c.metrics.value("mev_collector_reconnects_total", {"source": "a"}) == 1
            assert c.metrics.value("mev_collector_duplicates_total", {"source": "a"}) == 5
