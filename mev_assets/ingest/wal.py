"""Write-ahead log of the collector: an accepted record survives ``kill -9``.

Layout: one directory per collector, ``landing/_wal/<collector_id>/``, holding one log file per
(window, seq), named ``window=<key>.<seq:06d>.log``, plus the ``LOCK`` file of the running
collector (see :mod:`mev_assets.ingest.collector`).

Record framing (little endian)::

    u32 length | u32 crc32(payload) | payload (length bytes)

The payload is opaque here; the collector uses one kind byte followed by compact JSON
(see :mod:`mev_assets.ingest.records`).

Durability guarantee (the exact contract):

* A record counts as *accepted* only after its frame has been handed to the kernel with
  ``write(2)`` on the log file (there is no user-space buffer in between: the collector batches
  the frames of one event-loop tick, at most 64 KiB, into one ``os.write`` - typically a few
  ms after receipt - and only then counts them). A crash of the collector process
  (``kill -9``, OOM kill, an exception) therefore loses no accepted record: the data is in the
  page cache and reaches the file.
* Group commit: a background thread ``fdatasync``s every log file written since its last sync
  at most every ``fsync_interval`` seconds (50 ms by default), and fsyncs the directory when
  files were created. A power loss or kernel crash may lose the records accepted during the
  last interval (plus the time the sync takes) - never earlier ones.
* Replay reads frames until the first incomplete or corrupt one (short header, short payload,
  bad crc, absurd length): a torn last record - what a crash during a write leaves - and any
  bytes after it are dropped; every complete record before it is returned.
* Sealing (collector side): the segments of a (window, seq) are fsynced and atomically renamed
  before its log file is deleted, so a record is always in the log, in a sealed segment, or
  both - and "both" is resolved at recovery by the commit rule (segment exists -> delete log).
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

HEADER = struct.Struct("<II")
MAX_RECORD_BYTES = 64 * 1024 * 1024
WAL_SUFFIX = ".log"
_NAME_RE = re.compile(r"^window=(?P<key>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(?P<seq>\d+)\.log$")

_crc32 = zlib.crc32
_pack = HEADER.pack


def frame(payload: bytes) -> bytes:
    """One framed record: length, crc32, payload."""
    return _pack(len(payload), _crc32(payload)) + payload


def wal_name(key: str, seq: int) -> str:
    return f"window={key}.{seq:06d}{WAL_SUFFIX}"


def parse_wal_name(name: str) -> tuple[str, int] | None:
    m = _NAME_RE.match(name)
    return (m["key"], int(m["seq"])) if m else None


@dataclass
class Replay:
    """What a log file holds: the complete records, and whether a torn tail was dropped."""

    records: list[bytes]
    valid_bytes: int
    total_bytes: int

    @property
    def torn(self) -> bool:
        return self.valid_bytes < self.total_bytes


def decode_frames(data: bytes | memoryview) -> Replay:
    """Every complete, intact record of ``data`` up to the first torn or corrupt one."""
    view = memoryview(data)
    size = len(view)
    records: list[bytes] = []
    pos = 0
    unpack = HEADER.unpack_from
    while pos + HEADER.size <= size:
        length, crc = unpack(view, pos)
        start = pos + HEADER.size
        end = start + length
        if length > MAX_RECORD_BYTES or end > size:
            break
        payload = bytes(view[start:end])
        if _crc32(payload) != crc:
            break
        records.append(payload)
        pos = end
    return Replay(records=records, valid_bytes=pos, total_bytes=size)


def read_wal_file(path: Path | str) -> Replay:
    """Replay one log file (tolerates a torn last record)."""
    with open(path, "rb") as fh:
        data = fh.read()
    replay = decode_frames(data)
    if replay.torn:
        log.warning(
            "WAL %s: dropped a torn tail of %d bytes after %d complete records",
            path, replay.total_bytes - replay.valid_bytes, len(replay.records),
        )
    return replay


class WalFile:
    """One append-only log file of a (window, seq). Not thread-safe for writers (one writer)."""

    __slots__ = ("path", "key", "seq", "fd", "bytes_written", "_dirty", "_lock", "closed")

    def __init__(self, path: Path, key: str, seq: int):
        self.path = path
        self.key = key
        self.seq = seq
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.bytes_written = os.fstat(self.fd).st_size
        self._dirty = False
        self._lock = threading.Lock()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Hand ``data`` (whole frames) to the kernel; returns the bytes written."""
        view = memoryview(data)
        total = len(view)
        done = 0
        fd = self.fd
        while done < total:
            done += os.write(fd, view[done:])
        self.bytes_written += total
        self._dirty = True
        return total

    def sync(self) -> bool:
        """fdatasync if written since the last sync; safe to call from the syncer thread."""
        if not self._dirty:
            return False
        with self._lock:
            if self.closed or not self._dirty:
                return False
            self._dirty = False
            os.fdatasync(self.fd)
            return True

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                os.close(self.fd)

    def delete(self) -> None:
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class WriteAheadLog:
    """The log directory of one collector, and its group-commit syncer thread."""

    def __init__(self, directory: Path | str, fsync_interval: float = 0.05):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fsync_interval = fsync_interval
        self._files: dict[tuple[str, int], WalFile] = {}
        self._files_lock = threading.Lock()
        self._dir_dirty = False
        self._extra_syncs: list = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sync_errors = 0

    # ---- files --------------------------------------------------------------------------
    def path_for(self, key: str, seq: int) -> Path:
        return self.dir / wal_name(key, seq)

    def open(self, key: str, seq: int) -> WalFile:
        """Open (create or append to) the log of (key, seq)."""
        with self._files_lock:
            wf = self._files.get((key, seq))
            if wf is None or wf.closed:
                wf = WalFile(self.path_for(key, seq), key, seq)
                self._files[(key, seq)] = wf
                self._dir_dirty = True
            return wf

    def retire(self, wf: WalFile) -> None:
        """Close and delete a log whose records are sealed in segments."""
        with self._files_lock:
            if self._files.get((wf.key, wf.seq)) is wf:
                del self._files[(wf.key, wf.seq)]
        wf.delete()

    def files_on_disk(self) -> list[tuple[str, int, Path]]:
        """Every log file of this directory as (key, seq, path), oldest window first."""
        found = []
        if self.dir.is_dir():
            for p in self.dir.iterdir():
                parsed = parse_wal_name(p.name)
                if parsed:
                    found.append((parsed[0], parsed[1], p))
        return sorted(found)

    def open_bytes(self) -> int:
        with self._files_lock:
            return sum(wf.bytes_written for wf in self._files.values() if not wf.closed)

    # ---- group commit -------------------------------------------------------------------
    def add_sync_hook(self, fn) -> None:
        """Also call ``fn()`` from the syncer thread each interval (e.g. the quarantine log)."""
        self._extra_syncs.append(fn)

    def sync(self) -> int:
        """fsync every dirty log (and the directory after creations); returns files synced."""
        with self._files_lock:
            files = list(self._files.values())
            dir_dirty, self._dir_dirty = self._dir_dirty, False
        synced = 0
        for wf in files:
            try:
                synced += wf.sync()
            except OSError as exc:  # a failing disk: count and keep the collector informed via logs
                self.sync_errors += 1
                log.error("WAL fsync of %s failed: %s", wf.path, exc)
        if dir_dirty:
            try:
                fd = os.open(self.dir, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:
                self.sync_errors += 1
                log.error("WAL directory fsync of %s failed: %s", self.dir, exc)
        for fn in self._extra_syncs:
            try:
                fn()
            except OSError as exc:
                self.sync_errors += 1
                log.error("sync hook failed: %s", exc)
        return synced

    def start_syncer(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run_syncer, name="wal-syncer", daemon=True)
        self._thread.start()

    def _run_syncer(self) -> None:
        while not self._stop.wait(self.fsync_interval):
            self.sync()
        self.sync()

    def close(self) -> None:
        """Stop the syncer (with a final sync) and close the open logs (they stay on disk)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        else:
            self.sync()
        with self._files_lock:
            files = list(self._files.values())
            self._files.clear()
        for wf in files:
            wf.close()
