"""Multi-window runs: which windows go together in one run of a backfill.

A run over several windows names them as a partition key *range* (first..last), and Dagster
resolves a range of dynamic partitions by the order the keys were registered, not by time. The
windows wanted are therefore grouped into runs of consecutive keys in that registration order,
so that a range never pulls in a window that was not asked for (e.g. an older window registered
late by an import or a replay).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone

from mev_assets.core.windows import key_start_ms

DEFAULT_WINDOWS_PER_RUN = 60
"""An hour of the default 60 s windows: ~60 k mainnet transactions, a few hundred MB in memory."""


class BackfillPlanError(ValueError):
    pass


def contiguous_chunks(registered: Sequence[str], wanted: Iterable[str], size: int) -> list[list[str]]:
    """``wanted`` keys in runs of at most ``size`` keys that are adjacent in ``registered`` order.

    Raises :class:`BackfillPlanError` for a wanted key that is not registered.
    """
    if size < 1:
        raise BackfillPlanError(f"windows per run must be at least 1, got {size}")
    wanted = set(wanted)
    unknown = wanted.difference(registered)
    if unknown:
        raise BackfillPlanError(f"{len(unknown)} window(s) are not registered partitions, e.g. {sorted(unknown)[:3]}")
    chunks: list[list[str]] = []
    current: list[str] = []
    for key in registered:
        if key in wanted and len(current) < size:
            current.append(key)
            continue
        if current:
            chunks.append(current)
        current = [key] if key in wanted else []
    if current:
        chunks.append(current)
    return chunks


def day_of(window: str) -> date:
    return datetime.fromtimestamp(key_start_ms(window) / 1000, tz=timezone.utc).date()


def windows_of_day(registered: Iterable[str], day: date) -> list[str]:
    """The registered windows that start on ``day`` (UTC)."""
    prefix = day.isoformat() + "T"
    return [key for key in registered if key.startswith(prefix)]


def previous_day(now: datetime) -> date:
    """The UTC day before ``now`` (the schedule's tick time)."""
    return (now.astimezone(timezone.utc) - timedelta(days=1)).date()
