"""Window keys: one key per closed UTC window, ``YYYY-MM-DDTHH:MM:SS`` (sortable).

A window of width ``w`` seconds covers ``[start, start + w)`` in milliseconds since the epoch,
with ``start`` a multiple of ``w``. Both the collector and the Dagster partitions use these helpers.
"""

from __future__ import annotations

from datetime import datetime, timezone

KEY_FORMAT = "%Y-%m-%dT%H:%M:%S"


class WindowKeyError(ValueError):
    pass


def window_start_ms(timestamp_ms: int, window_seconds: int) -> int:
    width = window_seconds * 1000
    return timestamp_ms - timestamp_ms % width


def key_for_start_ms(start_ms: int) -> str:
    return datetime.fromtimestamp(start_ms / 1000, tz=timezone.utc).strftime(KEY_FORMAT)


def window_key(timestamp_ms: int, window_seconds: int) -> str:
    """The key of the window that contains ``timestamp_ms``."""
    return key_for_start_ms(window_start_ms(timestamp_ms, window_seconds))


def key_start_ms(key: str) -> int:
    """Start of the window named ``key``, in ms since the epoch."""
    try:
        dt = datetime.strptime(key, KEY_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        raise WindowKeyError(f"not a window key (expected YYYY-MM-DDTHH:MM:SS): {key!r}") from None
    return int(dt.timestamp()) * 1000


def key_end_ms(key: str, window_seconds: int) -> int:
    """End (exclusive) of the window named ``key``."""
    return key_start_ms(key) + window_seconds * 1000


def key_date(key: str) -> str:
    return key[:10]


def validate_key(key: str, window_seconds: int) -> str:
    start = key_start_ms(key)
    if start % (window_seconds * 1000):
        raise WindowKeyError(f"window key {key!r} is not aligned to {window_seconds}-second windows")
    return key


def keys_between(first: str, last: str, window_seconds: int) -> list[str]:
    """Every window key from ``first`` to ``last`` inclusive."""
    start, end = key_start_ms(first), key_start_ms(last)
    step = window_seconds * 1000
    start = window_start_ms(start, window_seconds)
    return [key_for_start_ms(t) for t in range(start, end + 1, step)]
