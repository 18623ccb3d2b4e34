"""Schedules of mev_assets."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from mev_assets.jobs import daily_rollups_job

# Hourly, so today's rollup follows the live lane; each run rebuilds only the latest days.
daily_rollups_schedule = ScheduleDefinition(
    name="daily_rollups_schedule",
    job=daily_rollups_job,
    cron_schedule="5 * * * *",
    default_status=DefaultScheduleStatus.STOPPED,
    description="dbt build of the daily rollups, five minutes past every hour.",
)
