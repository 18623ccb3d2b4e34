"""The alerts in Dagster on a real instance: the sensor records check evaluations without a run (bad
case fails with the clear message, good case passes), the checks run in pipeline_alerts_job."""

from __future__ import annotations

import time

import polars as pl
import pytest
from dagster import (
    AssetCheckKey,
    AssetSelection,
    Definitions,
    SensorResult,
    build_sensor_context,
    define_asset_job,
    instance_for_test,
)

from mev_assets.alerts import ALERT_CHECK_KEYS, ALERTED_ASSET, ALERTS_JOB, ALERTS_SENSOR, build_alerts
from mev_assets.assets import PER_WINDOW_ASSETS
from mev_assets.checks import build_asset_checks
from mev_assets.core.windows import key_end_ms, key_for_start_ms, key_start_ms, window_start_ms
from mev_assets.definitions import build_definitions
from mev_assets.ingest.landing import LandingZone
from mev_assets.ingest.quarantine import quarantine_record
from tests.integration.test_s3_mode import s3_server  # noqa: F401 - the moto S3 fixture
from tests.landing_factory import write_window

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

NAMES = ["collector_queue_saturation", "ingest_lag", "quarantine_rate", "source_coverage_live"]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _windows(n: int, ago: int) -> list[str]:
    """``n`` consecutive 60 s windows, the last one ending ``ago - 1`` windows before the current one starts."""
    start = window_start_ms(_now_ms(), 60) - ago * 60_000
    return [key_for_start_ms(start + i * 60_000) for i in range(n)]


def _heartbeat(zone: LandingZone, **sources) -> None:
    now = _now_ms()
    zone.write_heartbeat("c1", {
        "collector_id": "c1", "started_ms": now - 3600_000, "stopped": False, "window_seconds": 60,
        "open_windows": 1, "failed_seals": 0, "oldest_unsealed_ms": now - 5000,
        "sources": {name: {"connected": True, "mode": "full", "state_since_ms": now - 3600_000, "last_message_ms": now - 1000,
                           "queue_depth": depth, "queue_capacity": 100_000, "fetch_dropped": 0, "last_dropped_ms": None}
                    for name, depth in (sources or {"a": 0}).items()},
    })


@pytest.fixture
def lane(settings_factory):
    settings = settings_factory(MEV_WINDOW_SECONDS=60, MEV_CHAIN_ID=1)
    checks, sensors, jobs = build_alerts(settings)
    # what build_definitions gets (see the report): the per-window assets, their checks, plus the alerts
    defs = Definitions(
        assets=PER_WINDOW_ASSETS,
        asset_checks=[*build_asset_checks(settings.chain_id, settings.window_seconds), *checks],
        sensors=sensors,
        jobs=jobs,
        resources=build_definitions(settings).resources,
    )
    Definitions.validate_loadable(defs)
    return defs, LandingZone(settings.landing_dir)


def _tick(defs, instance) -> SensorResult:
    sensor = defs.resolve_sensor_def(ALERTS_SENSOR)
    with build_sensor_context(instance=instance, definitions=defs, resources=defs.resources) as ctx:
        result = sensor(ctx)
    # what the sensor daemon does with a tick's asset events (dagster/_daemon/sensor.py)
    for event in result.asset_events:
        instance.report_runless_asset_event(event)
    return result


def _latest(instance) -> dict[str, object]:
    keys = [AssetCheckKey(ALERTED_ASSET, name) for name in NAMES]
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    return {key.name: records.get(key) for key in keys}


def _evaluation(record):
    return record.event.dagster_event.event_specific_data


def _bad_lane(zone: LandingZone) -> list[str]:
    """A collector beating but nothing sealed for 10 minutes, and a flood of wrong-chain records."""
    windows = _windows(5, ago=15)
    for i, key in enumerate(windows):
        write_window(zone, key, 20, offset=100 * i)
    bad = quarantine_record(key_start_ms(windows[-1]) + 7, "a", "c1", "wrong_chain_id: 5 != 1", {"hash": "0x01"})
    zone.append_quarantine(windows[-1], "c1", [bad] * 30)
    _heartbeat(zone, a=95_000)
    return windows


def test_sensor_records_failing_alerts_with_clear_messages(lane):
    defs, zone = lane
    windows = _bad_lane(zone)
    with instance_for_test() as instance:
        result = _tick(defs, instance)
        assert result.run_requests in (None, []) and len(result.asset_events) == 4
        assert result.skip_reason.skip_message == "alerts: collector_queue_saturation, ingest_lag, quarantine_rate failing"
        latest = _latest(instance)
        assert {n: r.status.value for n, r in latest.items()} == {
            "collector_queue_saturation": "FAILED", "ingest_lag": "FAILED", "quarantine_rate": "FAILED",
            "source_coverage_live": "SUCCEEDED",
        }
        lag = _evaluation(latest["ingest_lag"])
        assert lag.severity.value == "WARN" and not lag.passed
        age = (_now_ms() - key_end_ms(windows[-1], 60)) / 1000
        assert lag.description.startswith(f"newest sealed window {windows[-1]} ended ")
        assert "> 180 s (MEV_ALERT_INGEST_LAG_SECONDS): the collectors are not sealing windows" in lag.description
        assert abs(lag.metadata["lane_lag_seconds"].value - age) < 30
        rate = _evaluation(latest["quarantine_rate"])
        assert rate.description.startswith(f"quarantine rate 23.1% (30 of 130 records) in windows {windows[0]}..{windows[-1]}")
        assert rate.description.endswith("top reasons: wrong_chain_id x30 from a")
        queue = _evaluation(latest["collector_queue_saturation"])
        assert queue.description.startswith("collector c1 source a: fetch queue 95000/100000 = 95.0% of capacity >= 80.0%")


def test_sensor_records_passing_alerts_for_a_healthy_lane(lane):
    defs, zone = lane
    windows = _windows(5, ago=5)  # the last one ended when the current window began
    for i, key in enumerate(windows):
        write_window(zone, key, 30, offset=100 * i)
    _heartbeat(zone, a=10, b=0)
    with instance_for_test() as instance:
        result = _tick(defs, instance)
        assert result.skip_reason.skip_message == "alerts: all 4 passed"
        latest = _latest(instance)
        assert all(r.status.value == "SUCCEEDED" for r in latest.values()), {
            n: _evaluation(r).description for n, r in latest.items()
        }
        assert _evaluation(latest["ingest_lag"]).description.startswith(f"1 live collector(s); newest sealed window {windows[-1]}")
        assert _evaluation(latest["quarantine_rate"]).metadata["accepted"].value == 150


def test_alerts_job_runs_the_checks_without_blocking(lane):
    defs, zone = lane
    _bad_lane(zone)
    with instance_for_test() as instance:
        result = defs.resolve_job_def(ALERTS_JOB).execute_in_process(instance=instance, raise_on_error=False)
        assert result.success  # WARN checks never fail a run
        evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert sorted(evaluations) == NAMES
        assert not evaluations["ingest_lag"].passed and evaluations["source_coverage_live"].passed
        assert "(MEV_ALERT_QUARANTINE_RATE)" in evaluations["quarantine_rate"].description


def test_window_jobs_can_leave_the_alert_checks_out(lane):
    """The selection proposed for mev_assets/jobs.py: a window run executes the window checks only."""
    defs, _zone = lane
    window_job = define_asset_job(
        "window_job_without_alerts",
        selection=AssetSelection.assets(*PER_WINDOW_ASSETS) - AssetSelection.checks(*ALERT_CHECK_KEYS),
    )
    nodes = {n.name for n in Definitions.merge(defs, Definitions(jobs=[window_job])).resolve_job_def(window_job.name).nodes}
    assert "pipeline_alerts" not in nodes and {"mempool_transactions", "mempool_transactions_checks"} <= nodes
    assert sorted(k.name for k in ALERT_CHECK_KEYS) == NAMES


@pytest.mark.timeout(120)
def test_alerts_read_an_s3_landing_zone_and_lake(settings_factory, s3_server):  # noqa: F811 - the fixture
    from mev_assets.core.lake import open_lake
    from mev_assets.core.source_stats import source_stats

    url, _client, bucket = s3_server
    settings = settings_factory(MEV_WINDOW_SECONDS=60, MEV_STORAGE="s3", MEV_S3_BUCKET=bucket, MEV_S3_PREFIX="team/mev",
                                MEV_S3_ENDPOINT_URL=url, MEV_ALERT_WINDOWS=2)
    zone, lake = LandingZone.from_settings(settings), open_lake(settings)
    windows = _bad_lane(zone)
    for i, key in enumerate(windows):  # source b saw everything in the first three windows, nothing after
        log = zone.read_area("sourcelog", key).frame.select("timestamp_ms", "hash", "source")
        if i < 3:
            log = log.vstack(log.with_columns(pl.lit("b").alias("source")))
        lake.write_window("mempool_source_stats", key, source_stats(log, key))
    checks, sensors, jobs = build_alerts(settings)
    defs = Definitions(assets=PER_WINDOW_ASSETS, asset_checks=checks, sensors=sensors, jobs=jobs,
                       resources=build_definitions(settings).resources)
    with instance_for_test() as instance:
        result = _tick(defs, instance)
        latest = _latest(instance)
    failing = [n for n, r in latest.items() if r.status.value == "FAILED"]
    assert failing == NAMES, result.skip_reason.skip_message
    assert _evaluation(latest["quarantine_rate"]).description.startswith(
        f"quarantine rate 42.9% (30 of 70 records) in windows {windows[3]}..{windows[4]}"
    )
    coverage = _evaluation(latest["source_coverage_live"]).description
    assert coverage.startswith(f"source b: mean coverage 0.000 over windows {windows[3]}..{windows[4]}")
    assert coverage.endswith(f"below 1.000 of windows {windows[1]}..{windows[2]}")
