"""Cross-source deduplication: the hashes this collector has accepted, with a TTL.

Each accepted hash maps to a bit mask of the sources that have announced it (bit ``i`` =
source index ``i`` of :class:`SourceIndex`), so one dict lookup answers both "already accepted?"
and "first sighting from this source?". Entries expire ``ttl_ms`` after the hash was accepted
(a deque in acceptance order makes expiry O(expired)).

Only validated transactions enter the set: a hash first seen in a malformed or invalid object
and later in a valid one is accepted then.

At start the set is rebuilt from this collector's sealed segments of the last ``ttl`` (mempool
for the hashes, sourcelog for the per-source bits), so a restart does not re-accept a
transaction it has already landed. (The write-ahead log is sealed into segments before the
rebuild - see :meth:`Collector.recover` - so the segments cover it.)
"""

from __future__ import annotations

import logging
from collections import deque

import polars as pl

from mev_assets.core.windows import key_end_ms, window_key
from mev_assets.ingest.landing import LandingZone
from mev_assets.ingest.segments import own_segments

log = logging.getLogger(__name__)


class SourceIndex:
    """Stable small integers for source names (bit positions in the seen masks)."""

    def __init__(self, names=()):
        self._index: dict[str, int] = {}
        for name in names:
            self.bit(name)

    def index(self, name: str) -> int:
        idx = self._index.get(name)
        if idx is None:
            idx = self._index[name] = len(self._index)
        return idx

    def bit(self, name: str) -> int:
        return 1 << self.index(name)

    def names(self) -> list[str]:
        return list(self._index)


class SeenSet:
    """hash -> source mask, expiring ``ttl_ms`` after acceptance."""

    __slots__ = ("ttl_ms", "masks", "_order")

    def __init__(self, ttl_ms: int):
        self.ttl_ms = ttl_ms
        self.masks: dict[str, int] = {}
        self._order: deque[tuple[int, str]] = deque()

    def __len__(self) -> int:
        return len(self.masks)

    def __contains__(self, tx_hash: str) -> bool:
        return tx_hash in self.masks

    def get(self, tx_hash: str) -> int | None:
        return self.masks.get(tx_hash)

    def accept(self, tx_hash: str, accepted_ms: int, bit: int) -> bool:
        """Record a newly accepted hash; False if it was already there (mask is or-ed)."""
        mask = self.masks.get(tx_hash)
        if mask is not None:
            self.masks[tx_hash] = mask | bit
            return False
        self.masks[tx_hash] = bit
        self._order.append((accepted_ms, tx_hash))
        return True

    def add_source(self, tx_hash: str, bit: int) -> bool:
        """Mark ``bit`` on an accepted hash; True if this is the source's first sighting."""
        mask = self.masks.get(tx_hash)
        if mask is None or mask & bit:
            return False
        self.masks[tx_hash] = mask | bit
        return True

    def expire(self, now_ms: int) -> int:
        """Forget hashes accepted more than ``ttl_ms`` ago; returns how many."""
        cutoff = now_ms - self.ttl_ms
        order = self._order
        masks = self.masks
        n = 0
        while order and order[0][0] < cutoff:
            _, h = order.popleft()
            if masks.pop(h, None) is not None:
                n += 1
        return n


def rebuild_seen(lz: LandingZone, collector_id: str, sources: SourceIndex, ttl_ms: int, now_ms: int, window_seconds: int) -> SeenSet:
    """The seen set from this collector's sealed segments of windows that ended within the TTL."""
    seen = SeenSet(ttl_ms)
    cutoff = now_ms - ttl_ms
    frames = []
    sight_frames = []
    # listing starts at the first window that can hold hashes within the TTL (cheap on S3)
    for key in lz.windows("mempool", since=window_key(max(cutoff - 1, 0), window_seconds)):
        try:
            if key_end_ms(key, window_seconds) < cutoff:
                continue
        except ValueError:
            continue
        for _, segment in own_segments(lz, "mempool", key, collector_id):
            try:
                frames.append(lz.read_segment(segment, columns=["timestamp_ms", "hash", "source"]))
            except Exception as exc:  # noqa: BLE001 - an unreadable segment is the reader's problem, not ours
                log.warning("dedup rebuild: cannot read %s: %s", lz.url(segment.key), exc)
        for _, segment in own_segments(lz, "sourcelog", key, collector_id):
            try:
                sight_frames.append(lz.read_segment(segment, columns=["hash", "source"]))
            except Exception as exc:  # noqa: BLE001
                log.warning("dedup rebuild: cannot read %s: %s", lz.url(segment.key), exc)
    if not frames:
        return seen
    txs = pl.concat(frames).filter(pl.col("timestamp_ms") >= cutoff).sort("timestamp_ms")
    for ts, h, src in txs.iter_rows():
        seen.accept(h, ts, sources.bit(src))
    if sight_frames:
        for h, src in pl.concat(sight_frames).unique().iter_rows():
            seen.add_source(h, sources.bit(src))
    log.info("dedup: rebuilt %d accepted hashes of the last %d s from sealed segments", len(seen), ttl_ms // 1000)
    return seen
