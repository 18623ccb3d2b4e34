"""The landing zone: the collector's output and the pipeline's input.

Layout (see docs/architecture.md and docs/storage.md), relative to the zone's root -
``$MEV_HOME/landing/`` locally, ``s3://<bucket>/<prefix>/landing/`` with ``MEV_STORAGE=s3``::

    mempool/window=<key>/<collector_id>-<seq>.parquet    sealed segments (atomic: rename or one PUT)
    mempool/window=<key>/_SEALED.<collector_id>          collector closed this window
    sourcelog/window=<key>/<collector_id>-<seq>.parquet  every (timestamp_ms, hash, source)
    blocks/window=<key>/<collector_id>-<seq>.parquet     heads with base fee and tx hashes
    _quarantine/window=<key>/<collector_id>.jsonl        records that failed validation (local: appended)
    _quarantine/window=<key>/<collector_id>.<ms>-<n>.jsonl  the same on S3: one object per flush
    _quarantine/segments/                                segments that could not be read
    _collectors/<collector_id>.json                      heartbeat of each running collector

The write-ahead log is never in the store: it needs a local fsync to be durable, so it always
lives on the collector's disk under ``$MEV_HOME/landing/_wal/<collector_id>/`` (:meth:`wal_dir`).

Segments are immutable once sealed; every writer owns its own object names, so several
collectors share one landing zone without locks. Every location below is a *key* (a posix path
relative to the zone's root); :meth:`LandingZone.url` turns one into a path or ``s3://`` URL.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mev_assets.core.schemas import (
    BLOCKS_SCHEMA,
    LANDING_TX_SCHEMA,
    QUARANTINE_SCHEMA,
    SOURCELOG_SCHEMA,
)
from mev_assets.core.windows import key_end_ms
from mev_assets.ingest.storage import LocalStore, ObjectStore, StoredObject, StoreError, join_key, open_store

AREAS: dict[str, dict[str, pl.DataType]] = {
    "mempool": LANDING_TX_SCHEMA,
    "sourcelog": SOURCELOG_SCHEMA,
    "blocks": BLOCKS_SCHEMA,
}
SEALED_PREFIX = "_SEALED."
WINDOW_PREFIX = "window="
QUARANTINE = "_quarantine"
COLLECTORS = "_collectors"
WAL = "_wal"

_flush_counter = itertools.count()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or the whole file."""
    LocalStore(path.parent).put(path.name, data)


@dataclass(frozen=True)
class CorruptSegment:
    path: str
    reason: str


@dataclass
class AreaRead:
    frame: pl.DataFrame
    files: list[str]
    corrupt: list[CorruptSegment]


class LandingZone:
    """Layout, readers and atomic writers of one landing zone, on a local directory or S3.

    ``LandingZone(path)`` is a local zone (its WAL under ``path/_wal``);
    ``LandingZone(store, wal_root=...)`` any :class:`ObjectStore`;
    :meth:`from_settings` the zone ``MEV_STORAGE`` selects.
    """

    def __init__(self, root: Path | str | ObjectStore, wal_root: Path | str | None = None):
        self.store: ObjectStore = root if isinstance(root, ObjectStore) else LocalStore(Path(root))
        if wal_root is None and isinstance(self.store, LocalStore):
            wal_root = self.store.root / WAL
        self.wal_root: Path | None = Path(wal_root) if wal_root is not None else None

    @classmethod
    def from_settings(cls, settings) -> "LandingZone":
        """The zone of ``settings.storage``; the WAL always under ``$MEV_HOME/landing/_wal``."""
        return cls(open_store(settings, "landing"), wal_root=settings.landing_dir / WAL)

    # ---- where things are ---------------------------------------------------------------
    @property
    def root(self) -> Path | str:
        """The local directory of a local zone; the ``s3://`` URL of the zone otherwise."""
        return self.store.root if isinstance(self.store, LocalStore) else self.store.location

    @property
    def location(self) -> str:
        return self.store.location

    @property
    def is_local(self) -> bool:
        return isinstance(self.store, LocalStore)

    def url(self, key: str) -> str:
        return self.store.url(key)

    def local_path(self, key: str) -> Path:
        """The file of ``key`` in a local zone (``StoreError`` on S3)."""
        return self.store.local_path(key)

    # ---- layout (keys) ------------------------------------------------------------------
    def area_dir(self, area: str) -> str:
        return area

    def window_dir(self, area: str, key: str) -> str:
        return f"{area}/{WINDOW_PREFIX}{key}"

    def wal_dir(self, collector_id: str) -> Path:
        """The collector's write-ahead log: always a local directory (durability needs fsync)."""
        if self.wal_root is None:
            raise ValueError(f"landing zone {self.location} has no local WAL directory; build it with wal_root=")
        return self.wal_root / collector_id

    def quarantine_dir(self, key: str) -> str:
        return f"{QUARANTINE}/{WINDOW_PREFIX}{key}"

    def quarantine_file(self, key: str, collector_id: str) -> str:
        """The appendable quarantine file of a local zone (S3 zones write one object per flush)."""
        return f"{self.quarantine_dir(key)}/{collector_id}.jsonl"

    def corrupt_dir(self) -> str:
        return f"{QUARANTINE}/segments"

    def heartbeat_file(self, collector_id: str) -> str:
        return f"{COLLECTORS}/{collector_id}.json"

    def sealed_marker(self, key: str, collector_id: str) -> str:
        return f"{self.window_dir('mempool', key)}/{SEALED_PREFIX}{collector_id}"

    def segment_path(self, area: str, key: str, collector_id: str, seq: int) -> str:
        return f"{self.window_dir(area, key)}/{collector_id}-{seq:06d}.parquet"

    # ---- writers ------------------------------------------------------------------------
    def write_segment(self, area: str, key: str, collector_id: str, seq: int, frame: pl.DataFrame) -> str:
        """Seal one immutable segment atomically; returns its key."""
        schema = AREAS[area]
        frame = frame.select([pl.col(c).cast(t) for c, t in schema.items()])
        buf = io.BytesIO()
        frame.write_parquet(buf, compression="zstd", statistics=True)
        segment = self.segment_path(area, key, collector_id, seq)
        self.store.put(segment, buf.getvalue())
        return segment

    def mark_sealed(self, key: str, collector_id: str, info: dict | None = None) -> None:
        body = {"collector_id": collector_id, "sealed_at_ms": now_ms(), **(info or {})}
        self.store.put(self.sealed_marker(key, collector_id), json.dumps(body).encode())

    def append_quarantine(self, key: str, collector_id: str, records: list[dict]) -> None:
        """Add failed records (each with ``reason``) to this collector's quarantine of ``key``."""
        if records:
            self.write_quarantine_lines(
                key, collector_id, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode()
            )

    def write_quarantine_lines(self, key: str, collector_id: str, data: bytes) -> str:
        """Durably store JSON lines: appended (and fsynced) locally, one new object on S3."""
        if self.store.appendable:
            target = self.quarantine_file(key, collector_id)
            self.store.append(target, data)
            return target
        # no append on S3: a new object per flush, named so that it sorts in write order and
        # never collides (collector ids cannot contain ".")
        target = f"{self.quarantine_dir(key)}/{collector_id}.{now_ms():013d}-{next(_flush_counter):06d}.jsonl"
        self.store.put(target, data)
        return target

    def write_heartbeat(self, collector_id: str, info: dict, at_ms: int | None = None) -> None:
        beat = {**info, "heartbeat_ms": now_ms() if at_ms is None else at_ms}
        self.store.put(self.heartbeat_file(collector_id), json.dumps(beat).encode())

    # ---- readers ------------------------------------------------------------------------
    def windows(self, area: str = "mempool", since: str | None = None) -> list[str]:
        """Window keys present in ``area``, sorted; with ``since``, only keys >= it."""
        names = self.store.list_dirs(self.area_dir(area), start_at=f"{WINDOW_PREFIX}{since}" if since else None)
        return [n[len(WINDOW_PREFIX):] for n in names if n.startswith(WINDOW_PREFIX)]

    def segment_files(self, area: str, key: str) -> list[StoredObject]:
        """The sealed segments of a window (path-like in a local zone), sorted by name."""
        return [o for o in self.store.list(self.window_dir(area, key)) if o.name.endswith(".parquet")]

    def has_segment(self, area: str, key: str, collector_id: str, seq: int) -> bool:
        return self.store.exists(self.segment_path(area, key, collector_id, seq))

    def read_segment(self, segment: StoredObject | str, columns: list[str] | None = None) -> pl.DataFrame:
        return self.store.read_parquet(segment.key if isinstance(segment, StoredObject) else segment, columns)

    def read_json(self, key: str) -> dict | None:
        """A JSON object of the zone (marker, heartbeat); None when missing or unreadable."""
        try:
            return json.loads(self.store.get(key))
        except (FileNotFoundError, ValueError):  # gone meanwhile, or torn/garbled JSON
            return None

    def sealed_by(self, key: str) -> set[str]:
        return {
            o.name[len(SEALED_PREFIX):] for o in self.store.list(self.window_dir("mempool", key)) if o.name.startswith(SEALED_PREFIX)
        }

    def fingerprint(self, key: str) -> str:
        """Identifies the set of sealed segments of a window: changes when a late segment lands."""
        return _fingerprint({area: self.segment_files(area, key) for area in ("mempool", "sourcelog")})

    def fingerprints(self, keys: list[str]) -> dict[str, str]:
        """:meth:`fingerprint` of many windows from one listing per area (what a sensor wants on S3)."""
        if not keys:
            return {}
        if self.is_local:  # a directory listing per window is cheaper than walking the area
            return {k: self.fingerprint(k) for k in keys}
        wanted = set(keys)
        by_window: dict[str, dict[str, list[StoredObject]]] = {k: {"mempool": [], "sourcelog": []} for k in wanted}
        for area in ("mempool", "sourcelog"):
            for obj in self.store.walk(self.area_dir(area), start_at=f"{WINDOW_PREFIX}{min(wanted)}"):
                window, name = _split_window(obj.key)
                if window in wanted and name.endswith(".parquet"):
                    by_window[window][area].append(obj)
        return {k: _fingerprint(by_window[k]) for k in keys}

    def read_area(self, area: str, key: str) -> AreaRead:
        """Every sealed segment of ``area`` for window ``key``; unreadable ones are quarantined."""
        schema = AREAS[area]
        frames: list[pl.DataFrame] = []
        files: list[str] = []
        corrupt: list[CorruptSegment] = []
        for segment in self.segment_files(area, key):
            try:
                frame = self.read_segment(segment)
                missing = [c for c in schema if c not in frame.columns]
                if missing:
                    raise ValueError(f"missing columns {missing}")
                frames.append(frame.select([pl.col(c).cast(t) for c, t in schema.items()]))
                files.append(segment.name)
            except FileNotFoundError:
                continue  # quarantined by a concurrent reader between our listing and our read
            except StoreError:
                raise  # the object store failed, not the segment: fail the read, keep the segment
            except Exception as exc:  # noqa: BLE001 - any unreadable segment is quarantined, never fatal
                corrupt.append(self._quarantine_segment(area, key, segment, f"{type(exc).__name__}: {exc}"))
        frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)
        return AreaRead(frame=frame, files=files, corrupt=corrupt)

    def _quarantine_segment(self, area: str, key: str, segment: StoredObject, reason: str) -> CorruptSegment:
        target = f"{self.corrupt_dir()}/{area}.{WINDOW_PREFIX}{key}.{segment.name}"
        reason_line = reason.splitlines()[0][:500]
        self.store.move(segment.key, target)
        self.store.put(target + ".reason", reason_line.encode())
        return CorruptSegment(path=target, reason=reason_line)

    def quarantine_records(self, key: str, collector_id: str | None = None) -> list[dict]:
        """The quarantined records of window ``key`` (of one collector, or all), in write order."""
        rows: list[dict] = []
        for obj in self.store.list(self.quarantine_dir(key)):
            name = obj.name
            if not name.endswith(".jsonl"):
                continue
            if collector_id is not None and not (name == f"{collector_id}.jsonl" or name.startswith(f"{collector_id}.")):
                continue
            try:
                text = self.store.get(obj.key).decode("utf-8", errors="replace")
            except FileNotFoundError:
                continue
            for line in text.splitlines():
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue  # a torn last line from a crash; the rest of the file stands
        return rows

    def read_quarantine(self, key: str) -> pl.DataFrame:
        rows = self.quarantine_records(key)
        if not rows:
            return pl.DataFrame(schema=QUARANTINE_SCHEMA)
        return pl.DataFrame(rows).select(
            [pl.col(c).cast(t) if c in rows[0] else pl.lit(None, t).alias(c) for c, t in QUARANTINE_SCHEMA.items()]
        )

    def heartbeat(self, collector_id: str) -> dict | None:
        return self.read_json(self.heartbeat_file(collector_id))

    def heartbeats(self) -> list[dict]:
        beats = []
        for obj in self.store.list(COLLECTORS):
            if obj.name.endswith(".json"):
                beat = self.read_json(obj.key)
                if beat is not None:
                    beats.append(beat)
        return beats

    # ---- retention -----------------------------------------------------------------------
    def window_objects(self, key: str) -> list[str]:
        """Every stored object of window ``key``: segments, markers and quarantined records."""
        prefixes = [self.window_dir(area, key) for area in AREAS] + [self.quarantine_dir(key)]
        return [obj.key for prefix in prefixes for obj in self.store.list(prefix)]

    def wal_leftovers(self, key: str, keep_collectors: frozenset[str] = frozenset()) -> list[Path]:
        """WAL files ``_wal/<collector>/window=<key>.*.log`` of collectors not in ``keep_collectors``.

        Pass the live collectors as ``keep_collectors``: a live collector may still have the
        window open, and only the logs of stopped or crashed collectors are leftovers.
        """
        if self.wal_root is None or not self.wal_root.is_dir():
            return []
        found = []
        for collector_dir in sorted(p for p in self.wal_root.iterdir() if p.is_dir()):
            if collector_dir.name not in keep_collectors:
                found.extend(sorted(collector_dir.glob(f"{WINDOW_PREFIX}{key}.*.log")))
        return found

    def wal_windows(self) -> list[str]:
        """Window keys that have a WAL file in any collector's log directory, sorted."""
        if self.wal_root is None or not self.wal_root.is_dir():
            return []
        keys = {p.name[len(WINDOW_PREFIX):].split(".", 1)[0] for p in self.wal_root.glob(f"*/{WINDOW_PREFIX}*.log")}
        return sorted(keys)

    def delete_window(self, key: str, keep_collectors: frozenset[str] = frozenset()) -> list[str]:
        """Remove everything of window ``key`` (see :meth:`window_objects`, :meth:`wal_leftovers`).

        Returns the keys and WAL paths removed; repeating it removes nothing more.
        """
        removed = []
        for obj_key in self.window_objects(key):
            if self.store.delete(obj_key):
                removed.append(obj_key)
        if self.is_local:  # empty directories would still list the window in windows()
            for prefix in [self.window_dir(area, key) for area in AREAS] + [self.quarantine_dir(key)]:
                try:
                    self.local_path(prefix).rmdir()
                except FileNotFoundError:
                    pass
        for wal_file in self.wal_leftovers(key, keep_collectors):
            try:
                wal_file.unlink()
                removed.append(str(wal_file))
            except FileNotFoundError:
                pass  # retired by its collector meanwhile
        return removed

    def ready_windows(self, at_ms: int, window_seconds: int, grace_seconds: int, stale_after_ms: int | None = None) -> list[str]:
        """Closed windows that every live collector has sealed, or whose grace period has passed.

        A collector is live when its heartbeat is younger than ``stale_after_ms`` and it
        started before the window ended (a collector that started later cannot seal it).
        Only windows still inside their grace period are listed one by one.
        """
        stale_after_ms = stale_after_ms if stale_after_ms is not None else max(3 * window_seconds * 1000, 30_000)
        live = [b for b in self.heartbeats() if at_ms - int(b.get("heartbeat_ms", 0)) <= stale_after_ms and not b.get("stopped")]
        ready = []
        for key in self.windows("mempool"):
            try:
                end = key_end_ms(key, window_seconds)
            except ValueError:
                continue  # not a window of ours (a stray directory)
            if end > at_ms:
                continue
            if at_ms >= end + grace_seconds * 1000:
                ready.append(key)
                continue
            expected = {b["collector_id"] for b in live if int(b.get("started_ms", 0)) < end}
            sealed = self.sealed_by(key)
            if sealed and expected <= sealed:
                ready.append(key)
        return ready


def _split_window(key: str) -> tuple[str | None, str]:
    """(window key, file name) of ``<area>/window=<key>/<name>``; (None, name) otherwise."""
    parts = key.split("/")
    if len(parts) == 3 and parts[1].startswith(WINDOW_PREFIX):
        return parts[1][len(WINDOW_PREFIX):], parts[2]
    return None, parts[-1]


def _fingerprint(segments_by_area: dict[str, list[StoredObject]]) -> str:
    h = hashlib.sha256()
    for area in ("mempool", "sourcelog"):
        for obj in sorted(segments_by_area.get(area, []), key=lambda o: o.name):
            h.update(f"{area}/{obj.name}:{obj.size}\n".encode())
    return h.hexdigest()[:16]


__all__ = [
    "AREAS",
    "AreaRead",
    "CorruptSegment",
    "LandingZone",
    "SEALED_PREFIX",
    "WINDOW_PREFIX",
    "atomic_write_bytes",
    "join_key",
    "now_ms",
]
