"""Asset checks of the per-window assets: thin adapters over ``mev_assets.core.quality``.

The checks of one asset share one op (``multi_asset_check``) so a window's table is loaded once;
they are partitioned by ``mempool_windows`` and run in the window's run, after the asset. Blocking
checks (severity ERROR) stop downstream assets of a bad window. Freshness is a separate,
unpartitioned check over the newest materialised window.

A backfill run covers many windows (a partition key range): its checks evaluate every window of
the range in one go and their failures name the windows. Dagster records such an evaluation for
the run's range rather than per window (``partition`` is unset), which the UI shows on the asset's
check history; a sensor run (one window) records it per window.
"""

import time
import warnings
from datetime import timedelta

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    AssetRecordsFilter,
    FreshnessPolicy,
    PreviewWarning,
    asset_check,
    multi_asset_check,
)

from mev_assets.assets.features import IDENTITY_COLUMNS, tx_features
from mev_assets.assets.transactions import DUCKDB_POOL, mempool_source_stats, mempool_transactions
from mev_assets.core import ge_suites, quality
from mev_assets.core.calldata import OUTPUT_SCHEMA
from mev_assets.core.fee_features import FEE_FEATURES_SCHEMA
from mev_assets.core.schemas import MEMPOOL_SOURCE_STATS_SCHEMA, MEMPOOL_TRANSACTIONS_SCHEMA
from mev_assets.core.windows import key_start_ms
from mev_assets.partitions import mempool_windows
from mev_assets.resources.landing_zone import LandingZoneResource

TX_FEATURES_SCHEMA = {
    **{c: MEMPOOL_TRANSACTIONS_SCHEMA[c] for c in IDENTITY_COLUMNS},
    **{c: t for c, t in OUTPUT_SCHEMA.items() if c != "hash"},
    **{c: t for c, t in FEE_FEATURES_SCHEMA.items() if c != "hash"},
}
TX_KEYS = ["window", "hash", "timestamp_ms"]


def freshness_policy(window_seconds: int) -> FreshnessPolicy:
    """Dagster's own freshness policy for the window assets: fail past three window widths."""
    # Dagster's freshness windows cannot be shorter than a minute; the newest_window_fresh check
    # keeps the exact three-width limit for short windows.
    width = timedelta(seconds=window_seconds)
    return FreshnessPolicy.time_window(
        fail_window=max(3 * width, timedelta(minutes=2)), warn_window=max(2 * width, timedelta(minutes=1))
    )


def _result(asset_key, name: str, outcome: quality.CheckOutcome) -> AssetCheckResult:
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=name,
        passed=outcome.passed,
        severity=AssetCheckSeverity.WARN if outcome.severity == quality.WARN else AssetCheckSeverity.ERROR,
        description=outcome.description,
        metadata=outcome.metadata,
    )


def _spec(asset, name: str, description: str, blocking: bool) -> AssetCheckSpec:
    # partitioned check specs are a Dagster preview feature, chosen knowingly: it is the supported way
    # for a check to evaluate the run's window (context.partition_key) and record it per partition
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(name=name, asset=asset, description=description, blocking=blocking, partitions_def=mempool_windows)


def build_asset_checks(chain_id: int, window_seconds: int, collapse_ratio: float = quality.DEFAULT_COLLAPSE_RATIO) -> list:
    """Every check of the per-window assets, for the configured chain id and window width."""

    tx_key = mempool_transactions.key
    tx_specs = [
        _spec(tx_key, "columns_and_types", "Exactly the columns of MEMPOOL_TRANSACTIONS_SCHEMA, with their types", True),
        _spec(tx_key, "unique_hash", "One row per transaction hash", True),
        _spec(tx_key, "keys_not_null", f"No nulls in {TX_KEYS}", True),
        _spec(tx_key, "value_ranges", f"gas >= 21,000; fee cap >= tip; chain id {chain_id}", True),
        _spec(tx_key, "hash_matches_raw_tx", "Every hash equals keccak-256 of its raw_tx", True),
        _spec(tx_key, "matches_sealed_segments", "Rows = distinct hashes of the window's sealed landing segments", True),
        _spec(tx_key, "great_expectations_suite", "great-expectations 1.x suite; results in the metadata", False),
    ]

    @multi_asset_check(
        name="mempool_transactions_checks",
        specs=tx_specs,
        ins={"mempool_transactions": AssetIn(key=tx_key)},
        pool=DUCKDB_POOL,  # the input loads from DuckDB: never while another run writes it
    )
    def mempool_transactions_checks(
        context: AssetCheckExecutionContext, landing_zone: LandingZoneResource, mempool_transactions: pl.DataFrame
    ):
        table = mempool_transactions
        zone = landing_zone.zone()
        # hashes only: the consistency check does not need the wide landing rows
        landed, segments = [], 0
        for window in context.partition_keys:
            files = zone.segment_files("mempool", window)
            segments += len(files)
            landed += [zone.read_segment(f, ["hash"]).with_columns(window=pl.lit(window)) for f in files]
        landing = pl.concat(landed, how="vertical") if landed else pl.DataFrame(schema={"hash": pl.String, "window": pl.String})
        yield _result(tx_key, "columns_and_types", quality.check_schema(table, MEMPOOL_TRANSACTIONS_SCHEMA))
        yield _result(tx_key, "unique_hash", quality.check_unique(table, "hash", within="window"))
        yield _result(tx_key, "keys_not_null", quality.check_not_null(table, TX_KEYS))
        yield _result(tx_key, "value_ranges", quality.check_value_ranges(table, chain_id))
        yield _result(tx_key, "hash_matches_raw_tx", quality.check_hash_matches_raw(table))
        yield _result(tx_key, "matches_sealed_segments", quality.check_matches_landing(table, landing, segments))
        suite = ge_suites.mempool_transactions_suite(chain_id, list(MEMPOOL_TRANSACTIONS_SCHEMA))
        yield _result(tx_key, "great_expectations_suite", ge_suites.validate(table, suite, "mempool_transactions"))

    stats_key = mempool_source_stats.key
    stats_specs = [
        _spec(stats_key, "columns_and_types", "Exactly the columns of MEMPOOL_SOURCE_STATS_SCHEMA, with their types", True),
        _spec(stats_key, "unique_source", "One row per source", True),
        _spec(stats_key, "source_coverage", f"Warn when a source's coverage falls below {collapse_ratio} x the previous window's", False),
    ]

    @multi_asset_check(
        name="mempool_source_stats_checks",
        specs=stats_specs,
        ins={"mempool_source_stats": AssetIn(key=stats_key)},
        pool=DUCKDB_POOL,
    )
    def mempool_source_stats_checks(context: AssetCheckExecutionContext, mempool_source_stats: pl.DataFrame):
        stats = mempool_source_stats
        yield _result(stats_key, "columns_and_types", quality.check_schema(stats, MEMPOOL_SOURCE_STATS_SCHEMA))
        yield _result(stats_key, "unique_source", quality.check_unique(stats, "source", within="window"))
        baseline = _previous_coverage(context, min(context.partition_keys, key=key_start_ms))
        outcome = quality.check_source_coverage_windows(stats, baseline, collapse_ratio)
        yield _result(stats_key, "source_coverage", outcome)

    feat_key = tx_features.key
    feat_specs = [
        _spec(feat_key, "columns_and_types", "The identity, decoded-calldata and fee-feature columns, with their types", True),
        _spec(feat_key, "unique_hash", "One row per transaction hash", True),
        _spec(feat_key, "keys_not_null", f"No nulls in {TX_KEYS}", True),
    ]

    @multi_asset_check(
        name="tx_features_checks", specs=feat_specs, ins={"tx_features": AssetIn(key=feat_key)}, pool=DUCKDB_POOL
    )
    def tx_features_checks(tx_features: pl.DataFrame):
        yield _result(feat_key, "columns_and_types", quality.check_schema(tx_features, TX_FEATURES_SCHEMA))
        yield _result(feat_key, "unique_hash", quality.check_unique(tx_features, "hash", within="window"))
        yield _result(feat_key, "keys_not_null", quality.check_not_null(tx_features, TX_KEYS))

    @asset_check(
        asset=mempool_transactions,
        name="newest_window_fresh",
        description="The newest materialised window ended at most three window widths ago",
    )
    def newest_window_fresh(context: AssetCheckExecutionContext) -> AssetCheckResult:
        done = context.instance.get_materialized_partitions(tx_key)
        newest = max(done, key=key_start_ms) if done else None
        outcome = quality.check_freshness(newest, time.time_ns() // 1_000_000, window_seconds)
        return _result(tx_key, "newest_window_fresh", outcome)

    return [mempool_transactions_checks, mempool_source_stats_checks, tx_features_checks, newest_window_fresh]


def _previous_coverage(context: AssetCheckExecutionContext, window: str) -> dict[str, float] | None:
    """Coverage per source recorded by the materialisation of the window just before ``window``."""
    instance = context.instance
    done = [k for k in instance.get_materialized_partitions(mempool_source_stats.key) if key_start_ms(k) < key_start_ms(window)]
    if not done:
        return None
    previous = max(done, key=key_start_ms)
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=mempool_source_stats.key, asset_partitions=[previous]), limit=1
    ).records
    materialization = records[0].event_log_entry.asset_materialization if records else None
    if materialization is None:
        return None
    if "coverage" in materialization.metadata:  # a one-window run
        return dict(materialization.metadata["coverage"].value)
    by_window = materialization.metadata.get("coverage_by_window")  # a multi-window (backfill) run
    coverage = by_window.value.get(previous) if by_window is not None else None
    return dict(coverage) if coverage is not None else None
