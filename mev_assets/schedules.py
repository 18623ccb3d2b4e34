"""Schedules of mev_assets."""

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from mev_assets.core.backfill import DEFAULT_WINDOWS_PER_RUN, contiguous_chunks, previous_day, windows_of_day
from mev_assets.jobs import daily_rollups_job, derived_windows_job
from mev_assets.lane import range_tags
from mev_assets.partitions import MEMPOOL_WINDOWS

# Hourly, so today's rollup follows the live lane; each run rebuilds only the latest days.
daily_rollups_schedule = ScheduleDefinition(
    name="daily_rollups_schedule",
    job=daily_rollups_job,
    cron_schedule="5 * * * *",
    default_status=DefaultScheduleStatus.STOPPED,
    description="dbt build of the daily rollups, five minutes past every hour.",
)

BACKFILL_DAY_TAG = "mev/backfill_day"


def previous_day_requests(registered: list[str], tick_day, windows_per_run: int = DEFAULT_WINDOWS_PER_RUN):
    """Run requests re-materialising the derived assets of every registered window of ``tick_day``,
    ``windows_per_run`` windows per run (the assets' backfill policy)."""
    day = tick_day.isoformat()
    chunks = contiguous_chunks(registered, windows_of_day(registered, tick_day), windows_per_run)
    return [
        RunRequest(
            run_key=f"previous-day:{day}:{chunk[0]}..{chunk[-1]}",
            tags={**range_tags(chunk), BACKFILL_DAY_TAG: day, "mev/trigger": "previous_day_backfill_schedule"},
        )
        for chunk in chunks
    ]


@schedule(
    name="previous_day_backfill_schedule",
    job=derived_windows_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description=(
        "At 00:30 UTC, re-materialise yesterday's windows of the assets derived from mempool_transactions "
        f"(features, and anything scored from them), {DEFAULT_WINDOWS_PER_RUN} windows per run: turn it on "
        "to pick up a protocol-registry or scoring change for the last day."
    ),
)
def previous_day_backfill_schedule(context: ScheduleEvaluationContext):
    day = previous_day(context.scheduled_execution_time)
    requests = previous_day_requests(context.instance.get_dynamic_partitions(MEMPOOL_WINDOWS), day)
    return requests or SkipReason(f"no registered window on {day.isoformat()}")
