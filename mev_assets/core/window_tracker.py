"""Which landing windows need a run: the decision behind ``mempool_window_sensor``.

A window needs a run when it is ready (closed and sealed by every live collector, or past its
grace period) and its segment fingerprint differs from the one last processed: the first time,
and again whenever a late segment lands in an already processed window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from mev_assets.core.windows import key_end_ms
from mev_assets.ingest.landing import LandingZone


@dataclass
class WindowRequest:
    window: str
    fingerprint: str
    rerun: bool

    @property
    def run_key(self) -> str:
        return f"{self.window}@{self.fingerprint}"


@dataclass
class TrackerState:
    """The sensor cursor: fingerprint processed per window, for windows inside the lookback."""

    processed: dict[str, str] = field(default_factory=dict)

    @classmethod
    def loads(cls, cursor: str | None) -> "TrackerState":
        if not cursor:
            return cls()
        data = json.loads(cursor)
        return cls(processed=dict(data.get("processed", {})))

    def dumps(self) -> str:
        return json.dumps({"processed": self.processed}, sort_keys=True, separators=(",", ":"))


def windows_to_run(
    zone: LandingZone,
    state: TrackerState,
    at_ms: int,
    window_seconds: int,
    grace_seconds: int,
    lookback_ms: int,
) -> tuple[list[WindowRequest], TrackerState]:
    horizon = at_ms - lookback_ms
    requests: list[WindowRequest] = []
    processed = {k: v for k, v in state.processed.items() if key_end_ms(k, window_seconds) >= horizon}
    ready = [k for k in zone.ready_windows(at_ms, window_seconds, grace_seconds) if key_end_ms(k, window_seconds) >= horizon]
    fingerprints = zone.fingerprints(ready)  # one listing per area on object stores
    for key in ready:
        fingerprint = fingerprints[key]
        previous = processed.get(key)
        if previous != fingerprint:
            requests.append(WindowRequest(key, fingerprint, rerun=previous is not None))
            processed[key] = fingerprint
    return requests, TrackerState(processed)
