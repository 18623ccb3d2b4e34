"""Alert conditions (mev_assets/core/alerts.py): each bad case fails with a message naming what and
the threshold, the good case passes; the inputs read from a real landing zone, lake and collector."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.fs as pafs
import pytest

from mev_assets.core import alerts
from mev_assets.core.alerts import AlertInputs, AlertThresholds, read_alert_inputs
from mev_assets.core.lake import Lake
from mev_assets.core.source_stats import source_stats
from mev_assets.core.windows import key_for_start_ms, key_start_ms
from mev_assets.ingest import sources as sources_module
from mev_assets.ingest.collector import CollectorThread
from mev_assets.ingest.fakenode import FakeNode, synthetic_tx_objects
from mev_assets.ingest.landing import LandingZone
from mev_assets.ingest.quarantine import quarantine_record
from mev_assets.settings import Settings, Source
from tests.landing_factory import write_window
from tests.waiting import wait_for

T = AlertThresholds(window_seconds=60, windows=3, queue_saturation=0.8, ingest_lag_seconds=180,
                    silence_seconds=120, quarantine_rate=0.05, coverage_drop=0.5)
NOW = key_start_ms("2026-03-01T12:00:00")
W = [key_for_start_ms(NOW - (i + 1) * 60_000) for i in reversed(range(6))]  # six ended windows, oldest first


def beat(cid="c1", *, age_s=1.0, stopped=False, started_s_ago=3600, sources=None, **extra) -> dict:
    return {
        "collector_id": cid, "heartbeat_ms": NOW - int(age_s * 1000), "started_ms": NOW - started_s_ago * 1000,
        "stopped": stopped, "sources": sources if sources is not None else {"a": source()}, **extra,
    }


def source(*, connected=True, since_s=600, heard_s=1.0, depth=0, capacity=100_000, dropped=0, dropped_s=None) -> dict:
    return {
        "connected": connected, "mode": "full" if connected else "disconnected", "state_since_ms": NOW - since_s * 1000,
        "last_message_ms": NOW - int(heard_s * 1000) if heard_s is not None else None,
        "queue_depth": depth, "queue_capacity": capacity, "fetch_dropped": dropped,
        "last_dropped_ms": NOW - dropped_s * 1000 if dropped_s is not None else None,
    }


def inputs(**kw) -> AlertInputs:
    return AlertInputs(now_ms=NOW, **kw)


# ---- queue saturation ---------------------------------------------------------------------------
def test_queue_saturation_passes_below_the_threshold_and_fails_at_it():
    ok = alerts.check_queue_saturation(inputs(heartbeats=[beat(sources={"a": source(depth=79_000)})]), T)
    assert ok.passed and ok.severity == "WARN" and "below 80.0%" in ok.description
    assert ok.metadata["queues"]["c1/a"] == {"queue_depth": 79_000, "queue_capacity": 100_000, "fill": 0.79}

    bad = alerts.check_queue_saturation(inputs(heartbeats=[beat(sources={"a": source(), "b": source(depth=90_000)})]), T)
    assert not bad.passed
    assert bad.description.startswith("collector c1 source b: fetch queue 90000/100000 = 90.0% of capacity >= 80.0%")
    assert "MEV_ALERT_QUEUE_SATURATION" in bad.description and bad.metadata["max_fill"] == 0.9


def test_queue_saturation_fails_on_a_recent_drop_only():
    recent = alerts.check_queue_saturation(inputs(heartbeats=[beat(sources={"a": source(dropped=12, dropped_s=30)})]), T)
    assert not recent.passed
    assert "collector c1 source a: 12 hash(es) dropped" in recent.description and "lost" in recent.description
    # a drop long ago (beyond the last `windows` window widths) is history, not an alert
    old = alerts.check_queue_saturation(inputs(heartbeats=[beat(sources={"a": source(dropped=12, dropped_s=3600)})]), T)
    assert old.passed and old.metadata["fetch_dropped_total"] == {"c1/a": 12}


def test_queue_saturation_ignores_stopped_collectors_and_old_heartbeat_formats():
    stopped = beat(stopped=True, sources={"a": source(depth=100_000)})
    legacy = beat("c2", sources={"a": {"url": "ws://x", "connected": True, "mode": "full"}})  # before the queue fields
    out = alerts.check_queue_saturation(inputs(heartbeats=[stopped, legacy]), T)
    assert out.passed and out.metadata["sources_without_queue_figures"] == ["c2/a"]


# ---- ingest lag ---------------------------------------------------------------------------------
def test_ingest_lag_passes_for_a_live_lane():
    out = alerts.check_ingest_lag(inputs(heartbeats=[beat(oldest_unsealed_ms=NOW - 20_000)], newest_sealed=W[-1]), T)
    assert out.passed and f"newest sealed window {W[-1]}" in out.description
    assert out.metadata["lane_lag_seconds"] == 0.0 and out.metadata["oldest_unsealed_age_seconds"] == {"c1": 20.0}


def test_ingest_lag_fails_when_the_newest_sealed_window_is_too_old():
    out = alerts.check_ingest_lag(inputs(heartbeats=[beat()], newest_sealed=W[0]), T)
    assert not out.passed
    assert out.description.startswith(f"newest sealed window {W[0]} ended 300.0 s ago > 180 s (MEV_ALERT_INGEST_LAG_SECONDS)")


def test_ingest_lag_fails_for_a_silent_collector_and_for_stuck_sealing():
    crashed = alerts.check_ingest_lag(inputs(heartbeats=[beat(age_s=400)], newest_sealed=W[-1]), T)
    assert not crashed.passed
    assert "collector c1: last heartbeat 400.0 s ago > 180 s" in crashed.description and "did not stop cleanly" in crashed.description
    stuck = alerts.check_ingest_lag(
        inputs(heartbeats=[beat(oldest_unsealed_ms=NOW - 600_000, failed_seals=2)], newest_sealed=W[-1]), T
    )
    assert not stuck.passed
    assert "collector c1: oldest unsealed record received 600.0 s ago > 180 s" in stuck.description
    assert "2 batch(es) failed to seal" in stuck.description


def test_ingest_lag_fails_when_nothing_was_sealed_by_a_collector_running_for_long():
    out = alerts.check_ingest_lag(inputs(heartbeats=[beat()], newest_sealed=None), T)
    assert not out.passed and "no window sealed in the last" in out.description and "['c1']" in out.description
    young = alerts.check_ingest_lag(inputs(heartbeats=[beat(started_s_ago=30)], newest_sealed=None), T)
    assert young.passed  # started 30 s ago: nothing to seal yet


def test_ingest_lag_expects_nothing_when_collectors_stopped_cleanly():
    out = alerts.check_ingest_lag(inputs(heartbeats=[beat(stopped=True, age_s=86_400)], newest_sealed=W[0]), T)
    assert out.passed and out.description.startswith("every collector stopped cleanly")
    assert alerts.check_ingest_lag(inputs(), T).description.startswith("no collector heartbeat")


# ---- quarantine rate ----------------------------------------------------------------------------
def _quarantined(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=alerts.QUARANTINE_FRAME_SCHEMA, orient="row")


def _accepted(counts: dict[str, int]) -> pl.DataFrame:
    return pl.DataFrame({"window": list(counts), "accepted": list(counts.values())}, schema=alerts.ACCEPTED_FRAME_SCHEMA)


def test_quarantine_rate_passes_under_the_threshold_and_fails_above_it():
    recent = W[-3:]
    ok = alerts.check_quarantine_rate(
        inputs(recent_windows=recent, accepted=_accepted(dict.fromkeys(recent, 100)),
               quarantined=_quarantined([(recent[0], "a", "bad_signature")] * 3)), T
    )
    assert ok.passed and ok.metadata["rate"] == pytest.approx(3 / 303, abs=1e-6)
    bad_rows = [(recent[1], "b", "wrong_chain_id")] * 40 + [(recent[2], "a", "malformed_json")] * 2
    bad = alerts.check_quarantine_rate(
        inputs(recent_windows=recent, accepted=_accepted(dict.fromkeys(recent, 100)), quarantined=_quarantined(bad_rows)), T
    )
    assert not bad.passed
    assert bad.description == (
        f"quarantine rate 12.3% (42 of 342 records) in windows {recent[0]}..{recent[-1]} > 5.0% "
        "(MEV_ALERT_QUARANTINE_RATE); top reasons: wrong_chain_id x40 from b, malformed_json x2 from a"
    )
    assert bad.metadata["per_window"][recent[1]] == {"accepted": 100, "quarantined": 40}


def test_quarantine_rate_needs_a_sample():
    out = alerts.check_quarantine_rate(
        inputs(recent_windows=W[-1:], accepted=_accepted({W[-1]: 5}), quarantined=_quarantined([(W[-1], "a", "x")] * 5)), T
    )
    assert out.passed and "fewer than 20" in out.description


# ---- source coverage, live ----------------------------------------------------------------------
def _coverage(per_window: dict[str, dict[str, float]]) -> pl.DataFrame:
    rows = [(w, s, c) for w, cov in per_window.items() for s, c in cov.items()]
    return pl.DataFrame(rows, schema=alerts.COVERAGE_FRAME_SCHEMA, orient="row")


def test_source_coverage_live_passes_for_steady_sources():
    cov = _coverage({w: {"a": 1.0, "b": 0.9} for w in W})
    out = alerts.check_source_coverage_live(inputs(heartbeats=[beat(sources={"a": source(), "b": source()})], coverage=cov), T)
    assert out.passed, out.description
    assert out.metadata["coverage_recent"] == {"a": 1.0, "b": 0.9} and out.metadata["recent_windows"] == W[-3:]


def test_source_coverage_live_fails_when_a_share_collapses_across_windows():
    cov = _coverage({**{w: {"a": 1.0, "b": 0.9} for w in W[:3]}, **{w: {"a": 1.0, "b": 0.2} for w in W[3:5]}, W[5]: {"a": 1.0}})
    out = alerts.check_source_coverage_live(inputs(coverage=cov), T)
    assert not out.passed
    assert out.description.startswith(
        f"source b: mean coverage 0.133 over windows {W[3]}..{W[5]} fell more than 50.0% (MEV_ALERT_COVERAGE_DROP) "
        f"below 0.900 of windows {W[0]}..{W[2]}"
    )


def test_source_coverage_live_fails_for_a_disconnected_or_stuck_source():
    down = alerts.check_source_coverage_live(inputs(heartbeats=[beat(sources={"a": source(connected=False, since_s=300)})]), T)
    assert not down.passed
    assert down.description.startswith("collector c1 source a: disconnected for 300.0 s > 120 s (MEV_ALERT_SILENCE_SECONDS)")
    blip = alerts.check_source_coverage_live(inputs(heartbeats=[beat(sources={"a": source(connected=False, since_s=5)})]), T)
    assert blip.passed  # a reconnect in progress is no alert yet
    stuck = alerts.check_source_coverage_live(
        inputs(heartbeats=[beat(sources={"a": source(heard_s=2), "b": source(heard_s=500)})]), T
    )
    assert not stuck.passed
    assert "collector c1 source b: connected but silent for 500.0 s > 120 s" in stuck.description
    # every source quiet at once is a quiet chain, not a stuck subscription
    quiet = alerts.check_source_coverage_live(inputs(heartbeats=[beat(sources={"a": source(heard_s=500), "b": source(heard_s=400)})]), T)
    assert quiet.passed


def test_many_problems_fit_one_line_and_are_all_in_the_metadata():
    beats = [beat(f"c{i}", sources={"a": source(connected=False, since_s=300)}) for i in range(5)]
    out = alerts.check_source_coverage_live(inputs(heartbeats=beats), T)
    assert not out.passed and "\n" not in out.description and out.description.endswith("+2 more (see problems)")
    assert len(out.metadata["problems"]) == 5


# ---- the inputs, read from a real landing zone and lake -----------------------------------------
def test_read_alert_inputs_from_landing_zone_and_lake(tmp_path):
    zone = LandingZone(tmp_path / "landing")
    lake = Lake(pafs.LocalFileSystem(), str(tmp_path / "lake"))
    for i, key in enumerate(W[:5]):
        hashes = write_window(zone, key, 30, sources=("a", "b") if i < 3 else ("a",), offset=100 * i)
        log = zone.read_area("sourcelog", key).frame
        lake.write_window("mempool_source_stats", key, source_stats(log.select("timestamp_ms", "hash", "source"), key))
        assert len(hashes) == 30
    # W[5] ended but is not sealed yet; its records (and the bad ones) are in the quarantine only
    bad = [quarantine_record(key_start_ms(W[4]) + 5, "b", "c1", "wrong_chain_id: 5 != 1", {"hash": "0x1"})] * 25
    zone.append_quarantine(W[4], "c1", bad)
    zone.write_heartbeat("c1", beat(sources={"a": source()}), at_ms=NOW - 1000)
    got = read_alert_inputs(zone, lake, T, NOW)
    assert got.newest_sealed == W[4] and got.recent_windows == W[2:5]
    assert got.accepted.sort("window").to_dicts() == [{"window": k, "accepted": 30} for k in W[2:5]]
    assert got.quarantined.height == 25 and set(got.quarantined["code"]) == {"wrong_chain_id"}
    assert sorted(set(got.coverage["window"])) == W[:5]
    assert [b["collector_id"] for b in got.heartbeats] == ["c1"]
    results = alerts.evaluate_alerts(got, T)
    assert not results["quarantine_rate"].passed and "25 of 115 records" in results["quarantine_rate"].description
    # b covered every tx in W[0..2] and none after: over the last three windows it fell to a third
    coverage = results["source_coverage_live"]
    assert not coverage.passed
    assert coverage.description.startswith(f"source b: mean coverage 0.333 over windows {W[2]}..{W[4]}")
    assert coverage.description.endswith(f"below 1.000 of windows {W[0]}..{W[1]}")
    assert results["ingest_lag"].passed and results["collector_queue_saturation"].passed


def test_read_alert_inputs_of_an_empty_zone(tmp_path):
    got = read_alert_inputs(LandingZone(tmp_path / "landing"), None, T, NOW)
    assert got.newest_sealed is None and got.recent_windows == [] and got.heartbeats == []
    assert all(o.passed for o in alerts.evaluate_alerts(got, T).values())


# ---- the heartbeat the collector writes carries what the alerts need ----------------------------
def _collector_settings(tmp_path: Path, **kw) -> Settings:
    base = dict(mev_home=tmp_path / "home", dagster_home=tmp_path / "home" / "dagster", window_seconds=1, chain_id=31337,
                collector_id="c1", seal_delay_ms=150, metrics_port=0, fetch_rate=1000.0, fetch_batch=10)
    base.update(kw)
    return Settings(**base)


@pytest.mark.timeout(60)
def test_collector_heartbeat_reports_a_saturated_fetch_queue(tmp_path, monkeypatch):
    monkeypatch.setattr(sources_module, "FETCH_QUEUE_LIMIT", 10)
    objs = synthetic_tx_objects(25, 31337)
    with FakeNode(mode="hashes") as node:
        # one hash per request at a trickle: the queue fills and then drops the oldest hashes
        s = _collector_settings(tmp_path, sources=(Source("a", node.url),), fetch_rate=0.001, fetch_batch=1)
        zone = LandingZone(s.landing_dir)
        with CollectorThread(s, heartbeat_interval=0.1) as ct:
            node.wait_subscribed(1)
            node.push_txs(objs)
            wait_for(lambda: ct.collector.lanes[0].fetch_dropped_total > 0, what="hashes dropped")
            info = wait_for(lambda: ((zone.heartbeat("c1") or {}).get("sources", {}).get("a") or {}).get("fetch_dropped")
                            and zone.heartbeat("c1")["sources"]["a"], what="heartbeat with the drops")
            assert info["queue_capacity"] == 10 and info["queue_depth"] == 10 and info["connected"] is True
            assert info["last_message_ms"] and info["last_dropped_ms"] and info["state_since_ms"]
            thresholds = AlertThresholds(window_seconds=1, windows=5, ingest_lag_seconds=30)
            got = read_alert_inputs(zone, None, thresholds, wait_for(lambda: zone.heartbeat("c1")["heartbeat_ms"]))
            out = alerts.check_queue_saturation(got, thresholds)
            assert not out.passed
            assert out.description.startswith("collector c1 source a: fetch queue 10/10 = 100.0% of capacity >= 80.0%")
            assert "hash(es) dropped from the full fetch queue" in out.description


@pytest.mark.timeout(60)
def test_collector_heartbeat_reports_a_disconnected_source_and_unsealed_records(tmp_path):
    objs = synthetic_tx_objects(3, 31337)
    with FakeNode() as node:
        s = _collector_settings(tmp_path, window_seconds=60, sources=(Source("a", node.url), Source("down", "ws://127.0.0.1:9")))
        zone = LandingZone(s.landing_dir)
        with CollectorThread(s, heartbeat_interval=0.1) as ct:
            node.wait_subscribed(1)
            node.push_txs(objs)
            wait_for(lambda: ct.collector.accepted_total == 3, what="3 accepted")
            beat_ = wait_for(lambda: (b := zone.heartbeat("c1")) and b.get("oldest_unsealed_ms") and b, what="unsealed in heartbeat")
            assert beat_["open_windows"] >= 1 and beat_["failed_seals"] == 0
            assert beat_["sources"]["down"]["connected"] is False and beat_["sources"]["a"]["connected"] is True
            # judged a little later, with a one-second silence limit: the dead source is named
            thresholds = AlertThresholds(window_seconds=60, silence_seconds=1, ingest_lag_seconds=30)

            def evaluated():
                beat_now = zone.heartbeat("c1")
                if beat_now["heartbeat_ms"] - beat_now["sources"]["down"]["state_since_ms"] <= 1000:
                    return None
                return alerts.check_source_coverage_live(read_alert_inputs(zone, None, thresholds, beat_now["heartbeat_ms"]), thresholds)

            out = wait_for(evaluated, what="the dead source disconnected for over a second")
            assert not out.passed and out.description.startswith("collector c1 source down: disconnected for")
            assert "collector c1 source a" not in out.description
    assert zone.heartbeat("c1")["stopped"] is True and zone.heartbeat("c1")["oldest_unsealed_ms"] is None


def test_thresholds_come_from_settings(settings_factory):
    s = settings_factory(MEV_ALERT_QUEUE_SATURATION="0.5", MEV_ALERT_INGEST_LAG_SECONDS="90", MEV_ALERT_QUARANTINE_RATE="0.2",
                         MEV_ALERT_COVERAGE_DROP="0.3", MEV_ALERT_WINDOWS="7", MEV_ALERT_SILENCE_SECONDS="45")
    t = AlertThresholds.from_settings(s)
    assert (t.queue_saturation, t.ingest_lag_seconds, t.quarantine_rate, t.coverage_drop, t.windows, t.silence_seconds) == (
        0.5, 90, 0.2, 0.3, 7, 45)
    assert settings_factory().alert_interval_seconds == 60
    with pytest.raises(ValueError, match="MEV_ALERT_QUARANTINE_RATE must be a fraction"):
        settings_factory(MEV_ALERT_QUARANTINE_RATE="5")
