"""Quarantine: records that failed validation, kept with their reason.

Written to ``landing/_quarantine/window=<key>/<collector_id>.jsonl`` (the layout and line format
of :meth:`LandingZone.append_quarantine` / :meth:`LandingZone.read_quarantine`), one JSON line
per record: ``timestamp_ms, source, collector_id, reason, code, payload``. ``reason`` is
``"<code>: <detail>"`` (``str(InvalidTransaction)`` for validation failures), ``code`` its
machine part (the metric label).

Local zone: the collector writes lines straight to the kernel (``os.write`` on an append-only
descriptor, so a ``kill -9`` loses nothing handed over) and fsyncs them with the WAL's group
commit. Since the quarantine is append-only and not replayed, no record is ever written twice.

S3 zone: S3 has no append, so lines are buffered per window and each flush is one new object
``_quarantine/window=<key>/<collector_id>.<ms>-<n>.jsonl``. A flush happens with the WAL's group
commit at most every :data:`S3_FLUSH_SECONDS` (bounding the PUTs a flood of bad records costs)
and when a window is closed; a ``kill -9`` loses the lines of at most that interval. A failed
PUT keeps the lines buffered for the next flush.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from mev_assets.ingest.landing import LandingZone

MAX_PAYLOAD_CHARS = 256 * 1024
S3_FLUSH_SECONDS = 1.0  # S3 zones: at most one quarantine object per window per second

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode


def reason_code(reason: str) -> str:
    """The machine part of a ``"<code>: <detail>"`` reason."""
    return reason.split(":", 1)[0].strip() or "unknown"


def payload_text(payload: Any) -> str:
    """The offending record as text (JSON for objects), capped at :data:`MAX_PAYLOAD_CHARS`."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        text = bytes(payload).decode("utf-8", errors="replace")
    elif isinstance(payload, str):
        text = payload
    else:
        try:
            text = _dumps(payload)
        except (TypeError, ValueError):
            text = repr(payload)
    if len(text) > MAX_PAYLOAD_CHARS:
        text = text[:MAX_PAYLOAD_CHARS] + f"...[truncated, {len(text)} chars]"
    return text


def quarantine_record(timestamp_ms: int, source: str, collector_id: str, reason: str, payload: Any) -> dict:
    return {
        "timestamp_ms": int(timestamp_ms),
        "source": source,
        "collector_id": collector_id,
        "reason": reason,
        "code": reason_code(reason),
        "payload": payload_text(payload),
    }


class QuarantineLog:
    """Per-window quarantine of one collector: append-only files locally, objects per flush on S3."""

    def __init__(self, lz: LandingZone, collector_id: str, s3_flush_seconds: float | None = None):
        self.lz = lz
        self.collector_id = collector_id
        self._append = lz.store.appendable
        self._fds: dict[str, int] = {}
        self._dirty: set[int] = set()
        self._buffers: dict[str, bytearray] = {}
        self._flush_interval = S3_FLUSH_SECONDS if s3_flush_seconds is None else s3_flush_seconds
        self._next_flush = 0.0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self.records = 0

    def write(self, key: str, record: dict) -> None:
        line = (_dumps(record) + "\n").encode("utf-8")
        with self._lock:
            if not self._append:
                self._buffers.setdefault(key, bytearray()).extend(line)
            else:
                fd = self._fds.get(key)
                if fd is None:
                    path = self.lz.local_path(self.lz.quarantine_file(key, self.collector_id))
                    path.parent.mkdir(parents=True, exist_ok=True)
                    fd = self._fds[key] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                view = memoryview(line)
                done = 0
                while done < len(view):
                    done += os.write(fd, view[done:])
                self._dirty.add(fd)
        self.records += 1

    def sync(self) -> None:
        """Make the lines written so far durable (called by the WAL syncer thread).

        Local: fsync the files written since the last sync. S3: PUT the buffered lines, at
        most every ``s3_flush_seconds``.
        """
        if not self._append:
            now = time.monotonic()
            if now >= self._next_flush:
                self._next_flush = now + self._flush_interval
                self._flush_buffers(None)
            return
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            for fd in dirty:
                os.fsync(fd)

    def _flush_buffers(self, keys: set[str] | None) -> None:
        with self._flush_lock:  # one flusher at a time keeps each window's objects in line order
            with self._lock:
                todo = {k: bytes(b) for k, b in self._buffers.items() if b and (keys is None or k in keys)}
                for k in todo:
                    del self._buffers[k]
            failed: OSError | None = None
            for key, data in todo.items():
                try:
                    self.lz.write_quarantine_lines(key, self.collector_id, data)
                except OSError as exc:
                    failed = exc
                    with self._lock:  # keep the lines, ahead of any written meanwhile
                        self._buffers[key] = bytearray(data) + self._buffers.get(key, bytearray())
            if failed is not None:
                raise failed

    def close_key(self, key: str) -> None:
        if not self._append:
            self._flush_buffers({key})
            return
        with self._lock:
            fd = self._fds.pop(key, None)
            if fd is not None:
                if fd in self._dirty:
                    self._dirty.discard(fd)
                    os.fsync(fd)
                os.close(fd)

    def close_except(self, keys: set[str]) -> None:
        """Close the files of every window not in ``keys`` (late records reopen them)."""
        if not self._append:
            return  # buffers are flushed by sync(); nothing is held open
        for key in [k for k in self._fds if k not in keys]:
            self.close_key(key)

    def close(self) -> None:
        if not self._append:
            self._flush_buffers(None)
            return
        for key in list(self._fds):
            self.close_key(key)
