"""``mempool_window_sensor``: each ready landing window becomes a partition and a run."""


import time

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from mev_assets.core.window_tracker import TrackerState, windows_to_run
from mev_assets.jobs import mempool_window_job
from mev_assets.partitions import MEMPOOL_WINDOWS, mempool_windows
from mev_assets.resources.landing_zone import LandingZoneResource


def build_mempool_window_sensor(interval_seconds: int, lookback_hours: int):
    @sensor(
        name="mempool_window_sensor",
        job=mempool_window_job,
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Registers each closed, sealed landing window as a mempool_windows partition and "
        "requests its run; re-runs a window when late segments arrive.",
    )
    def mempool_window_sensor(context: SensorEvaluationContext, landing_zone: LandingZoneResource):
        state = TrackerState.loads(context.cursor)
        requests, state = windows_to_run(
            landing_zone.zone(),
            state,
            at_ms=time.time_ns() // 1_000_000,
            window_seconds=landing_zone.window_seconds,
            grace_seconds=landing_zone.grace_seconds,
            lookback_ms=lookback_hours * 3600 * 1000,
        )
        if not requests:
            return SensorResult(skip_reason=SkipReason("no newly ready window"), cursor=state.dumps())
        known = set(context.instance.get_dynamic_partitions(MEMPOOL_WINDOWS))
        new_keys = sorted({r.window for r in requests} - known)
        return SensorResult(
            run_requests=[
                RunRequest(
                    run_key=r.run_key,
                    partition_key=r.window,
                    tags={"mev/window": r.window, "mev/segments": r.fingerprint, "mev/rerun": str(r.rerun).lower()},
                )
                for r in requests
            ],
            dynamic_partitions_requests=[mempool_windows.build_add_request(new_keys)] if new_keys else [],
            cursor=state.dumps(),
        )

    return mempool_window_sensor
