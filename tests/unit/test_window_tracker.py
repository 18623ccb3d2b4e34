from __future__ import annotations

from mev_assets.core.window_tracker import TrackerState, windows_to_run
from mev_assets.core.windows import key_end_ms, key_start_ms
from mev_assets.ingest.landing import LandingZone
from tests.landing_factory import write_window

W1, W2, W3 = "2024-05-05T12:00:00", "2024-05-05T12:01:00", "2024-05-05T12:02:00"


def _run(zone, state, at_ms, grace=30):
    return windows_to_run(zone, state, at_ms=at_ms, window_seconds=60, grace_seconds=grace, lookback_ms=86_400_000)


def _beat(zone, cid, started_ms, beat_ms):
    # on the simulated clock: the heartbeat is dated beat_ms, not now
    zone.write_heartbeat(cid, {"collector_id": cid, "started_ms": started_ms}, at_ms=beat_ms)


def test_open_window_is_never_requested(tmp_path):
    zone = LandingZone(tmp_path)
    write_window(zone, W2, 3)
    requests, _ = _run(zone, TrackerState(), at_ms=key_end_ms(W2, 60) - 1)
    assert requests == []


def test_window_waits_for_every_live_collector_then_for_grace(tmp_path):
    zone = LandingZone(tmp_path)
    end = key_end_ms(W1, 60)
    _beat(zone, "c1", key_start_ms(W1) - 1, end + 1000)
    _beat(zone, "c2", key_start_ms(W1) - 1, end + 1000)
    write_window(zone, W1, 3, collector_id="c1")  # sealed by c1 only
    requests, _ = _run(zone, TrackerState(), at_ms=end + 2000)
    assert requests == []
    zone.mark_sealed(W1, "c2")
    requests, _ = _run(zone, TrackerState(), at_ms=end + 2000)
    assert [r.window for r in requests] == [W1]


def test_grace_period_releases_a_window_a_live_collector_never_sealed(tmp_path):
    zone = LandingZone(tmp_path)
    end = key_end_ms(W1, 60)
    _beat(zone, "c2", key_start_ms(W1) - 1, end + 29_000)
    write_window(zone, W1, 2, collector_id="c1")
    assert _run(zone, TrackerState(), at_ms=end + 29_000)[0] == []
    assert [r.window for r in _run(zone, TrackerState(), at_ms=end + 30_000)[0]] == [W1]


def test_collector_started_after_the_window_is_not_waited_for(tmp_path):
    zone = LandingZone(tmp_path)
    end = key_end_ms(W1, 60)
    _beat(zone, "late", end + 500, end + 1000)
    write_window(zone, W1, 2, collector_id="c1")
    assert [r.window for r in _run(zone, TrackerState(), at_ms=end + 1000)[0]] == [W1]


def test_requests_are_idempotent_and_late_segments_trigger_a_rerun(tmp_path):
    zone = LandingZone(tmp_path)
    write_window(zone, W1, 2)
    write_window(zone, W3, 0)  # an empty, sealed window is still a window
    at = key_end_ms(W3, 60) + 60_000
    first, state = _run(zone, TrackerState(), at)
    assert [r.window for r in first] == [W1, W3]
    assert not any(r.rerun for r in first)
    again, state = _run(zone, TrackerState.loads(state.dumps()), at)
    assert again == []
    write_window(zone, W1, 1, collector_id="c9", offset=100)  # late segment
    late, state = _run(zone, state, at)
    assert [r.window for r in late] == [W1]
    assert late[0].rerun and late[0].run_key != first[0].run_key


def test_lookback_bounds_the_cursor(tmp_path):
    zone = LandingZone(tmp_path)
    write_window(zone, W1, 1)
    at = key_end_ms(W1, 60) + 3_600_000
    requests, state = windows_to_run(zone, TrackerState(), at_ms=at, window_seconds=60, grace_seconds=30, lookback_ms=600_000)
    assert requests == [] and state.processed == {}
