"""Quarantine: records that failed validation, kept with their reason.

Written to ``landing/_quarantine/window=<key>/<collector_id>.jsonl`` (the layout and line format
of :meth:`LandingZone.append_quarantine` / :meth:`LandingZone.read_quarantine`), one JSON line
per record: ``timestamp_ms, source, collector_id, reason, code, payload``. ``reason`` is
``"<code>: <detail>"`` (``str(InvalidTransaction)`` for validation failures), ``code`` its
machine part (the metric label).

The collector writes lines straight to the kernel (``os.write`` on an append-only descriptor,
so a ``kill -9`` loses nothing handed over) and fsyncs them with the WAL's group commit. Since
the quarantine is append-only and not replayed, no record is ever written twice.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from mev_assets.ingest.landing import LandingZone

MAX_PAYLOAD_CHARS = 256 * 1024

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
    """Append-only per-window quarantine files of one collector."""

    def __init__(self, lz: LandingZone, collector_id: str):
        self.lz = lz
        self.collector_id = collector_id
        self._fds: dict[str, int] = {}
        self._dirty: set[int] = set()
        self._lock = threading.Lock()
        self.records = 0

    def write(self, key: str, record: dict) -> None:
        line = (_dumps(record) + "\n").encode("utf-8")
        with self._lock:
            fd = self._fds.get(key)
            if fd is None:
                path = self.lz.quarantine_file(key, self.collector_id)
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = self._fds[key] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            view = memoryview(line)
            done = 0
            while done < len(view):
                done += os.write(fd, view[done:])
            self._dirty.add(fd)
        self.records += 1

    def sync(self) -> None:
        """fsync the files written since the last sync (called by the WAL syncer thread)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            for fd in dirty:
                os.fsync(fd)

    def close_key(self, key: str) -> None:
        with self._lock:
            fd = self._fds.pop(key, None)
            if fd is not None:
                if fd in self._dirty:
                    self._dirty.discard(fd)
                    os.fsync(fd)
                os.close(fd)

    def close_except(self, keys: set[str]) -> None:
        """Close the files of every window not in ``keys`` (late records reopen them)."""
        for key in [k for k in self._fds if k not in keys]:
            self.close_key(key)

    def close(self) -> None:
        for key in list(self._fds):
            self.close_key(key)
