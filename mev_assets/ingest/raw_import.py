"""Import captured raw transactions as landing segments, through the collector's writing path.

Input: JSON lines ``{"timestamp_ms": <int>, "raw": "0x<signed tx>", "source": "<name>"}`` (a
file - ``.gz`` is read compressed - or any iterable of lines or dicts). Each line is decoded
with :func:`decode_raw_transaction` (sender recovered, ``settings.chain_id`` enforced) and
becomes a landing row exactly like a collected one: ``transaction_to_row`` + ``timestamp_ms``
(the line's), ``source`` (the line's, default ``import``) and ``collector_id``
(``import-<file stem>`` unless given). Rows are grouped by window (of their timestamp) and
written with :func:`mev_assets.ingest.segments.seal_batch` - mempool + sourcelog segments,
same names, same commit order as the collector - and every window written gets
``_SEALED.<collector_id>``, so it becomes a ready partition.

Dedup as in the collector: one row per hash (the earliest line within a chunk of
``chunk_lines``; across chunks the first imported), every further (hash, source) pair a
sourcelog sighting. Hashes already landed by the same collector id are preloaded per window,
so re-running an import adds nothing (idempotent).

Malformed lines (bad JSON, missing/invalid fields), bad RLP, bad signatures and wrong chain
ids are quarantined with the reason (``str(InvalidTransaction)``) under the window of the
line's timestamp; a line without a usable timestamp goes under the preceding timestamped line's
window (the first one's if none precedes; the import time if the input has no timestamp at all),
so a re-run recognises quarantined lines and does not append them twice.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mev_assets.core.txparse import (
    InvalidTransaction,
    decode_raw_transaction,
    transaction_to_row,
)
from mev_assets.core.windows import window_key
from mev_assets.ingest.dedup import SourceIndex
from mev_assets.ingest.landing import LandingZone, now_ms
from mev_assets.ingest.quarantine import quarantine_record, reason_code
from mev_assets.ingest.records import tx_record
from mev_assets.ingest.segments import WindowBatch, next_seq, own_segments, seal_batch
from mev_assets.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "import"
FLUSH_RECORDS = 100_000


class RawImportError(ValueError):
    pass


@dataclass
class ImportReport:
    collector_id: str
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    sightings: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    windows: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def summary(self) -> str:
        q = ", ".join(f"{k}={v}" for k, v in sorted(self.quarantined.items())) or "none"
        return (
            f"{self.lines} lines: {self.accepted} accepted, {self.duplicates} duplicates, "
            f"{self.quarantined_total} quarantined ({q}); {len(self.windows)} window(s) written "
            f"as collector {self.collector_id}"
        )


def _safe_id(name: str) -> str:
    cleaned = "".join(c if (c.isalnum() or c in "-_") else "-" for c in name).strip("-") or "lines"
    return cleaned[:48]


def _lines_of(path_or_lines: Any) -> tuple[Iterable, str]:
    if isinstance(path_or_lines, (str, Path)):
        path = Path(path_or_lines)
        stem = path.name
        for suffix in (".gz", ".jsonl", ".json", ".ndjson", ".txt"):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
        opener = gzip.open if path.suffix == ".gz" else open

        def gen():
            with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
                yield from fh

        return gen(), stem
    return path_or_lines, "lines"


def import_raw_lines(
    path_or_lines: str | Path | Iterable[str | bytes | dict],
    landing_zone: LandingZone,
    settings: Settings,
    collector_id: str | None = None,
    *,
    chunk_lines: int = 50_000,
) -> ImportReport:
    """Decode, validate, dedup and land raw-transaction JSON lines; see the module doc."""
    lines, name = _lines_of(path_or_lines)
    cid = collector_id or f"import-{_safe_id(name)}"
    if not cid.replace("-", "").replace("_", "").isalnum():
        raise RawImportError(f"collector id must be alphanumeric (with - or _), got {cid!r}")
    imp = _Importer(landing_zone, settings, cid)
    chunk: list[tuple[int, dict, str]] = []
    for line in lines:
        parsed = imp.parse(line)
        if parsed is not None:
            chunk.append(parsed)
            if len(chunk) >= chunk_lines:
                imp.add_chunk(chunk)
                chunk = []
    imp.add_chunk(chunk)
    imp.finish()
    log.info("import %s: %s", name, imp.report.summary())
    return imp.report


class _Importer:
    def __init__(self, lz: LandingZone, settings: Settings, cid: str):
        self.lz = lz
        self.settings = settings
        self.cid = cid
        self.report = ImportReport(cid)
        self.sources = SourceIndex()
        self.seen: dict[str, int] = {}
        self.loaded: set[str] = set()
        self.batches: dict[str, WindowBatch] = {}
        self.touched: set[str] = set()
        self.quarantine: dict[str, list[dict]] = {}
        self.buffered = 0
        self.started = now_ms()
        self.last_ts: int | None = None
        self.untimed: list[tuple[str, str, Any]] = []

    # ---- per line -----------------------------------------------------------------------
    def _quarantine(self, ts: int | None, source: str, reason: str, payload: Any) -> None:
        if ts is None:
            # no usable timestamp: filed under the nearest timestamped line (deterministic, so a
            # re-run recognises it), or the import time when the input has none at all
            if self.last_ts is None:
                self.untimed.append((source, reason, payload))
                code = reason_code(reason)
                self.report.quarantined[code] = self.report.quarantined.get(code, 0) + 1
                return
            ts = self.last_ts
        self._file_quarantine(ts, source, reason, payload)
        code = reason_code(reason)
        self.report.quarantined[code] = self.report.quarantined.get(code, 0) + 1

    def _file_quarantine(self, ts: int, source: str, reason: str, payload: Any) -> None:
        key = window_key(ts, self.settings.window_seconds)
        self.quarantine.setdefault(key, []).append(quarantine_record(ts, source, self.cid, reason, payload))

    def parse(self, line: str | bytes | dict) -> tuple[int, dict, str] | None:
        if isinstance(line, (str, bytes)):
            text = line.strip()
            if not text:
                return None
            self.report.lines += 1
            try:
                obj = json.loads(text)
            except ValueError as exc:
                self._quarantine(None, DEFAULT_SOURCE, f"malformed_json: {exc}", text)
                return None
        else:
            self.report.lines += 1
            obj = line
        if not isinstance(obj, dict):
            self._quarantine(None, DEFAULT_SOURCE, "bad_field: line is not a JSON object", obj)
            return None
        ts = obj.get("timestamp_ms")
        source = obj.get("source") or DEFAULT_SOURCE
        if not isinstance(source, str) or not source.replace("-", "").replace("_", "").replace(".", "").isalnum():
            self._quarantine(None, DEFAULT_SOURCE, f"bad_field: source {source!r} is not a name", obj)
            return None
        if ts is None:
            self._quarantine(None, source, "missing_field: timestamp_ms is missing", obj)
            return None
        if type(ts) is not int or ts < 0:
            self._quarantine(None, source, f"bad_field: timestamp_ms {ts!r} is not a non-negative integer (ms)", obj)
            return None
        if self.last_ts is None:
            self.last_ts = ts
            for item in self.untimed:
                self._file_quarantine(ts, *item)
            self.untimed.clear()
        self.last_ts = ts
        raw = obj.get("raw")
        if raw is None:
            raw = obj.get("raw_tx") or obj.get("rawTx")
        if raw is None:
            self._quarantine(ts, source, "missing_field: raw is missing", obj)
            return None
        try:
            tx = decode_raw_transaction(raw, expected_chain_id=self.settings.chain_id)
        except InvalidTransaction as exc:
            self._quarantine(ts, source, str(exc), obj)
            return None
        return ts, transaction_to_row(tx), source

    # ---- per chunk ----------------------------------------------------------------------
    def _preload(self, key: str) -> None:
        """Hashes (and source bits) this collector id already landed in window ``key``."""
        self.loaded.add(key)
        for area, cols in (("mempool", ["hash", "source"]), ("sourcelog", ["hash", "source"])):
            for _, segment in own_segments(self.lz, area, key, self.cid):
                try:
                    frame = self.lz.read_segment(segment, columns=cols)
                except Exception as exc:  # noqa: BLE001
                    log.warning("import: cannot read %s for dedup: %s", self.lz.url(segment.key), exc)
                    continue
                for h, src in frame.iter_rows():
                    self.seen[h] = self.seen.get(h, 0) | self.sources.bit(src)

    def add_chunk(self, chunk: list[tuple[int, dict, str]]) -> None:
        if not chunk:
            return
        chunk.sort(key=lambda item: item[0])
        ws = self.settings.window_seconds
        for ts, row, source in chunk:
            key = window_key(ts, ws)
            if key not in self.loaded:
                self._preload(key)
            bit = self.sources.bit(source)
            h = row["hash"]
            mask = self.seen.get(h)
            batch = self.batches.get(key)
            if batch is None:
                batch = self.batches[key] = WindowBatch(key, -1)
            if mask is None:
                self.seen[h] = bit
                batch.txs.append(tx_record(ts, row, source))
                self.report.accepted += 1
            else:
                self.report.duplicates += 1
                if mask & bit:
                    continue
                self.seen[h] = mask | bit
                batch.sightings.append((ts, h, source))
                self.report.sightings += 1
            self.buffered += 1
            if len(batch) >= FLUSH_RECORDS:
                self._flush(key)
        if self.buffered >= 2 * FLUSH_RECORDS:
            for key in list(self.batches):
                self._flush(key)

    def _flush(self, key: str) -> None:
        batch = self.batches.pop(key, None)
        if batch is None or not len(batch):
            return
        self.buffered -= len(batch)
        batch.seq = next_seq(self.lz, key, self.cid)
        result = seal_batch(self.lz, self.cid, batch)
        self.touched.add(key)
        self.report.segments.extend(result.paths)

    def _quarantined_before(self, key: str) -> set[tuple]:
        known: set[tuple] = set()
        for r in self.lz.quarantine_records(key, self.cid):
            try:
                known.add((r.get("timestamp_ms"), r.get("source"), r.get("reason"), r.get("payload")))
            except AttributeError:
                continue  # a line that is not an object
        return known

    def finish(self) -> None:
        for item in self.untimed:
            self._file_quarantine(self.started, *item)
        self.untimed.clear()
        for key in sorted(self.batches):
            self._flush(key)
        for key, records in sorted(self.quarantine.items()):
            # a re-run of the same import does not quarantine the same line twice
            known = self._quarantined_before(key)
            fresh = [r for r in records if (r["timestamp_ms"], r["source"], r["reason"], r["payload"]) not in known]
            self.lz.append_quarantine(key, self.cid, fresh)
        for key in sorted(self.touched):
            self.lz.mark_sealed(key, self.cid, {"window_seconds": self.settings.window_seconds, "import": True})
        self.report.windows = sorted(self.touched)
