"""The landing zone: the collector's output and the pipeline's input.

Layout (see docs/architecture.md)::

    landing/mempool/window=<key>/<collector_id>-<seq>.parquet    sealed segments (atomic rename)
    landing/mempool/window=<key>/_SEALED.<collector_id>          collector closed this window
    landing/sourcelog/window=<key>/<collector_id>-<seq>.parquet  every (timestamp_ms, hash, source)
    landing/blocks/window=<key>/<collector_id>-<seq>.parquet     heads with base fee and tx hashes
    landing/_wal/<collector_id>/                                 write-ahead log of unsealed records
    landing/_quarantine/window=<key>/<collector_id>.jsonl        records that failed validation
    landing/_quarantine/segments/                                segments that could not be read
    landing/_collectors/<collector_id>.json                      heartbeat of each running collector

Segments are immutable once sealed; every writer owns its own file names, so several collectors
share one landing zone without locks.
"""

from __future__ import annotations

import hashlib
import json
import os
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

AREAS: dict[str, dict[str, pl.DataType]] = {
    "mempool": LANDING_TX_SCHEMA,
    "sourcelog": SOURCELOG_SCHEMA,
    "blocks": BLOCKS_SCHEMA,
}
SEALED_PREFIX = "_SEALED."
WINDOW_PREFIX = "window="


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or the whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}-{os.getpid()}"
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


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
    """Paths, readers and atomic writers of one landing zone on the local filesystem."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    # ---- layout -------------------------------------------------------------------------
    def area_dir(self, area: str) -> Path:
        return self.root / area

    def window_dir(self, area: str, key: str) -> Path:
        return self.root / area / f"{WINDOW_PREFIX}{key}"

    def wal_dir(self, collector_id: str) -> Path:
        return self.root / "_wal" / collector_id

    def quarantine_file(self, key: str, collector_id: str) -> Path:
        return self.root / "_quarantine" / f"{WINDOW_PREFIX}{key}" / f"{collector_id}.jsonl"

    def corrupt_dir(self) -> Path:
        return self.root / "_quarantine" / "segments"

    def heartbeat_file(self, collector_id: str) -> Path:
        return self.root / "_collectors" / f"{collector_id}.json"

    def segment_path(self, area: str, key: str, collector_id: str, seq: int) -> Path:
        return self.window_dir(area, key) / f"{collector_id}-{seq:06d}.parquet"

    # ---- writers ------------------------------------------------------------------------
    def write_segment(self, area: str, key: str, collector_id: str, seq: int, frame: pl.DataFrame) -> Path:
        """Seal one immutable segment (write to a temp name, fsync, atomic rename)."""
        schema = AREAS[area]
        frame = frame.select([pl.col(c).cast(t) for c, t in schema.items()])
        path = self.segment_path(area, key, collector_id, seq)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".tmp-{path.name}-{os.getpid()}"
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        return path

    def mark_sealed(self, key: str, collector_id: str, info: dict | None = None) -> None:
        body = {"collector_id": collector_id, "sealed_at_ms": now_ms(), **(info or {})}
        atomic_write_bytes(self.window_dir("mempool", key) / f"{SEALED_PREFIX}{collector_id}", json.dumps(body).encode())

    def append_quarantine(self, key: str, collector_id: str, records: list[dict]) -> None:
        """Append failed records (each with ``reason``) to this collector's quarantine file."""
        if not records:
            return
        path = self.quarantine_file(key, collector_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def write_heartbeat(self, collector_id: str, info: dict) -> None:
        atomic_write_bytes(self.heartbeat_file(collector_id), json.dumps({**info, "heartbeat_ms": now_ms()}).encode())

    # ---- readers ------------------------------------------------------------------------
    def windows(self, area: str = "mempool") -> list[str]:
        base = self.area_dir(area)
        if not base.is_dir():
            return []
        return sorted(p.name[len(WINDOW_PREFIX):] for p in base.iterdir() if p.is_dir() and p.name.startswith(WINDOW_PREFIX))

    def segment_files(self, area: str, key: str) -> list[Path]:
        d = self.window_dir(area, key)
        if not d.is_dir():
            return []
        return sorted(p for p in d.iterdir() if p.suffix == ".parquet" and not p.name.startswith("."))

    def sealed_by(self, key: str) -> set[str]:
        d = self.window_dir("mempool", key)
        if not d.is_dir():
            return set()
        return {p.name[len(SEALED_PREFIX):] for p in d.iterdir() if p.name.startswith(SEALED_PREFIX)}

    def fingerprint(self, key: str) -> str:
        """Identifies the set of sealed segments of a window: changes when a late segment lands."""
        h = hashlib.sha256()
        for area in ("mempool", "sourcelog"):
            for p in self.segment_files(area, key):
                h.update(f"{area}/{p.name}:{p.stat().st_size}\n".encode())
        return h.hexdigest()[:16]

    def read_area(self, area: str, key: str) -> AreaRead:
        """Every sealed segment of ``area`` for window ``key``; unreadable ones are quarantined."""
        schema = AREAS[area]
        frames: list[pl.DataFrame] = []
        files: list[str] = []
        corrupt: list[CorruptSegment] = []
        for path in self.segment_files(area, key):
            try:
                frame = pl.read_parquet(path)
                missing = [c for c in schema if c not in frame.columns]
                if missing:
                    raise ValueError(f"missing columns {missing}")
                frames.append(frame.select([pl.col(c).cast(t) for c, t in schema.items()]))
                files.append(path.name)
            except Exception as exc:  # noqa: BLE001 - any unreadable segment is quarantined, never fatal
                corrupt.append(self._quarantine_segment(area, key, path, f"{type(exc).__name__}: {exc}"))
        frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)
        return AreaRead(frame=frame, files=files, corrupt=corrupt)

    def _quarantine_segment(self, area: str, key: str, path: Path, reason: str) -> CorruptSegment:
        target = self.corrupt_dir() / f"{area}.{WINDOW_PREFIX}{key}.{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        reason_line = reason.splitlines()[0][:500]
        atomic_write_bytes(target.with_name(target.name + ".reason"), reason_line.encode())
        return CorruptSegment(path=str(target.relative_to(self.root)), reason=reason_line)

    def read_quarantine(self, key: str) -> pl.DataFrame:
        d = self.quarantine_file(key, "x").parent
        rows: list[dict] = []
        if d.is_dir():
            for p in sorted(d.glob("*.jsonl")):
                for line in p.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError:
                            continue  # a torn last line from a crash; the rest of the file stands
        if not rows:
            return pl.DataFrame(schema=QUARANTINE_SCHEMA)
        return pl.DataFrame(rows).select([pl.col(c).cast(t) if c in rows[0] else pl.lit(None, t).alias(c) for c, t in QUARANTINE_SCHEMA.items()])

    def heartbeats(self) -> list[dict]:
        d = self.root / "_collectors"
        beats = []
        if d.is_dir():
            for p in sorted(d.glob("*.json")):
                try:
                    beats.append(json.loads(p.read_text()))
                except (OSError, json.JSONDecodeError):
                    continue
        return beats

    def ready_windows(self, at_ms: int, window_seconds: int, grace_seconds: int, stale_after_ms: int | None = None) -> list[str]:
        """Closed windows that every live collector has sealed, or whose grace period has passed.

        A collector is live when its heartbeat is younger than ``stale_after_ms`` and it
        started before the window ended (a collector that started later cannot seal it).
        """
        stale_after_ms = stale_after_ms if stale_after_ms is not None else max(3 * window_seconds * 1000, 30_000)
        live = [b for b in self.heartbeats() if at_ms - int(b.get("heartbeat_ms", 0)) <= stale_after_ms and not b.get("stopped")]
        ready = []
        for key in self.windows("mempool"):
            end = key_end_ms(key, window_seconds)
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
