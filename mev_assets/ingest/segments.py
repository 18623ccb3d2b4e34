"""Sealing: turning the records of one (window, seq) into immutable landing segments.

Used by the collector (live and at WAL recovery) and by the raw importer - one writing path.

Commit protocol of a batch ``(key, seq)`` of collector ``cid``:

1. ``blocks/window=<key>/<cid>-<seq>.parquet``    (only when the batch has heads)
2. ``sourcelog/window=<key>/<cid>-<seq>.parquet`` (only when the batch has sightings)
3. ``mempool/window=<key>/<cid>-<seq>.parquet``   ALWAYS, even with zero rows: the commit point

Each file is written atomically - locally to a temp name, fsynced and renamed; on S3 as one
PUT - so a crash leaves either the whole file or nothing. Because the names are deterministic,
redoing a batch after a crash rewrites the same files with the same content: the mempool segment
existing means the batch is sealed, and its write-ahead log can be deleted without replay (no
duplicates).

``_SEALED.<cid>`` (the window marker) is written separately, once the window has closed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from mev_assets.core.schemas import BLOCKS_SCHEMA, LANDING_TX_SCHEMA, SOURCELOG_SCHEMA
from mev_assets.ingest.landing import LandingZone
from mev_assets.ingest.records import BLOCK_COLUMNS, SIGHTING_COLUMNS, TX_COLUMNS
from mev_assets.ingest.storage import StoredObject
from mev_assets.ingest.wal import parse_wal_name

AREAS_IN_COMMIT_ORDER = ("blocks", "sourcelog", "mempool")

_TX_SCHEMA = {c: LANDING_TX_SCHEMA[c] for c in TX_COLUMNS}
_SIGHTING_SCHEMA = {c: SOURCELOG_SCHEMA[c] for c in SIGHTING_COLUMNS}
_BLOCK_SCHEMA = {c: BLOCKS_SCHEMA[c] for c in BLOCK_COLUMNS}


@dataclass
class WindowBatch:
    """The records of one (window, seq): accepted txs, further sightings, heads."""

    key: str
    seq: int
    txs: list[tuple] = field(default_factory=list)
    sightings: list[tuple] = field(default_factory=list)
    blocks: list[tuple] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.txs) + len(self.sightings) + len(self.blocks)


@dataclass
class SealResult:
    key: str
    seq: int
    txs: int
    sightings: int
    blocks: int
    paths: list[str]  # landing-zone keys of the segments written


def tx_frame(txs: list[tuple], collector_id: str) -> pl.DataFrame:
    frame = pl.DataFrame(txs, schema=_TX_SCHEMA, orient="row") if txs else pl.DataFrame(schema=_TX_SCHEMA)
    return frame.with_columns(pl.lit(collector_id, pl.String()).alias("collector_id"))


def sourcelog_frame(txs_frame: pl.DataFrame, sightings: list[tuple], collector_id: str) -> pl.DataFrame:
    """Every sighting: the first source of each accepted tx (implied by it) and the others."""
    implied = txs_frame.select("timestamp_ms", "hash", "source")
    if sightings:
        extra = pl.DataFrame(sightings, schema=_SIGHTING_SCHEMA, orient="row")
        implied = pl.concat([implied, extra], how="vertical")
    return implied.sort("timestamp_ms", maintain_order=True).with_columns(
        pl.lit(collector_id, pl.String()).alias("collector_id")
    )


def blocks_frame(blocks: list[tuple], collector_id: str) -> pl.DataFrame:
    frame = pl.DataFrame(blocks, schema=_BLOCK_SCHEMA, orient="row") if blocks else pl.DataFrame(schema=_BLOCK_SCHEMA)
    return frame.with_columns(pl.lit(collector_id, pl.String()).alias("collector_id"))


def seal_batch(lz: LandingZone, collector_id: str, batch: WindowBatch) -> SealResult:
    """Write the segments of ``batch`` in commit order (mempool last, always)."""
    paths: list[str] = []
    txs = tx_frame(batch.txs, collector_id)
    if batch.blocks:
        paths.append(lz.write_segment("blocks", batch.key, collector_id, batch.seq, blocks_frame(batch.blocks, collector_id)))
    if batch.txs or batch.sightings:
        paths.append(lz.write_segment("sourcelog", batch.key, collector_id, batch.seq, sourcelog_frame(txs, batch.sightings, collector_id)))
    paths.append(lz.write_segment("mempool", batch.key, collector_id, batch.seq, txs))
    return SealResult(batch.key, batch.seq, len(batch.txs), len(batch.sightings), len(batch.blocks), paths)


def is_committed(lz: LandingZone, collector_id: str, key: str, seq: int) -> bool:
    """Whether batch (key, seq) is sealed (its mempool segment - the commit point - exists)."""
    return lz.has_segment("mempool", key, collector_id, seq)


def own_segment_re(collector_id: str) -> re.Pattern:
    return re.compile(rf"^{re.escape(collector_id)}-(\d+)\.parquet$")


def own_segments(lz: LandingZone, area: str, key: str, collector_id: str) -> list[tuple[int, StoredObject]]:
    """This collector's segments of ``area`` in window ``key``, as (seq, segment)."""
    pattern = own_segment_re(collector_id)
    found = []
    for segment in lz.segment_files(area, key):
        m = pattern.match(segment.name)
        if m:
            found.append((int(m.group(1)), segment))
    return sorted(found, key=lambda item: item[0])


def next_seq(lz: LandingZone, key: str, collector_id: str, wal_dir: Path | None = None) -> int:
    """The first seq of (key, collector) not used by any segment or log file yet."""
    highest = -1
    for area in AREAS_IN_COMMIT_ORDER:
        for seq, _ in own_segments(lz, area, key, collector_id):
            highest = max(highest, seq)
    if wal_dir is not None and wal_dir.is_dir():
        prefix = f"window={key}."
        for p in wal_dir.iterdir():
            if p.name.startswith(prefix):
                parsed = parse_wal_name(p.name)
                if parsed and parsed[0] == key:
                    highest = max(highest, parsed[1])
    return highest + 1
