"""Drive the lane on a real Dagster instance from one process (the demo and ``mev-assets materialize``).

``dagster dev`` / the daemon evaluate ``mempool_window_sensor`` and launch its runs in
subprocesses. The demo and the CLI do the same work in-process so they finish in seconds per
window: they evaluate the same sensor against the same instance, apply its partition requests,
and execute each run request with the job's in-process executor. Runs carry the sensor's run key
and name tags, so the daemon later recognises them and does not launch them again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    RunsFilter,
    SensorResult,
    build_sensor_context,
)
from dagster._core.definitions.run_request import RunRequest

from mev_assets.partitions import MEMPOOL_WINDOWS

SENSOR_NAME = "mempool_window_sensor"
JOB_NAME = "mempool_window_job"
RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


class LaneError(RuntimeError):
    pass


@dataclass
class WindowRun:
    window: str
    run_id: str
    success: bool
    seconds: float
    run_key: str | None = None
    windows: tuple[str, ...] = ()
    """Every window of the run (a backfill run covers a range; ``window`` is its first)."""


def _already_ran(instance: DagsterInstance, run_key: str) -> bool:
    runs = instance.get_runs(filters=RunsFilter(tags={RUN_KEY_TAG: run_key, SENSOR_NAME_TAG: SENSOR_NAME}), limit=1)
    return bool(runs)


def range_tags(windows: list[str]) -> dict[str, str]:
    """Run tags naming ``windows`` (adjacent in registration order) as one partition key range."""
    return {RANGE_START_TAG: windows[0], RANGE_END_TAG: windows[-1]}


def execute_windows(
    defs: Definitions,
    instance: DagsterInstance,
    windows: list[str],
    tags: dict[str, str] | None = None,
    asset_keys: Iterable[AssetKey] | None = None,
    console_log_level: str = "WARNING",
    job_name: str = JOB_NAME,
) -> WindowRun:
    """One in-process run of ``job_name`` over ``windows``: one window, or a range of windows that
    are adjacent in registration order (see :func:`mev_assets.core.backfill.contiguous_chunks`)."""
    if not windows:
        raise LaneError("a run needs at least one window")
    job = defs.resolve_job_def(job_name)
    run_tags = dict(tags or {})
    partition_key = windows[0] if len(windows) == 1 else None
    if partition_key is None:
        run_tags.update(range_tags(windows))
    started = time.monotonic()
    result = job.execute_in_process(
        instance=instance,
        partition_key=partition_key,
        tags=run_tags,
        run_config={"loggers": {"console": {"config": {"log_level": console_log_level}}}},
        asset_selection=list(asset_keys) if asset_keys is not None else None,
        raise_on_error=False,
    )
    return WindowRun(
        windows[0], result.run_id, result.success, time.monotonic() - started, run_tags.get(RUN_KEY_TAG), tuple(windows)
    )


def execute_window(
    defs: Definitions,
    instance: DagsterInstance,
    window: str,
    tags: dict[str, str] | None = None,
    asset_keys: Iterable[AssetKey] | None = None,
    console_log_level: str = "WARNING",
) -> WindowRun:
    return execute_windows(defs, instance, [window], tags, asset_keys, console_log_level)


def sensor_tick(defs: Definitions, instance: DagsterInstance, cursor: str | None) -> tuple[list[RunRequest], str | None]:
    """Evaluate ``mempool_window_sensor`` once; register the partitions it asks for."""
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    # Called directly (not evaluate_tick): the daemon applies partition requests before it
    # validates run requests against them, and so must we.
    with build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=defs.resources) as context:
        result = sensor(context)
    if not isinstance(result, SensorResult):
        raise LaneError(f"{SENSOR_NAME} returned {type(result).__name__}, expected a SensorResult")
    for request in result.dynamic_partitions_requests or []:
        keys = list(getattr(request, "partition_keys", []) or [])
        if keys:
            instance.add_dynamic_partitions(MEMPOOL_WINDOWS, keys)
    return list(result.run_requests or []), result.cursor


def run_sensor_requests(defs: Definitions, instance: DagsterInstance, requests: list[RunRequest]) -> list[WindowRun]:
    runs = []
    for request in requests:
        if request.run_key and _already_ran(instance, request.run_key):
            continue
        tags = dict(request.tags)
        if request.run_key:
            tags[RUN_KEY_TAG] = request.run_key
        tags[SENSOR_NAME_TAG] = SENSOR_NAME
        runs.append(execute_window(defs, instance, request.partition_key, tags=tags))
    return runs


def resolve_selection(defs: Definitions, selection: str | None) -> list[AssetKey] | None:
    if not selection:
        return None
    try:
        keys = AssetSelection.from_string(selection).resolve(defs.resolve_asset_graph())
    except Exception as exc:  # noqa: BLE001 - the parser raises several types; one clear message
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LaneError(f"invalid --select {selection!r}: {first_line}") from None
    if not keys:
        raise LaneError(f"--select {selection!r} matches no asset")
    return sorted(keys, key=lambda k: k.to_user_string())
