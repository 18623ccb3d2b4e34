"""Retention: which windows have aged out, and the plan of what to delete where.

Pure functions over window keys; the retention job (:mod:`mev_assets.ops_jobs`) lists what each
store holds, asks :func:`plan_retention` what to drop, and deletes exactly that.

A window is expired when it *ended* at least ``retention_days`` days before ``now``: a window
still partly inside the retention period is kept whole. Anything that is not a window key of
ours (a stray directory, a half-typed name) is never expired, so retention cannot delete it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from mev_assets.core.windows import WindowKeyError, key_end_ms, key_for_start_ms

DAY_MS = 86_400_000


class RetentionError(ValueError):
    """Retention asked with values that could delete data inside the retention period."""


def retention_cutoff_ms(now_ms: int, retention_days: int) -> int:
    """Windows that ended at or before this instant are expired."""
    if retention_days < 1:
        raise RetentionError(f"retention must be at least one day, got {retention_days}")
    return now_ms - retention_days * DAY_MS


def is_expired(key: str, cutoff_ms: int, window_seconds: int) -> bool:
    try:
        return key_end_ms(key, window_seconds) <= cutoff_ms
    except WindowKeyError:
        return False


def expired_windows(keys: Iterable[str], now_ms: int, retention_days: int, window_seconds: int) -> list[str]:
    """The expired keys among ``keys``, sorted and without duplicates."""
    cutoff = retention_cutoff_ms(now_ms, retention_days)
    return sorted({k for k in keys if is_expired(k, cutoff, window_seconds)})


@dataclass(frozen=True)
class RetentionPlan:
    """What retention deletes: per place (``landing``, ``wal``, ``lake/<table>``,
    ``duckdb/<table>``, ``clickhouse/<table>``, ``partitions``) the expired window keys."""

    now_ms: int
    retention_days: int
    cutoff_ms: int
    expired: dict[str, list[str]] = field(default_factory=dict)

    @property
    def cutoff_key(self) -> str:
        """The first instant kept, as a window-key-shaped UTC timestamp."""
        return key_for_start_ms(self.cutoff_ms)

    @property
    def windows(self) -> list[str]:
        """Every expired window, wherever it is held."""
        return sorted({k for keys in self.expired.values() for k in keys})

    @property
    def is_empty(self) -> bool:
        return not any(self.expired.values())

    def counts(self) -> dict[str, int]:
        return {place: len(keys) for place, keys in self.expired.items()}


def plan_retention(
    inventory: Mapping[str, Iterable[str]], now_ms: int, retention_days: int, window_seconds: int
) -> RetentionPlan:
    """The expired windows of each place of ``inventory`` (place -> window keys it holds)."""
    cutoff = retention_cutoff_ms(now_ms, retention_days)
    expired = {
        place: sorted({k for k in keys if is_expired(k, cutoff, window_seconds)}) for place, keys in inventory.items()
    }
    return RetentionPlan(now_ms=now_ms, retention_days=retention_days, cutoff_ms=cutoff, expired=expired)
