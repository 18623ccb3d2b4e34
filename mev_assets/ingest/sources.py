"""Sources: one asyncio task per node endpoint, speaking JSON-RPC over WebSocket.

Per connection:

* ``eth_subscribe ["newPendingTransactions", true]`` - full transaction objects. If the node
  rejects the ``true`` parameter (JSON-RPC error) the lane subscribes without it; if the node
  answers with hashes (either way), the lane switches to *hash mode*: hashes not yet accepted
  are queued and fetched with batched ``eth_getTransactionByHash`` (a JSON-RPC batch over the
  same connection; individual pipelined calls if the node refuses batches), rate limited by a
  token bucket of ``fetch_rate`` hashes/s and ``fetch_batch`` hashes per request.
* ``eth_subscribe ["newHeads"]`` - each new head is fetched with ``eth_getBlockByHash(hash,
  false)`` for its transaction hashes (once per block across all sources).
* Lost connections are retried with exponential backoff and jitter (0.25 s doubling, capped at
  30 s); the backoff resets after a connection stayed healthy for 30 s.
* Anything the node sends that cannot be understood (malformed JSON, unexpected shapes) goes to
  the sink's quarantine with a reason; the lane never dies of a bad message.

The lane knows nothing of dedup, validation or storage: it calls its *sink* (the collector).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from typing import Any, Protocol

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from mev_assets.ingest.metrics import SourceMetrics
from mev_assets.settings import Source

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
FETCH_QUEUE_LIMIT = 100_000
CALL_TIMEOUT = 15.0
CLOSE_TIMEOUT = 2.0  # per step of ending a session: cancelled tasks finishing, the closing handshake

_loads = json.loads
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class RpcError(Exception):
    def __init__(self, code: Any, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class Sink(Protocol):
    """What a lane reports to (implemented by the collector)."""

    def on_tx(self, lane: "SourceLane", obj: Any, received_ms: int, fetched: bool = False) -> None: ...
    def on_hash(self, lane: "SourceLane", tx_hash: str, received_ms: int) -> bool: ...
    def need_fetch(self, lane: "SourceLane", tx_hash: str, received_ms: int) -> bool: ...
    def want_block(self, block_hash: str) -> bool: ...
    def on_block(self, lane: "SourceLane", block: dict, received_ms: int) -> None: ...
    def on_malformed(self, lane: "SourceLane", reason: str, payload: Any, received_ms: int) -> None: ...
    def on_state(self, lane: "SourceLane", connected: bool) -> None: ...


class Backoff:
    """Exponential backoff with equal jitter: delay in [d/2, d], d = min(cap, base * 2**n)."""

    def __init__(self, base: float = 0.25, cap: float = 30.0, healthy_after: float = 30.0, rng=random.random):
        self.base = base
        self.cap = cap
        self.healthy_after = healthy_after
        self.attempt = 0
        self._rng = rng

    def next_delay(self) -> float:
        d = min(self.cap, self.base * (2 ** self.attempt))
        if d < self.cap:
            self.attempt += 1
        return d / 2 + self._rng() * d / 2

    def session_ended(self, healthy_seconds: float) -> None:
        """A connection that stayed healthy long enough resets the backoff."""
        if healthy_seconds >= self.healthy_after:
            self.attempt = 0


def is_hash(value: Any) -> bool:
    if type(value) is not str or len(value) != 66 or not value.startswith(("0x", "0X")):
        return False
    try:
        int(value[2:], 16)
    except ValueError:
        return False
    return True


class SourceLane:
    """One node endpoint: connection, subscriptions, hash fetching, reconnects."""

    def __init__(
        self,
        source: Source,
        index: int,
        sink: Sink,
        metrics: SourceMetrics,
        *,
        fetch_rate: float = 50.0,
        fetch_batch: int = 50,
        backoff: Backoff | None = None,
        full_objects: bool = True,
    ):
        self.source = source
        self.name = source.name
        self.index = index
        self.bit = 1 << index
        self.sink = sink
        self.metrics = metrics
        self.fetch_rate = max(float(fetch_rate), 0.001)
        self.fetch_batch = max(int(fetch_batch), 1)
        self.backoff = backoff or Backoff()
        self.want_full_objects = full_objects
        self.mode: str = "disconnected"  # "full" | "hashes" | "disconnected"
        self.connected = False
        self.sessions = 0
        self._ws = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future] = {}
        self._fetch_queue: deque[tuple[str, int]] = deque()
        self._queued: set[str] = set()
        self._fetch_wakeup = asyncio.Event()
        self._batch_ok = True
        self._last_seen_s = 0
        self._block_tasks: set[asyncio.Task] = set()
        # for the heartbeat (alerts read it without the collector's metrics endpoint)
        self.state_since_ms = _now_ms()  # when ``connected`` last changed (or the lane was made)
        self.last_dropped_ms = 0  # when the fetch queue last dropped a hash (0 = never)
        self.fetch_dropped_total = 0  # = the fetch_dropped_total metric of this source

    def heartbeat_info(self) -> dict:
        """This lane's part of the collector heartbeat (read by :mod:`mev_assets.core.alerts`)."""
        return {
            "url": self.source.url,
            "connected": self.connected,
            "mode": self.mode,
            "state_since_ms": self.state_since_ms,
            "last_message_ms": self._last_seen_s * 1000 if self._last_seen_s else None,
            "queue_depth": len(self._fetch_queue),
            "queue_capacity": FETCH_QUEUE_LIMIT,
            "fetch_dropped": self.fetch_dropped_total,
            "last_dropped_ms": self.last_dropped_ms or None,
        }

    # ---- life cycle ---------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, subscribe, read; reconnect forever (until cancelled)."""
        first = True
        while True:
            if not first:
                self.metrics.reconnects.inc()
            first = False
            started = time.monotonic()
            healthy_since: float | None = None
            try:
                healthy_since = await self._session()
            except asyncio.CancelledError:
                raise
            except (OSError, ConnectionClosed, InvalidHandshake, asyncio.TimeoutError, RpcError) as exc:
                log.warning("source %s (%s): connection lost or failed: %s", self.name, self.source.url, exc or type(exc).__name__)
            except InvalidURI as exc:
                log.error("source %s: invalid url %s: %s", self.name, self.source.url, exc)
            except Exception:  # noqa: BLE001 - a lane must survive anything and retry
                log.exception("source %s: unexpected error; reconnecting", self.name)
            finally:
                self._set_connected(False)
            if healthy_since is not None:
                self.backoff.session_ended(time.monotonic() - healthy_since)
            delay = self.backoff.next_delay()
            log.info("source %s: reconnecting in %.2f s (session lasted %.1f s)", self.name, delay, time.monotonic() - started)
            await asyncio.sleep(delay)

    def _set_connected(self, value: bool) -> None:
        if self.connected != value:
            self.connected = value
            self.state_since_ms = _now_ms()
            self.metrics.connected.set(1 if value else 0)
            if not value:
                self.mode = "disconnected"
            try:
                self.sink.on_state(self, value)
            except Exception:  # noqa: BLE001
                log.exception("sink.on_state failed")

    async def _session(self) -> float | None:
        healthy_since = None
        ws = await connect(
            self.source.url,
            max_size=MAX_MESSAGE_BYTES,
            max_queue=256,
            compression=None,
            open_timeout=10,
            ping_interval=20,
            ping_timeout=20,
            close_timeout=CLOSE_TIMEOUT,
        )
        self._ws = ws
        self._batch_ok = True
        reader = asyncio.create_task(self._reader(ws), name=f"reader-{self.name}")
        reader.add_done_callback(lambda _t: self._fail_pending(ConnectionError(f"connection to {self.name} closed")))
        fetcher: asyncio.Task | None = None
        try:
            full = await self._subscribe_pending()
            if self.mode != "hashes":  # (hash notifications may already have switched it)
                self.mode = "full" if full else "hashes"
                self.metrics.mode.set(1 if full else 0)
            try:
                await self._call("eth_subscribe", ["newHeads"])
            except RpcError as exc:
                log.warning("source %s: newHeads subscription refused (%s); no blocks from this source", self.name, exc)
            self.sessions += 1
            healthy_since = time.monotonic()
            self._set_connected(True)
            log.info("source %s: subscribed (%s) at %s", self.name, self.mode, self.source.url)
            fetcher = asyncio.create_task(self._fetch_loop(), name=f"fetch-{self.name}")
            await reader
        finally:
            self._ws = None
            await self._end_session(ws, [t for t in (reader, fetcher, *self._block_tasks) if t is not None])
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            raise reader.exception()
        return healthy_since

    async def _end_session(self, ws, tasks: list[asyncio.Task]) -> None:
        """Cancel the session's tasks and close the connection, each within CLOSE_TIMEOUT.

        Runs in ``_session``'s ``finally``, usually while the lane itself is being cancelled:
        nothing here may wait unboundedly, and a cancellation of the lane propagates.
        """
        for task in tasks:
            task.cancel()
        # after the cancel requests, so that callers waiting for an answer end cancelled
        self._fail_pending(ConnectionError(f"connection to {self.name} closed"))
        if tasks:
            # asyncio.wait never raises the tasks' exceptions (nor swallows our own cancellation)
            ended, stuck = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
            for task in ended:
                if not task.cancelled():
                    task.exception()  # retrieved: the reader's is re-raised by _session, the rest are moot
            if stuck:
                log.error("source %s: %s did not finish within %.0f s of being cancelled", self.name,
                          ", ".join(t.get_name() for t in stuck), CLOSE_TIMEOUT)
        try:
            # websockets bounds its closing handshake by close_timeout; this bound covers the
            # rest (a send stuck on a full socket buffer) - past it, drop the TCP connection
            async with asyncio.timeout(CLOSE_TIMEOUT + 1.0):
                await ws.close()
        except TimeoutError:
            log.warning("source %s: closing the connection timed out; aborting it", self.name)
            ws.transport.abort()
        except (OSError, ConnectionClosed):
            ws.transport.abort()

    async def _subscribe_pending(self) -> bool:
        """Subscribe to pending transactions; True if the node promised full objects."""
        if self.want_full_objects:
            try:
                await self._call("eth_subscribe", ["newPendingTransactions", True])
                return True  # the notifications themselves tell (hash strings switch to fetching)
            except RpcError as exc:
                log.warning("source %s: full-object subscription refused (%s); falling back to hashes", self.name, exc)
        await self._call("eth_subscribe", ["newPendingTransactions"])
        return False

    # ---- JSON-RPC -----------------------------------------------------------------------
    def _new_id(self) -> tuple[int, asyncio.Future]:
        self._next_id += 1
        fut = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = fut
        return self._next_id, fut

    async def _call(self, method: str, params: list, timeout: float = CALL_TIMEOUT) -> Any:
        ws = self._ws
        if ws is None:
            raise ConnectionError(f"source {self.name} is not connected")
        rid, fut = self._new_id()
        try:
            # asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for returns the result
            # and swallows a cancellation that arrives in the loop iteration the answer does,
            # leaving the lane running (and its stop hanging) after it was cancelled
            async with asyncio.timeout(timeout):
                await ws.send(_dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
                return await fut
        finally:
            self._pending.pop(rid, None)

    async def _call_batch(self, calls: list[tuple[str, list]], timeout: float = CALL_TIMEOUT) -> list[Any]:
        """A JSON-RPC batch; each result is the value or an :class:`RpcError`."""
        ws = self._ws
        if ws is None:
            raise ConnectionError(f"source {self.name} is not connected")
        ids, futs, body = [], [], []
        for method, params in calls:
            rid, fut = self._new_id()
            ids.append(rid)
            futs.append(fut)
            body.append({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        try:
            if self._batch_ok:
                await ws.send(_dumps(body))
            else:
                for item in body:
                    await ws.send(_dumps(item))
            done, _ = await asyncio.wait(futs, timeout=timeout)
            if len(done) < len(futs) and self._batch_ok:
                # a node that ignores batches: retry once with single (pipelined) calls
                log.warning("source %s: no answer to a JSON-RPC batch; using single calls", self.name)
                self._batch_ok = False
            out = []
            for fut in futs:
                if fut.done() and not fut.cancelled():
                    exc = fut.exception()
                    out.append(exc if exc is not None else fut.result())
                else:
                    out.append(RpcError("timeout", "no answer"))
            return out
        finally:
            for rid in ids:
                self._pending.pop(rid, None)

    def _resolve(self, msg: dict, received_ms: int) -> None:
        rid = msg.get("id")
        fut = self._pending.get(rid) if type(rid) is int else None
        if fut is None:
            if rid is None and "error" in msg:
                err = msg["error"]
                log.warning("source %s: error without id from the node: %s", self.name, err)
                if isinstance(err, dict) and self._batch_ok:
                    self._batch_ok = False  # the node refused a batch; pending callers time out and retry singly
                return
            self.sink.on_malformed(self, "bad_message: response to an unknown request id", msg, received_ms)
            return
        if fut.done():
            return
        if "error" in msg:
            err = msg.get("error")
            if isinstance(err, dict):
                fut.set_exception(RpcError(err.get("code"), str(err.get("message"))))
            else:
                fut.set_exception(RpcError(None, str(err)))
        else:
            fut.set_result(msg.get("result"))

    def _fail_pending(self, exc: Exception) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved
        self._pending.clear()

    # ---- reading ------------------------------------------------------------------------
    async def _reader(self, ws) -> None:
        sink = self.sink
        on_tx = sink.on_tx
        on_malformed = sink.on_malformed
        for_hash = self._on_hash
        for_head = self._on_head
        async for text in ws:
            received_ms = time.time_ns() // 1_000_000
            try:
                msg = _loads(text)
            except ValueError as exc:
                on_malformed(self, f"malformed_json: {exc}", text, received_ms)
                continue
            try:
                if type(msg) is dict:
                    params = msg.get("params")
                    if params is not None:
                        if type(params) is not dict or msg.get("method") != "eth_subscription":
                            on_malformed(self, "bad_message: notification is not an eth_subscription", msg, received_ms)
                            continue
                        result = params.get("result")
                        if type(result) is dict:
                            if "parentHash" in result:
                                for_head(result, received_ms)
                            else:
                                on_tx(self, result, received_ms)
                        elif type(result) is str:
                            for_hash(result, received_ms)
                        else:
                            on_malformed(self, "bad_message: subscription result is neither an object nor a hash", msg, received_ms)
                    elif "id" in msg:
                        self._resolve(msg, received_ms)
                    else:
                        on_malformed(self, "bad_message: neither a notification nor a response", msg, received_ms)
                elif type(msg) is list:
                    for item in msg:
                        if type(item) is dict and "id" in item:
                            self._resolve(item, received_ms)
                        else:
                            on_malformed(self, "bad_message: batch item is not a response", item, received_ms)
                else:
                    on_malformed(self, "bad_message: not a JSON-RPC object", msg, received_ms)
            except Exception as exc:  # noqa: BLE001 - never let one message kill the lane
                log.exception("source %s: error handling a message", self.name)
                on_malformed(self, f"internal_error: {type(exc).__name__}: {exc}", text, received_ms)
            if received_ms - self._last_seen_s * 1000 >= 1000:
                self._last_seen_s = received_ms // 1000
                self.metrics.last_message.set(received_ms / 1000)

    # ---- hash mode ----------------------------------------------------------------------
    def _on_hash(self, tx_hash: str, received_ms: int) -> None:
        if not is_hash(tx_hash):
            self.metrics.received.inc()
            self.sink.on_malformed(self, "bad_hash: pending notification is not a 32-byte hash", tx_hash, received_ms)
            return
        if self.mode != "hashes":
            self.mode = "hashes"
            self.metrics.mode.set(0)
            log.info("source %s: node sends hashes only; fetching objects (%.0f/s, batches of %d)", self.name, self.fetch_rate, self.fetch_batch)
        tx_hash = tx_hash.lower()
        if not self.sink.on_hash(self, tx_hash, received_ms) or tx_hash in self._queued:
            return
        if len(self._fetch_queue) >= FETCH_QUEUE_LIMIT:
            old, _ = self._fetch_queue.popleft()
            self._queued.discard(old)
            self.metrics.fetch_dropped.inc()
            self.fetch_dropped_total += 1
            self.last_dropped_ms = received_ms
        self._fetch_queue.append((tx_hash, received_ms))
        self._queued.add(tx_hash)
        self._fetch_wakeup.set()

    async def _fetch_loop(self) -> None:
        tokens = float(self.fetch_batch)
        last = time.monotonic()
        queue = self._fetch_queue
        while True:
            if not queue:
                self.metrics.queue_depth.set(0)
                self._fetch_wakeup.clear()
                await self._fetch_wakeup.wait()
                continue
            n = min(len(queue), self.fetch_batch)
            now = time.monotonic()
            tokens = min(float(self.fetch_batch), tokens + (now - last) * self.fetch_rate)
            last = now
            if tokens < n:
                await asyncio.sleep((n - tokens) / self.fetch_rate)
                continue
            tokens -= n
            batch = [queue.popleft() for _ in range(n)]
            for h, _ in batch:
                self._queued.discard(h)
            self.metrics.queue_depth.set(len(queue))
            need = self.sink.need_fetch
            wanted = [(h, ts) for h, ts in batch if need(self, h, ts)]
            if not wanted:
                continue
            self.metrics.fetch_requests.inc()
            try:
                results = await self._call_batch([("eth_getTransactionByHash", [h]) for h, _ in wanted])
            except ConnectionError:
                # back to the front of the queue: fetched after the reconnect
                for item in reversed(wanted):
                    if item[0] not in self._queued:
                        queue.appendleft(item)
                        self._queued.add(item[0])
                raise
            for (h, ts), res in zip(wanted, results):
                if isinstance(res, Exception) or res is None:
                    self.metrics.fetch_missing.inc()
                    continue
                try:
                    self.sink.on_tx(self, res, ts, True)
                except Exception as exc:  # noqa: BLE001
                    log.exception("source %s: error handling a fetched transaction", self.name)
                    self.sink.on_malformed(self, f"internal_error: {type(exc).__name__}: {exc}", res, ts)

    # ---- heads --------------------------------------------------------------------------
    def _on_head(self, header: dict, received_ms: int) -> None:
        block_hash = header.get("hash")
        if not is_hash(block_hash):
            self.sink.on_malformed(self, "bad_head: head without a 32-byte hash", header, received_ms)
            return
        block_hash = block_hash.lower()
        if not self.sink.want_block(block_hash):
            return
        task = asyncio.create_task(self._fetch_block(block_hash, header, received_ms))
        self._block_tasks.add(task)
        task.add_done_callback(self._block_tasks.discard)

    async def _fetch_block(self, block_hash: str, header: dict, received_ms: int) -> None:
        block = None
        for attempt in range(3):
            try:
                block = await self._call("eth_getBlockByHash", [block_hash, False], timeout=10)
            except RpcError as exc:
                log.warning("source %s: eth_getBlockByHash(%s) failed: %s", self.name, block_hash, exc)
            except (ConnectionError, asyncio.TimeoutError):
                break
            if block:
                break
            await asyncio.sleep(0.2 * (attempt + 1))
        if not isinstance(block, dict):
            block = dict(header)  # heads without their tx list are still worth recording
            block["transactions"] = None
        self.sink.on_block(self, block, received_ms)
