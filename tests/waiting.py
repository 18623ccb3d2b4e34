"""Synchronise tests on observable conditions, with a deadline (never a bare sleep)."""

from __future__ import annotations

import time


def wait_for(cond, timeout: float = 30.0, what: str = "condition", poll: float = 0.02):
    """Poll ``cond`` until it returns something truthy (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
