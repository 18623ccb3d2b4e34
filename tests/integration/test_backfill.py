"""Multi-window (backfill) runs on a real Dagster instance: same tables as one run per window, checks
that name the bad window, and the previous-day schedule's runs."""

from __future__ import annotations

from datetime import date, datetime, timezone

import duckdb
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, build_schedule_context, instance_for_test

from mev_assets.core.backfill import DEFAULT_WINDOWS_PER_RUN
from mev_assets.core.windows import key_for_start_ms
from mev_assets.definitions import build_definitions
from mev_assets.ingest.landing import LandingZone
from mev_assets.lane import RANGE_END_TAG, RANGE_START_TAG, execute_window, execute_windows
from mev_assets.ops_jobs import window_hashes
from mev_assets.partitions import MEMPOOL_WINDOWS
from mev_assets.schedules import BACKFILL_DAY_TAG, previous_day_backfill_schedule, previous_day_requests
from tests.integration.test_asset_checks import land, signed_rows

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

DAY = date(2026, 3, 2)
DAY_START_MS = int(datetime(2026, 3, 2, tzinfo=timezone.utc).timestamp() * 1000)


def windows_from(start_ms: int, n: int, width: int = 60) -> list[str]:
    return [key_for_start_ms(start_ms + i * width * 1000) for i in range(n)]


def landed_day(settings, windows: list[str], per_window: int = 3) -> LandingZone:
    """Signed transactions in every window (distinct nonces), announced by two sources."""
    zone = LandingZone(settings.landing_dir)
    for i, window in enumerate(windows):
        rows = signed_rows(window, per_window, first_nonce=100 * i)
        land(zone, window, rows)
        seconds = [dict(r, source="b", timestamp_ms=r["timestamp_ms"] + 40) for r in rows[:2]]
        land(zone, window, seconds, collector_id="c2")
    return zone


def evaluations(instance: DagsterInstance, run_id: str) -> dict[tuple[str, str], object]:
    result = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            result[(data.asset_key.to_user_string(), data.check_name)] = data
    return result


@pytest.fixture
def day(settings_factory):
    settings = settings_factory(MEV_WINDOW_SECONDS=60, MEV_CHAIN_ID=1)
    windows = windows_from(DAY_START_MS, 6)
    return settings, build_definitions(settings), landed_day(settings, windows), windows


def test_a_multi_window_run_builds_the_same_tables_as_one_run_per_window(day):
    settings, defs, _zone, windows = day
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(MEMPOOL_WINDOWS, windows)
        singles = [execute_window(defs, instance, w) for w in windows]
        assert all(run.success for run in singles)
        one_by_one = {w: window_hashes(settings, w) for w in windows}
        assert all(len(h) == 3 for h in one_by_one.values()), one_by_one  # the three per-window tables

        ranged = [execute_windows(defs, instance, windows[:4]), execute_windows(defs, instance, windows[4:])]
        assert [run.success for run in ranged] == [True, True]
        assert {w: window_hashes(settings, w) for w in windows} == one_by_one

        run = instance.get_run_by_id(ranged[0].run_id)
        assert (run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG]) == (windows[0], windows[3])
        # every window of the range got its own materialisation, and DuckDB holds each window once
        for asset in ("mempool_transactions", "mempool_source_stats", "tx_features"):
                assert instance.get_materialized_partitions(AssetKey(asset)) == set(windows)
        with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
            per_window = dict(con.sql('select "window", count(*) from mev.mempool_transactions group by all').fetchall())
        assert per_window == {w: 3 for w in windows}
        checks = evaluations(instance, ranged[0].run_id)
        # the fixture day is long past, so only the freshness check (not blocking) fails
        failed = {k: e.description for k, e in checks.items() if not e.passed}
        assert len(checks) == 14 and list(failed) == [("mempool_transactions", "newest_window_fresh")], failed


def test_a_bad_row_in_one_window_fails_the_range_run_and_is_named(day):
    settings, defs, zone, windows = day
    bad = windows[2]
    foreign = signed_rows(bad, 1, first_nonce=900, chain_id=5)
    land(zone, bad, foreign, collector_id="c3")
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(MEMPOOL_WINDOWS, windows)
        run = execute_windows(defs, instance, windows[:4])
        assert not run.success  # the blocking value-range check stops tx_features of the range
        checks = evaluations(instance, run.run_id)
        failed = checks[("mempool_transactions", "value_ranges")]
        assert not failed.passed and f"1 row(s) with chain_id != 1, e.g. ['{foreign[0]['hash']}']" in failed.description
        assert checks[("mempool_transactions", "unique_hash")].passed
        assert checks[("mempool_transactions", "matches_sealed_segments")].passed
        assert instance.get_materialized_partitions(AssetKey("tx_features")) == set()


def test_the_previous_day_schedule_rebuilds_the_derived_assets_of_yesterday_only(day):
    settings, defs, zone, windows = day
    today = windows_from(DAY_START_MS + 86_400_000, 2)
    land(zone, today[0], signed_rows(today[0], 2, first_nonce=5000))
    land(zone, today[1], signed_rows(today[1], 2, first_nonce=6000))
    with instance_for_test() as instance:
        # registration order is not time order: an old window registered late must not join a range
        instance.add_dynamic_partitions(MEMPOOL_WINDOWS, [*windows[:3], today[0], *windows[3:], today[1]])
        for w in [*windows, *today]:
            assert execute_window(defs, instance, w).success

        requests = previous_day_requests(instance.get_dynamic_partitions(MEMPOOL_WINDOWS), DAY, windows_per_run=2)
        ranges = [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests]
        assert ranges == [(windows[0], windows[1]), (windows[2], windows[2]), (windows[3], windows[4]),
                          (windows[5], windows[5])]
        assert {r.tags[BACKFILL_DAY_TAG] for r in requests} == {DAY.isoformat()}

        tick = datetime(2026, 3, 3, 0, 30, tzinfo=timezone.utc)
        with build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
            scheduled = previous_day_backfill_schedule.evaluate_tick(context).run_requests
        # today[0] splits yesterday in registration order: two runs, each well under the policy's size
        assert len(windows) < DEFAULT_WINDOWS_PER_RUN
        assert [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in scheduled] == [
            (windows[0], windows[2]), (windows[3], windows[5])]
        before = {w: _tx_features_materialisations(instance, w) for w in [*windows, *today]}
        tables_before = {w: window_hashes(settings, w) for w in windows}
        for request in scheduled:
            tags = dict(request.tags)
            first, last = tags.pop(RANGE_START_TAG), tags.pop(RANGE_END_TAG)
            registered = instance.get_dynamic_partitions(MEMPOOL_WINDOWS)
            chunk = registered[registered.index(first): registered.index(last) + 1]
            run = execute_windows(defs, instance, chunk, tags=tags, job_name="derived_windows_job")
            assert run.success
            assert instance.get_run_by_id(run.run_id).tags[BACKFILL_DAY_TAG] == DAY.isoformat()
        after = {w: _tx_features_materialisations(instance, w) for w in [*windows, *today]}
        assert {w for w in after if after[w] > before[w]} == set(windows)
        # the table the derived assets read was not rebuilt, and their content is unchanged
        assert {w: window_hashes(settings, w) for w in windows} == tables_before
        tx_runs = {w: _materialisations(instance, "mempool_transactions", w) for w in windows}
        assert set(tx_runs.values()) == {1}


def test_no_registered_window_yesterday_skips_with_a_reason(settings_factory):
    settings_factory(MEV_WINDOW_SECONDS=60)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(MEMPOOL_WINDOWS, windows_from(DAY_START_MS, 2))
        tick = datetime(2026, 3, 5, 0, 30, tzinfo=timezone.utc)
        with build_schedule_context(instance=instance, scheduled_execution_time=tick) as context:
            data = previous_day_backfill_schedule.evaluate_tick(context)
        assert not data.run_requests and "no registered window on 2026-03-04" in data.skip_message


def _materialisations(instance: DagsterInstance, asset: str, window: str) -> int:
    return len(instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset), asset_partitions=[window]), limit=100).records)


def _tx_features_materialisations(instance: DagsterInstance, window: str) -> int:
    return _materialisations(instance, "tx_features", window)
