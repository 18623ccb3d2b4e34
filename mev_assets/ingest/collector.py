"""The collector: sources -> dedup -> validation -> write-ahead log -> per-window segments.

Data flow per transaction message (all on one asyncio event loop, no locks on the hot path):

1. dedup on the *claimed* hash: a hash this collector already accepted only adds a sighting
   ``(timestamp_ms, hash, source)`` - the first time per (hash, source) - to the sourcelog;
2. otherwise ``transaction_from_rpc(obj, settings.chain_id)`` validates it; a failure goes to the
   quarantine with ``reason = str(exc)`` and the payload, and the lane keeps going;
3. the accepted row (``transaction_to_row`` + ``timestamp_ms`` of first receipt, first ``source``,
   ``collector_id``) is framed into the WAL of its window - by receipt time - and kept in the
   window's in-memory batch. The frames of one event-loop tick go out in one ``os.write``; a
   record counts as accepted once that write returned (see :mod:`mev_assets.ingest.wal`).

A sealer task closes each window ``seal_delay_ms`` after its end: it writes the batch's blocks,
sourcelog and mempool segments (atomic; mempool last = commit point, see
:mod:`mev_assets.ingest.segments`), then ``_SEALED.<collector_id>`` - for every window from the
collector's start on, empty ones included - and deletes the WAL file. Records that arrive for a
window after it was sealed (a hash fetched late in hash mode, a clock step) open the next seq
of that window and are sealed at the next tick (the marker is rewritten).

At start the collector takes ``_wal/<id>/LOCK`` (a second collector with the same id fails
fast), seals what the WAL holds from a previous run (a WAL whose mempool segment exists is only
deleted: no duplicates), and rebuilds the dedup set from its recent segments. SIGINT/SIGTERM
(via :func:`run_collector`) seal everything pending and write a final heartbeat with
``stopped: true``.

Run it: ``run_collector(settings)`` (blocking, what ``mev-assets collect`` calls), as a
subprocess ``python -m mev_assets.ingest.collector`` (settings from the environment), or in a
background thread of the current process with :class:`CollectorThread`.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import signal
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mev_assets.core.txparse import (
    InvalidTransaction,
    transaction_from_rpc,
    transaction_to_row,
)
from mev_assets.core.windows import (
    key_end_ms,
    key_for_start_ms,
    key_start_ms,
    window_start_ms,
)
from mev_assets.ingest.dedup import SeenSet, SourceIndex, rebuild_seen
from mev_assets.ingest.landing import LandingZone
from mev_assets.ingest.metrics import CollectorMetrics
from mev_assets.ingest.quarantine import QuarantineLog, quarantine_record, reason_code
from mev_assets.ingest.records import (
    KIND_BLOCK,
    KIND_SIGHTING,
    KIND_TX,
    RecordError,
    decode_record,
    encode_block,
    encode_sighting,
    encode_tx,
    tx_record,
)
from mev_assets.ingest.segments import WindowBatch, is_committed, next_seq, seal_batch
from mev_assets.ingest.sources import Backoff, SourceLane
from mev_assets.ingest.wal import WalFile, WriteAheadLog, frame, read_wal_file
from mev_assets.settings import Settings, Source

log = logging.getLogger(__name__)

LOCK_NAME = "LOCK"
FLUSH_BYTES = 64 * 1024  # flush the WAL inline once this much is pending (bounds the receipt -> WAL lag)
BLOCK_MEMORY = 4096  # block hashes remembered for cross-source block dedup


class CollectorError(RuntimeError):
    pass


class CollectorLockedError(CollectorError):
    """Another collector with the same id holds the WAL lock."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class _OpenBatch:
    """A (window, seq) batch accepting records, with its WAL file and unflushed frames."""

    __slots__ = ("batch", "wal", "pending", "end_ms", "first_ms")

    def __init__(self, batch: WindowBatch, wal: WalFile, end_ms: int, first_ms: int = 0):
        self.batch = batch
        self.wal = wal
        self.pending = bytearray()
        self.end_ms = end_ms
        self.first_ms = first_ms  # receipt time of the batch's first record (its oldest unsealed one)


@dataclass
class RecoveryReport:
    """What :meth:`Collector.recover` found in the WAL."""

    files: int = 0
    already_sealed: int = 0
    replayed_files: int = 0
    records: int = 0
    txs: int = 0
    torn_files: int = 0
    windows_marked: list[str] = field(default_factory=list)
    dedup_entries: int = 0


class Collector:
    """One collector process's worth of state. Drive it with :meth:`run` (a coroutine)."""

    def __init__(
        self,
        settings: Settings,
        landing_zone: LandingZone | None = None,
        sources: tuple[Source, ...] | list[Source] | None = None,
        *,
        collector_id: str | None = None,
        metrics: CollectorMetrics | None = None,
        metrics_addr: str = "127.0.0.1",
        heartbeat_interval: float = 2.0,
        fsync_interval: float = 0.05,
        tick_interval: float = 0.1,
        backoff_base: float = 0.25,
        backoff_cap: float = 30.0,
    ):
        self.settings = settings
        self.lz = landing_zone or LandingZone.from_settings(settings)
        self.sources = tuple(settings.sources if sources is None else sources)
        if not self.sources:
            raise CollectorError("no sources configured (MEV_SOURCES)")
        self.collector_id = collector_id or settings.collector_id
        self.chain_id = settings.chain_id
        self.window_ms = settings.window_seconds * 1000
        self.seal_delay_ms = settings.seal_delay_ms
        self.metrics = metrics or CollectorMetrics()
        self.metrics_addr = metrics_addr
        self.metrics_port: int | None = None
        self.heartbeat_interval = heartbeat_interval
        self.tick_interval = tick_interval
        self.started_ms = _now_ms()
        self.source_index = SourceIndex(s.name for s in self.sources)
        self.seen = SeenSet(settings.dedup_ttl_seconds * 1000)
        self._masks = self.seen.masks
        self.wal = WriteAheadLog(self.lz.wal_dir(self.collector_id), fsync_interval=fsync_interval)
        self.quarantine = QuarantineLog(self.lz, self.collector_id)
        self.wal.add_sync_hook(self.quarantine.sync)
        self.lanes = [
            SourceLane(
                s, self.source_index.index(s.name), self, self.metrics.source(s.name),
                fetch_rate=settings.fetch_rate, fetch_batch=settings.fetch_batch,
                backoff=Backoff(base=backoff_base, cap=backoff_cap),
            )
            for s in self.sources
        ]
        # window state
        self._open: dict[str, _OpenBatch] = {}
        self._dirty: list[_OpenBatch] = []
        self._seqs: dict[str, int] = {}
        self._cur_lo = 0
        self._cur_hi = 0
        self._cur_key = ""
        self._next_mark_ms: int | None = None
        self._remark: set[str] = set()
        self._failed: list[_OpenBatch] = []
        self._blocks_seen: dict[str, None] = {}
        # flush state
        self._flush_scheduled = False
        self._pending_bytes = 0
        self._oldest_pending_ms = 0
        self._accepted_pending = [0] * len(self.lanes)
        self._accepted_children = [lane.metrics.accepted for lane in self.lanes]
        self.accepted_total = 0
        self.quarantined_total = 0
        # runtime
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._lock_fd: int | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._fatal: BaseException | None = None
        self._bg: set[asyncio.Task] = set()
        self.recovery: RecoveryReport | None = None
        self.ready = threading.Event()
        self.stopped = threading.Event()

    # =====================================================================================
    # life cycle
    # =====================================================================================
    def acquire_lock(self) -> None:
        """Take ``_wal/<id>/LOCK``; a second collector with this id fails fast."""
        d = self.wal.dir
        d.mkdir(parents=True, exist_ok=True)
        path = d / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = ""
            try:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            except OSError:
                pass
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise CollectorLockedError(
                    f"collector id {self.collector_id!r} is already running on {self.lz.location} "
                    f"(lock {path} held{' by ' + holder if holder else ''}); "
                    "give every collector its own MEV_COLLECTOR_ID"
                ) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid={os.getpid()} host={socket.gethostname()} started_ms={self.started_ms}\n".encode(), 0)
        self._lock_fd = fd

    def release_lock(self) -> None:
        if self._lock_fd is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    def recover(self, now_ms: int | None = None) -> RecoveryReport:
        """Seal what a previous run left in the WAL, then rebuild the dedup set.

        Needs the lock. A WAL file whose mempool segment (commit point) exists is deleted
        unread; any other is replayed (torn tail dropped) and sealed under its own seq.
        Recovered windows that have already closed get their ``_SEALED`` marker.
        """
        now_ms = _now_ms() if now_ms is None else now_ms
        rep = RecoveryReport()
        touched: set[str] = set()
        for key, seq, path in self.wal.files_on_disk():
            rep.files += 1
            if is_committed(self.lz, self.collector_id, key, seq):
                path.unlink(missing_ok=True)
                rep.already_sealed += 1
                touched.add(key)
                continue
            replay = read_wal_file(path)
            rep.torn_files += replay.torn
            batch = WindowBatch(key, seq)
            for payload in replay.records:
                try:
                    kind, rec = decode_record(payload)
                except (RecordError, ValueError) as exc:
                    log.error("WAL %s: undecodable record skipped: %s", path, exc)
                    continue
                if kind == KIND_TX:
                    batch.txs.append(rec)
                elif kind == KIND_SIGHTING:
                    batch.sightings.append(rec)
                elif kind == KIND_BLOCK:
                    batch.blocks.append(rec)
            rep.records += len(batch)
            rep.txs += len(batch.txs)
            if len(batch):
                seal_batch(self.lz, self.collector_id, batch)
                rep.replayed_files += 1
                touched.add(key)
                self.metrics.segments_sealed.inc()
            path.unlink(missing_ok=True)
        for key in sorted(touched):
            if key_end_ms(key, self.settings.window_seconds) + self.seal_delay_ms <= now_ms:
                self.lz.mark_sealed(key, self.collector_id, {"recovered": True})
                rep.windows_marked.append(key)
                self.metrics.windows_sealed.inc()
        if rep.files:
            log.info(
                "WAL recovery: %d file(s), %d already sealed, %d replayed (%d records, %d txs, %d torn)",
                rep.files, rep.already_sealed, rep.replayed_files, rep.records, rep.txs, rep.torn_files,
            )
        self.seen = rebuild_seen(
            self.lz, self.collector_id, self.source_index, self.settings.dedup_ttl_seconds * 1000,
            now_ms, self.settings.window_seconds,
        )
        self._masks = self.seen.masks
        rep.dedup_entries = len(self.seen)
        self.metrics.dedup_entries.set(len(self.seen))
        self.recovery = rep
        return rep

    async def run(self) -> None:
        """Lock, recover, collect until :meth:`request_stop`, then seal everything and stop."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sealer-{self.collector_id}")
        tasks: list[asyncio.Task] = []
        sealer: asyncio.Task | None = None
        try:
            self.acquire_lock()
            await self._loop.run_in_executor(self._executor, self.recover)
            self.started_ms = _now_ms()
            self._next_mark_ms = window_start_ms(self.started_ms, self.settings.window_seconds)
            self.wal.start_syncer()
            if self.settings.metrics_port > 0:
                try:
                    self.metrics_port = self.metrics.serve(self.settings.metrics_port, self.metrics_addr)
                    log.info("metrics on http://%s:%s/metrics", self.metrics_addr, self.metrics_port)
                except OSError as exc:
                    # collecting matters more than exposing metrics: run on, visibly without them
                    log.error("metrics disabled: cannot listen on %s:%s (%s); set MEV_METRICS_PORT "
                              "to a free port or 0", self.metrics_addr, self.settings.metrics_port, exc)
            await self._heartbeat(stopped=False)
            tasks = [asyncio.create_task(lane.run(), name=f"lane-{lane.name}") for lane in self.lanes]
            sealer = asyncio.create_task(self._sealer(), name="sealer")
            log.info(
                "collector %s started: %d source(s), windows of %d s, chain id %d, landing %s",
                self.collector_id, len(self.lanes), self.settings.window_seconds, self.chain_id, self.lz.location,
            )
            self.ready.set()
            stop_wait = asyncio.create_task(self._stop.wait())
            await asyncio.wait([stop_wait, sealer], return_when=asyncio.FIRST_COMPLETED)
            stop_wait.cancel()
            self._stop.set()
            # stop the lanes (no new records), then let the sealer finish its current step -
            # cancelling it mid-seal would leave a sealed batch's WAL file behind
            await self._cancel(tasks)
            tasks = []
            try:
                await sealer
            except Exception as exc:  # noqa: BLE001 - a sealer bug is fatal, but we still shut down cleanly
                log.exception("sealer failed")
                self._fatal = self._fatal or exc
        finally:
            if sealer is not None and not sealer.done():
                tasks.append(sealer)  # only when run() itself was interrupted
            await self._shutdown(tasks)
        if self._fatal is not None:
            raise CollectorError(f"collector {self.collector_id} stopped on a fatal error: {self._fatal}") from self._fatal

    def request_stop(self) -> None:
        """Ask :meth:`run` to finish (call on the collector's loop, e.g. from a signal handler)."""
        self._stop_requested = True
        if self._stop is not None:
            self._stop.set()

    def request_stop_threadsafe(self) -> None:
        self._stop_requested = True
        loop = self._loop
        if loop is not None and self._stop is not None:
            try:
                loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # the loop already closed: nothing left to stop
                pass

    @staticmethod
    async def _cancel(tasks: list[asyncio.Task]) -> None:
        for t in tasks:
            t.cancel()
        if tasks:
            # asyncio.wait does not raise the tasks' outcomes, so a cancellation of this task
            # itself still propagates (awaiting each and catching CancelledError would eat it)
            await asyncio.wait(tasks)
            for t in tasks:
                if not t.cancelled():
                    t.exception()  # shutting down regardless; marks it retrieved

    async def _shutdown(self, tasks: list[asyncio.Task]) -> None:
        try:
            # inside the try: cancelled again while waiting (asyncio.run on a second Ctrl-C),
            # the run ends without sealing, but still closes the WAL and releases the lock
            await self._cancel(tasks)
            for t in list(self._bg):
                try:
                    await t
                except Exception:  # noqa: BLE001
                    pass
            if self._lock_fd is not None:
                self._flush()
                # seal everything pending, and mark every window up to the current one
                now = _now_ms()
                for key in sorted(self._open):
                    await self._seal_open(self._open.pop(key))
                await self._retry_failed()
                if self._next_mark_ms is not None:
                    await self._mark_through(window_start_ms(now, self.settings.window_seconds), now)
                for key in sorted(self._remark):
                    await self._mark_async(key, now)
                self._remark.clear()
                if self._failed:
                    log.error("%d batch(es) could not be sealed; they stay in the WAL for the next start", len(self._failed))
                await self._heartbeat(stopped=True)
        finally:
            self.wal.close()
            try:
                self.quarantine.close()
            except OSError as exc:
                log.error("quarantined records could not be written to %s: %s", self.lz.location, exc)
            self.metrics.shutdown()
            if self._executor is not None:
                self._executor.shutdown(wait=True)
            self.release_lock()
            self.stopped.set()
            log.info("collector %s stopped (%d accepted)", self.collector_id, self.accepted_total)

    def _fail(self, exc: BaseException) -> None:
        if self._fatal is None:
            self._fatal = exc
            log.critical("collector %s: fatal: %s", self.collector_id, exc)
        self.request_stop()

    # =====================================================================================
    # sink (called by the source lanes) - the hot path
    # =====================================================================================
    def on_tx(self, lane: SourceLane, obj: Any, received_ms: int, fetched: bool = False) -> None:
        sm = lane.metrics
        if not fetched:
            sm.received.inc()
        h = obj.get("hash") if type(obj) is dict else None
        if type(h) is str:
            h = h.lower()
            mask = self._masks.get(h)
            if mask is not None:
                sm.duplicates.inc()
                if not mask & lane.bit:
                    self._masks[h] = mask | lane.bit
                    sm.sightings.inc()
                    self._sighting(received_ms, h, lane.name)
                return
        try:
            tx = transaction_from_rpc(obj, self.chain_id)
        except InvalidTransaction as exc:
            self._quarantine(lane, str(exc), obj, received_ms)
            return
        row = transaction_to_row(tx)
        h = row["hash"]
        if not self.seen.accept(h, received_ms, lane.bit):
            sm.duplicates.inc()  # claimed hash differed only in case from an accepted one
            return
        rec = tx_record(received_ms, row, lane.name)
        ob = self._open_for(received_ms)
        ob.batch.txs.append(rec)
        self._append(ob, frame(encode_tx(rec)), received_ms)
        self._accepted_pending[lane.index] += 1

    def on_hash(self, lane: SourceLane, tx_hash: str, received_ms: int) -> bool:
        """A hash announced in hash mode: True if its object must be fetched."""
        lane.metrics.received.inc()
        return self.need_fetch(lane, tx_hash, received_ms, count_duplicate=True)

    def need_fetch(self, lane: SourceLane, tx_hash: str, received_ms: int, count_duplicate: bool = False) -> bool:
        mask = self._masks.get(tx_hash)
        if mask is None:
            return True
        if count_duplicate:
            lane.metrics.duplicates.inc()
        if not mask & lane.bit:
            self._masks[tx_hash] = mask | lane.bit
            lane.metrics.sightings.inc()
            self._sighting(received_ms, tx_hash, lane.name)
        return False

    def want_block(self, block_hash: str) -> bool:
        if block_hash in self._blocks_seen:
            return False
        self._blocks_seen[block_hash] = None
        if len(self._blocks_seen) > BLOCK_MEMORY:
            for old in list(self._blocks_seen)[: BLOCK_MEMORY // 4]:
                del self._blocks_seen[old]
        return True

    def on_block(self, lane: SourceLane, block: dict, received_ms: int) -> None:
        try:
            rec = _block_record(block, received_ms, lane.name)
        except (TypeError, ValueError, KeyError) as exc:
            self._quarantine(lane, f"bad_block: {type(exc).__name__}: {exc}", block, received_ms)
            return
        ob = self._open_for(received_ms)
        ob.batch.blocks.append(rec)
        self._append(ob, frame(encode_block(rec)), received_ms)
        lane.metrics.blocks.inc()

    def on_malformed(self, lane: SourceLane, reason: str, payload: Any, received_ms: int) -> None:
        self._quarantine(lane, reason, payload, received_ms)

    def on_state(self, lane: SourceLane, connected: bool) -> None:
        log.info("source %s %s", lane.name, "connected" if connected else "disconnected")
        if self._loop is not None and self._stop is not None and not self._stop.is_set():
            # tell watchers (heartbeat readers) right away, not at the next beat
            task = self._loop.create_task(self._heartbeat(stopped=False))
            self._bg.add(task)
            task.add_done_callback(self._bg.discard)

    # ---- internals of the hot path ------------------------------------------------------
    def _sighting(self, ts: int, tx_hash: str, source: str) -> None:
        rec = (ts, tx_hash, source)
        ob = self._open_for(ts)
        ob.batch.sightings.append(rec)
        self._append(ob, frame(encode_sighting(rec)), ts)

    def _quarantine(self, lane: SourceLane, reason: str, payload: Any, received_ms: int) -> None:
        lane.metrics.quarantined(reason_code(reason))
        self.quarantined_total += 1
        key = self._key_for(received_ms)
        try:
            self.quarantine.write(key, quarantine_record(received_ms, lane.name, self.collector_id, reason, payload))
        except OSError as exc:
            log.error("cannot write the quarantine: %s", exc)

    def _key_for(self, ts: int) -> str:
        if self._cur_lo <= ts < self._cur_hi:
            return self._cur_key
        start = ts - ts % self.window_ms
        key = key_for_start_ms(start)
        if start >= self._cur_lo:
            self._cur_lo, self._cur_hi, self._cur_key = start, start + self.window_ms, key
        return key

    def _open_for(self, ts: int) -> _OpenBatch:
        key = self._cur_key if self._cur_lo <= ts < self._cur_hi else self._key_for(ts)
        ob = self._open.get(key)
        if ob is None:
            ob = self._new_batch(key)
            ob.first_ms = ts
        return ob

    def _new_batch(self, key: str) -> _OpenBatch:
        seq = self._seqs.get(key)
        if seq is None:
            seq = next_seq(self.lz, key, self.collector_id, self.wal.dir)
        self._seqs[key] = seq + 1
        ob = _OpenBatch(WindowBatch(key, seq), self.wal.open(key, seq), key_end_ms(key, self.settings.window_seconds))
        self._open[key] = ob
        self.metrics.open_windows.set(len(self._open))
        return ob

    def _append(self, ob: _OpenBatch, data: bytes, received_ms: int) -> None:
        if not ob.pending:
            self._dirty.append(ob)
        ob.pending += data
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._oldest_pending_ms = received_ms
            self._loop.call_soon(self._flush)
        self._pending_bytes += len(data)
        if self._pending_bytes >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        """Hand every pending frame to the kernel; the records are accepted from here on."""
        self._flush_scheduled = False
        self._pending_bytes = 0
        dirty, self._dirty = self._dirty, []
        try:
            for ob in dirty:
                if ob.pending:
                    ob.wal.write(ob.pending)
                    ob.pending = bytearray()
        except OSError as exc:
            self._fail(exc)
            return
        counts = self._accepted_pending
        for i, n in enumerate(counts):
            if n:
                self._accepted_children[i].inc(n)
                self.accepted_total += n
                counts[i] = 0
        if dirty and self._oldest_pending_ms:
            self.metrics.ingest_lag.observe(max(0, _now_ms() - self._oldest_pending_ms) / 1000)

    # =====================================================================================
    # sealing
    # =====================================================================================
    async def _sealer(self) -> None:
        next_beat = time.monotonic() + self.heartbeat_interval
        next_expire = time.monotonic() + 1.0
        while not self._stop.is_set():
            now = _now_ms()
            due = sorted(k for k, ob in self._open.items() if ob.end_ms + self.seal_delay_ms <= now)
            if due:
                self._flush()
                for key in due:
                    ob = self._open.pop(key, None)
                    if ob is not None:
                        await self._seal_open(ob)
            if self._failed:
                await self._retry_failed()
            await self._mark_through(window_start_ms(now - self.seal_delay_ms, self.settings.window_seconds) - self.window_ms, now)
            if self._remark:
                for key in sorted(self._remark):
                    if not any(ob.batch.key == key for ob in self._failed):
                        if not await self._mark_async(key, now):
                            break
                        self._remark.discard(key)
            await self._prefetch_seqs(now)
            mono = time.monotonic()
            if mono >= next_expire:
                next_expire = mono + 1.0
                self.seen.expire(now)
                self._prune(now)
                self.metrics.dedup_entries.set(len(self.seen))
                self.metrics.wal_bytes.set(self.wal.open_bytes())
                errs = self.wal.sync_errors
                if errs:
                    self.metrics.wal_sync_errors.inc(errs)
                    self.wal.sync_errors = 0
            if mono >= next_beat:
                next_beat = mono + self.heartbeat_interval
                await self._heartbeat(stopped=False)
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can drop a cancellation
                async with asyncio.timeout(self.tick_interval):
                    await self._stop.wait()
            except TimeoutError:
                pass

    async def _seal_open(self, ob: _OpenBatch) -> None:
        self.metrics.open_windows.set(len(self._open))
        if ob.pending:
            self._flush()
        try:
            await self._loop.run_in_executor(self._executor, seal_batch, self.lz, self.collector_id, ob.batch)
        except Exception as exc:  # noqa: BLE001 - keep the WAL, retry at the next tick
            log.error("sealing window %s seq %d failed (kept in the WAL, will retry): %s", ob.batch.key, ob.batch.seq, exc)
            self._failed.append(ob)
            return
        self.wal.retire(ob.wal)
        self.metrics.segments_sealed.inc()
        if self._next_mark_ms is not None and key_start_ms(ob.batch.key) < self._next_mark_ms:
            self._remark.add(ob.batch.key)  # a late batch of an already marked window

    async def _retry_failed(self) -> None:
        failed, self._failed = self._failed, []
        for ob in failed:
            await self._seal_open(ob)

    async def _mark_through(self, last_start_ms: int, now: int) -> None:
        """Write the markers of every window from the next unmarked one to ``last_start_ms``."""
        while self._next_mark_ms is not None and self._next_mark_ms <= last_start_ms:
            key = key_for_start_ms(self._next_mark_ms)
            if key in self._open:
                ob = self._open.pop(key)
                await self._seal_open(ob)
            if any(ob.batch.key == key for ob in self._failed):
                return  # the marker waits until every batch of the window is sealed
            if not await self._mark_async(key, now):
                return  # retried at the next tick
            self._remark.discard(key)
            self._next_mark_ms += self.window_ms

    async def _mark_async(self, key: str, now: int) -> bool:
        """Write the window's marker off the loop; False (logged) when the landing zone failed."""
        try:
            await self._loop.run_in_executor(self._executor, self._mark, key, now)
            return True
        except OSError as exc:  # a full disk or an unreachable S3 endpoint: retry, do not die
            log.error("cannot mark window %s sealed (will retry): %s", key, exc)
            return False

    async def _prefetch_seqs(self, now: int) -> None:
        """Find the first free seq of the current and the next window off the event loop.

        The lookup lists the window's segments; on S3 that is a few round trips, which must not
        stall the hot path when the first record of a new window arrives.
        """
        start = window_start_ms(now, self.settings.window_seconds)
        for key in (key_for_start_ms(start), key_for_start_ms(start + self.window_ms)):
            if key in self._seqs:
                continue
            try:
                seq = await self._loop.run_in_executor(self._executor, next_seq, self.lz, key, self.collector_id, self.wal.dir)
            except OSError as exc:
                log.warning("cannot look up the next segment number of window %s yet: %s", key, exc)
                return
            self._seqs.setdefault(key, seq)  # a batch opened meanwhile has already claimed its own

    def _prune(self, now: int) -> None:
        """Forget per-window bookkeeping of windows long closed (recomputed from disk if needed)."""
        horizon = now - self.seal_delay_ms - 2 * self.window_ms
        old = [k for k in self._seqs if key_start_ms(k) < horizon - 3600_000 and k not in self._open]
        for k in old:
            del self._seqs[k]
        current = {self._cur_key, key_for_start_ms(window_start_ms(now, self.settings.window_seconds) - self.window_ms)}
        self.quarantine.close_except(current)

    def _mark(self, key: str, now: int) -> None:
        self.lz.mark_sealed(key, self.collector_id, {"window_seconds": self.settings.window_seconds})
        self.quarantine.close_key(key)
        end = key_end_ms(key, self.settings.window_seconds)
        self.metrics.windows_sealed.inc()
        self.metrics.seal_latency.observe(max(0.0, (_now_ms() - end) / 1000))

    def _oldest_unsealed_ms(self) -> int | None:
        firsts = [ob.first_ms for ob in (*self._open.values(), *self._failed) if ob.first_ms]
        return min(firsts) if firsts else None

    async def _heartbeat(self, stopped: bool) -> None:
        info = {
            "collector_id": self.collector_id,
            "started_ms": self.started_ms,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "window_seconds": self.settings.window_seconds,
            "chain_id": self.chain_id,
            "sources": {lane.name: lane.heartbeat_info() for lane in self.lanes},
            # what sits unsealed: the alerts' ingest lag (sealing stuck) without the metrics endpoint
            "open_windows": len(self._open),
            "failed_seals": len(self._failed),
            "oldest_unsealed_ms": self._oldest_unsealed_ms(),
            "accepted": self.accepted_total,
            "quarantined": self.quarantined_total,
            "metrics_port": self.metrics_port,
            "stopped": stopped,
        }
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self.lz.write_heartbeat, self.collector_id, info)
        except OSError as exc:
            log.error("cannot write the heartbeat: %s", exc)


def _q(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value
    return int(value, 16)


def _block_record(block: dict, received_ms: int, source: str) -> tuple:
    txs = block.get("transactions")
    if txs is None:
        tx_hashes = None
    else:
        tx_hashes = [t["hash"].lower() if isinstance(t, dict) else str(t).lower() for t in txs]
    base_fee = _q(block.get("baseFeePerGas"))
    return (
        received_ms,
        _q(block["number"]),
        str(block["hash"]).lower(),
        str(block.get("parentHash") or "").lower() or None,
        _q(block.get("timestamp")),
        None if base_fee is None else str(base_fee),
        _q(block.get("gasUsed")),
        _q(block.get("gasLimit")),
        tx_hashes,
        source,
    )


# =========================================================================================
# running it
# =========================================================================================
def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _new_loop() -> asyncio.AbstractEventLoop:
    return asyncio.new_event_loop()


def run_collector(settings: Settings, landing_zone: LandingZone | None = None) -> int:
    """Run a collector until SIGINT/SIGTERM (blocking). Returns a process exit code.

    0 after a clean stop, 2 when another collector with the same id is running,
    1 on a fatal error.
    """
    _configure_logging()
    try:
        collector = Collector(settings, landing_zone)
    except CollectorError as exc:
        print(f"mev-assets collect: {exc}", file=sys.stderr)
        return 1

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, collector.request_stop)
        await collector.run()

    loop = _new_loop()
    try:
        loop.run_until_complete(main())
        return 0
    except CollectorLockedError as exc:
        print(f"mev-assets collect: {exc}", file=sys.stderr)
        return 2
    except CollectorError as exc:
        print(f"mev-assets collect: {exc}", file=sys.stderr)
        return 1
    finally:
        loop.close()


class CollectorThread:
    """A collector on its own event loop in a background thread (tests, demo, notebooks).

    ``start()`` returns once the collector is subscribed-ready (lock taken, WAL recovered);
    ``stop()`` seals everything pending like a SIGTERM would.
    """

    def __init__(self, settings: Settings, landing_zone: LandingZone | None = None, **kwargs: Any):
        self.collector = Collector(settings, landing_zone, **kwargs)
        self._thread = threading.Thread(target=self._main, name=f"collector-{self.collector.collector_id}", daemon=True)
        self.error: BaseException | None = None

    def _main(self) -> None:
        loop = _new_loop()
        try:
            loop.run_until_complete(self.collector.run())
        except BaseException as exc:  # noqa: BLE001 - reported through .error / start()
            self.error = exc
        finally:
            loop.close()
            self.collector.ready.set()

    def start(self, timeout: float = 30.0) -> "CollectorThread":
        self._thread.start()
        if not self.collector.ready.wait(timeout):
            raise CollectorError(f"collector did not start within {timeout} s")
        if self.error is not None:
            raise self.error
        return self

    def stop(self, timeout: float = 60.0) -> None:
        self.collector.request_stop_threadsafe()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise CollectorError(f"collector did not stop within {timeout} s")
        if self.error is not None and not isinstance(self.error, asyncio.CancelledError):
            raise self.error

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> "CollectorThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        if self._thread.is_alive():
            self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m mev_assets.ingest.collector``: run with settings from the environment."""
    from mev_assets.settings import SettingsError

    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return 1
    return run_collector(settings)


if __name__ == "__main__":
    sys.exit(main())
