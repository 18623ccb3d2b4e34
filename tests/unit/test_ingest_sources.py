"""Source lanes: backoff schedule, hash checks, reconnect after a dropped connection."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.exceptions import ConnectionClosed

from mev_assets.ingest.collector import CollectorThread
from mev_assets.ingest.fakenode import FakeNode, synthetic_tx_objects
from mev_assets.ingest.sources import CLOSE_TIMEOUT, Backoff, SourceLane, is_hash
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


# ---- cancellation ------------------------------------------------------------------------
# A lane is stopped by cancelling its task; the cancel must end it promptly whatever the
# lane is waiting for. The node below is scripted on loopback so the timing is exact.

class _LaneSink:
    """The lane's sink interface (see sources.Sink), recording what it is told."""

    def __init__(self):
        self.malformed: list[str] = []
        self.on_malformed_hook = None

    def on_tx(self, lane, obj, received_ms, fetched=False):
        pass

    def on_hash(self, lane, tx_hash, received_ms):
        return False

    def need_fetch(self, lane, tx_hash, received_ms):
        return False

    def want_block(self, block_hash):
        return False

    def on_block(self, lane, block, received_ms):
        pass

    def on_malformed(self, lane, reason, payload, received_ms):
        self.malformed.append(reason)
        if self.on_malformed_hook is not None:
            self.on_malformed_hook()

    def on_state(self, lane, connected):
        pass


async def _scripted_node(answer_heads):
    """A node that subscribes newPendingTransactions normally and hands newHeads to ``answer_heads``."""
    from websockets.asyncio.server import serve

    closed = asyncio.Event()

    async def handler(ws):
        try:
            async for text in ws:
                msg = json.loads(text)
                if msg["params"][0] == "newHeads":
                    await answer_heads(ws, msg["id"])
                else:
                    await ws.send(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": "0x1"}))
        except ConnectionClosed:
            pass
        finally:
            closed.set()

    server = await serve(handler, "127.0.0.1", 0, ping_interval=None)
    return server, closed


def _lane(url, sink):
    from mev_assets.ingest.metrics import CollectorMetrics

    return SourceLane(Source("a", url), 0, sink, CollectorMetrics().source("a"))


@pytest.mark.timeout(30)
def test_cancel_arriving_with_the_subscription_answer_stops_the_lane():
    # The newHeads answer and a stray batch item come in one message: the reader resolves the
    # call and, in the same loop iteration, the sink cancels the lane. asyncio.wait_for on
    # Python 3.11 returned the answer and dropped that cancel; the lane then waited on its
    # reader forever and the collector's stop hung.
    async def main():
        async def answer_heads(ws, rid):
            await ws.send(json.dumps([{"jsonrpc": "2.0", "id": rid, "result": "0x2"}, "stray"]))

        server, closed = await _scripted_node(answer_heads)
        sink = _LaneSink()
        lane = _lane(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", sink)
        task = asyncio.create_task(lane.run())
        sink.on_malformed_hook = task.cancel
        try:
            done, _ = await asyncio.wait([task], timeout=10)
            assert done, f"the lane ignored its cancellation (sessions={lane.sessions})"
            assert task.cancelled()
            assert sink.malformed == ["bad_message: batch item is not a response"]
            async with asyncio.timeout(10):
                await closed.wait()  # and it closed its connection
        finally:
            task.cancel()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


@pytest.mark.timeout(30)
def test_cancel_while_the_node_delays_the_subscription_answer_stops_the_lane_promptly():
    async def main():
        heads_requested = asyncio.Event()

        async def answer_heads(ws, rid):
            heads_requested.set()
            await ws.wait_closed()  # a node slow to answer: the lane is mid-handshake until it leaves

        server, closed = await _scripted_node(answer_heads)
        sink = _LaneSink()
        lane = _lane(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", sink)
        task = asyncio.create_task(lane.run())
        try:
            async with asyncio.timeout(10):
                await heads_requested.wait()
            started = time.monotonic()
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=10)
            assert done and task.cancelled()
            assert time.monotonic() - started < CLOSE_TIMEOUT + 1.5
            assert lane.sessions == 0 and not lane.connected
            async with asyncio.timeout(10):
                await closed.wait()
        finally:
            task.cancel()
            server.close()
            await server.wait_closed()

    asyncio.run(main())
