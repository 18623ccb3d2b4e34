"""Operational alerts in Dagster: thin adapter over ``mev_assets.core.alerts``.

* four non-blocking (WARN), unpartitioned asset checks on ``mempool_transactions`` -
  ``collector_queue_saturation``, ``ingest_lag``, ``quarantine_rate``, ``source_coverage_live`` -
  in one ``multi_asset_check`` (the inputs are read once); each can also be executed on its own
  from the UI, and ``pipeline_alerts_job`` executes all of them;
* ``pipeline_alerts_sensor`` (on by default, every ``MEV_ALERT_INTERVAL_SECONDS``) evaluates the
  same conditions and returns them as ``AssetCheckEvaluation`` events in its ``SensorResult``:
  the daemon records them against the declared checks, so the UI shows the live state without
  launching a run.

``build_alerts(settings)`` returns ``(asset_checks, sensors, jobs)`` for the Definitions.
"""

import time

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetSelection,
    DefaultSensorStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    multi_asset_check,
    sensor,
)

from mev_assets.assets.transactions import mempool_transactions
from mev_assets.core import alerts as core
from mev_assets.core.lake import open_lake
from mev_assets.core.quality import CheckOutcome
from mev_assets.resources.landing_zone import LandingZoneResource
from mev_assets.settings import Settings

ALERTS_SENSOR = "pipeline_alerts_sensor"
ALERTS_JOB = "pipeline_alerts_job"
ALERTED_ASSET = mempool_transactions.key
# The alert checks by key, known without settings: the window jobs leave them out
# (``AssetSelection.assets(...) - AssetSelection.checks(*ALERT_CHECK_KEYS)``), because an asset
# selection includes the asset's checks and the alerts would otherwise run, as an extra op, in every
# window run; the sensor keeps them current instead.
ALERT_CHECK_KEYS = [AssetCheckKey(ALERTED_ASSET, name) for name in core.CONDITIONS]


def _descriptions(t: core.AlertThresholds) -> dict[str, str]:
    return {
        core.COLLECTOR_QUEUE_SATURATION: (
            f"A collector's hash-fetch queue at >= {t.queue_saturation:.0%} of capacity, or hashes dropped from it "
            f"within the last {t.windows} windows (MEV_ALERT_QUEUE_SATURATION)"
        ),
        core.INGEST_LAG: (
            f"Newest sealed window, oldest unsealed record or a collector's heartbeat older than "
            f"{t.ingest_lag_seconds} s (MEV_ALERT_INGEST_LAG_SECONDS)"
        ),
        core.QUARANTINE_RATE: (
            f"More than {t.quarantine_rate:.1%} of the records of the last {t.windows} windows quarantined "
            f"(MEV_ALERT_QUARANTINE_RATE)"
        ),
        core.SOURCE_COVERAGE_LIVE: (
            f"A source disconnected or silent for over {t.silence_seconds} s, or its coverage over the last {t.windows} "
            f"windows more than {t.coverage_drop:.0%} below the windows before (MEV_ALERT_SILENCE_SECONDS, "
            f"MEV_ALERT_COVERAGE_DROP)"
        ),
    }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def build_alerts(settings: Settings) -> tuple[list, list, list]:
    """The alert checks, the sensor that keeps them current, and a job that runs the checks."""
    thresholds = core.AlertThresholds.from_settings(settings)
    specs = [
        AssetCheckSpec(name=name, asset=ALERTED_ASSET, description=description, blocking=False)
        for name, description in _descriptions(thresholds).items()
    ]

    def evaluate(landing_zone: LandingZoneResource, names: list[str] | None = None) -> dict[str, CheckOutcome]:
        inputs = core.read_alert_inputs(landing_zone.zone(), open_lake(settings), thresholds, _now_ms())
        return core.evaluate_alerts(inputs, thresholds, names)

    @multi_asset_check(
        name="pipeline_alerts",
        specs=specs,
        can_subset=True,
        description="Operational alerts of the live lane (docs/operations.md, What to watch)",
    )
    def pipeline_alerts(context: AssetCheckExecutionContext, landing_zone: LandingZoneResource):
        names = sorted(key.name for key in context.selected_asset_check_keys)
        for name, outcome in evaluate(landing_zone, names).items():
            yield AssetCheckResult(
                asset_key=ALERTED_ASSET,
                check_name=name,
                passed=outcome.passed,
                severity=AssetCheckSeverity.WARN,
                description=outcome.description,
                metadata=outcome.metadata,
            )

    @sensor(
        name=ALERTS_SENSOR,
        minimum_interval_seconds=settings.alert_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Evaluates the operational alerts (queue saturation, ingest lag, quarantine rate, live source "
        "coverage) and records them as results of the pipeline_alerts checks on mempool_transactions, without a run.",
    )
    def pipeline_alerts_sensor(context: SensorEvaluationContext, landing_zone: LandingZoneResource):
        outcomes = evaluate(landing_zone)
        events = [
            AssetCheckEvaluation(
                asset_key=ALERTED_ASSET,
                check_name=name,
                passed=outcome.passed,
                severity=AssetCheckSeverity.WARN,
                description=outcome.description,
                metadata=outcome.metadata,
                blocking=False,
            )
            for name, outcome in outcomes.items()
        ]
        failing = [name for name, outcome in outcomes.items() if not outcome.passed]
        for name in failing:
            context.log.warning(f"{name}: {outcomes[name].description}")
        summary = f"alerts: {', '.join(failing)} failing" if failing else f"alerts: all {len(outcomes)} passed"
        # the skip reason is the tick's one-line summary in the UI; the results are in asset_events
        return SensorResult(asset_events=events, skip_reason=SkipReason(summary))

    pipeline_alerts_job = define_asset_job(
        ALERTS_JOB,
        selection=AssetSelection.checks(pipeline_alerts),
        description="Evaluate the operational alerts now (the sensor does it every MEV_ALERT_INTERVAL_SECONDS)",
    )
    return [pipeline_alerts], [pipeline_alerts_sensor], [pipeline_alerts_job]


__all__ = ["ALERTS_JOB", "ALERTS_SENSOR", "ALERTED_ASSET", "ALERT_CHECK_KEYS", "build_alerts"]
