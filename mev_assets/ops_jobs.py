"""Operations jobs: retention (delete aged-out windows everywhere) and replay (rebuild windows
from the landing zone and prove the rebuild is identical). See docs/operations.md."""

# no `from __future__ import annotations`: Dagster resolves the op's config annotation at runtime

import hashlib
import io
from dataclasses import dataclass, field

import duckdb
import polars as pl
from dagster import (
    Config,
    DagsterInstance,
    DefaultScheduleStatus,
    Definitions,
    MetadataValue,
    OpExecutionContext,
    Out,
    ScheduleDefinition,
    job,
    op,
)

from mev_assets.assets.transactions import DUCKDB_POOL
from mev_assets.core.lake import LakeMissingError, open_lake
from mev_assets.core.retention import RetentionPlan, plan_retention
from mev_assets.core.windows import key_start_ms
from mev_assets.ingest.landing import AREAS, QUARANTINE, LandingZone, now_ms
from mev_assets.lane import execute_window
from mev_assets.partitions import MEMPOOL_WINDOWS
from mev_assets.resources.warehouse import DUCKDB_SCHEMA
from mev_assets.settings import Settings

# --------------------------------------------------------------------------------------------
# retention
# --------------------------------------------------------------------------------------------


def _duckdb_window_tables(con) -> list[str]:
    rows = con.execute(
        "select table_name from information_schema.columns where table_schema = ? and column_name = 'window' "
        "and table_name in (select table_name from information_schema.tables where table_schema = ? "
        "and table_type = 'BASE TABLE') order by table_name",
        [DUCKDB_SCHEMA, DUCKDB_SCHEMA],
    ).fetchall()
    return [r[0] for r in rows]


def live_collectors(zone: LandingZone, at_ms: int, window_seconds: int) -> frozenset[str]:
    """Collectors whose heartbeat is fresh and that did not stop: their WAL files stay untouched."""
    stale_after_ms = max(3 * window_seconds * 1000, 30_000)
    return frozenset(
        b["collector_id"]
        for b in zone.heartbeats()
        if "collector_id" in b and at_ms - int(b.get("heartbeat_ms", 0)) <= stale_after_ms and not b.get("stopped")
    )


def retention_inventory(settings: Settings, instance: DagsterInstance, clickhouse=None) -> dict[str, list[str]]:
    """Every window key each place holds: place -> keys (see :class:`RetentionPlan`)."""
    zone = LandingZone.from_settings(settings)
    landing = set()
    for area in (*AREAS, QUARANTINE):
        landing.update(zone.windows(area))
    inventory: dict[str, list[str]] = {"landing": sorted(landing), "wal": zone.wal_windows()}
    lake = open_lake(settings)
    for table in lake.tables():
        inventory[f"lake/{table}"] = lake.windows(table)
    if settings.storage == "local" and settings.duckdb_path.exists():
        with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
            for table in _duckdb_window_tables(con):
                keys = con.execute(f'select distinct "window" from {DUCKDB_SCHEMA}."{table}"').fetchall()
                inventory[f"duckdb/{table}"] = sorted(str(k[0]) for k in keys if k[0] is not None)
    if clickhouse is not None and clickhouse.is_server:
        for table, keys in clickhouse.warehouse().windows().items():
            inventory[f"clickhouse/{table}"] = keys
    inventory["partitions"] = sorted(instance.get_dynamic_partitions(MEMPOOL_WINDOWS))
    return inventory


def apply_retention_plan(
    plan: RetentionPlan, settings: Settings, instance: DagsterInstance, clickhouse=None
) -> dict[str, int]:
    """Delete exactly what ``plan`` lists; returns how many objects/rows/keys went, per place.

    Order: derived stores first, the landing zone next, the partition keys last, so that a
    crash half-way leaves windows that the next run still finds and finishes.
    """
    deleted: dict[str, int] = {}
    lake = open_lake(settings)
    for place, keys in plan.expired.items():
        if place.startswith("lake/"):
            table = place.split("/", 1)[1]
            deleted[place] = sum(lake.delete_window(table, k) for k in keys)
    duck_places = {p: k for p, k in plan.expired.items() if p.startswith("duckdb/") and k}
    if duck_places:
        with duckdb.connect(str(settings.duckdb_path)) as con:
            for place, keys in duck_places.items():
                table = place.split("/", 1)[1]
                row = con.execute(
                    f'delete from {DUCKDB_SCHEMA}."{table}" where "window" in (select unnest(?::varchar[]))', [keys]
                ).fetchone()
                deleted[place] = int(row[0]) if row else 0
    for place, keys in plan.expired.items():
        if place.startswith("clickhouse/") and keys and clickhouse is not None and clickhouse.is_server:
            warehouse = clickhouse.warehouse()
            table = place.split("/", 1)[1]
            for k in keys:
                warehouse.delete_window(table, k)
            deleted[place] = len(keys)
    zone = LandingZone.from_settings(settings)
    keep = live_collectors(zone, now_ms(), settings.window_seconds)
    removed = 0
    for k in sorted(set(plan.expired.get("landing", [])) | set(plan.expired.get("wal", []))):
        removed += len(zone.delete_window(k, keep_collectors=keep))
    deleted["landing"] = removed
    for k in plan.expired.get("partitions", []):
        instance.delete_dynamic_partition(MEMPOOL_WINDOWS, k)
    deleted["partitions"] = len(plan.expired.get("partitions", []))
    return deleted


class RetentionConfig(Config):
    dry_run: bool = False
    """List what would be deleted, delete nothing."""


@op(
    required_resource_keys={"clickhouse"},
    out=Out(dict, description="The retention report (also in the output metadata)."),
    pool=DUCKDB_POOL,  # deletes from DuckDB: never alongside a window run writing to it
    tags={"kind": "retention"},
)
def apply_retention(context: OpExecutionContext, config: RetentionConfig) -> dict:
    """Delete windows older than MEV_RETENTION_DAYS from the landing zone (WAL leftovers too), the
    lake, DuckDB, ClickHouse and the mempool_windows partitions."""
    settings = Settings.from_env()
    clickhouse = context.resources.clickhouse
    plan = plan_retention(
        retention_inventory(settings, context.instance, clickhouse),
        now_ms(),
        settings.retention_days,
        settings.window_seconds,
    )
    deleted = {} if config.dry_run else apply_retention_plan(plan, settings, context.instance, clickhouse)
    report = {
        "dry_run": config.dry_run,
        "retention_days": plan.retention_days,
        "cutoff": plan.cutoff_key,
        "expired_windows": plan.windows,
        "expired_by_place": {p: k for p, k in plan.expired.items() if k},
        "deleted": deleted,
    }
    context.log.info(
        f"retention ({'dry run' if config.dry_run else 'applied'}): {len(plan.windows)} window(s) ended before "
        f"{plan.cutoff_key} UTC; per place {plan.counts()}"
    )
    context.add_output_metadata(
        {
            "dry_run": config.dry_run,
            "cutoff": plan.cutoff_key,
            "expired_windows": len(plan.windows),
            "first_expired": plan.windows[0] if plan.windows else "",
            "last_expired": plan.windows[-1] if plan.windows else "",
            "report": MetadataValue.json(report),
        }
    )
    return report


@job(description="Delete windows older than MEV_RETENTION_DAYS everywhere (config dry_run: true to only list them).")
def retention_job():
    apply_retention()


retention_schedule = ScheduleDefinition(
    name="retention_schedule",
    job=retention_job,
    cron_schedule="17 3 * * *",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Retention every day at 03:17 UTC.",
)


# --------------------------------------------------------------------------------------------
# replay
# --------------------------------------------------------------------------------------------


def content_hash(frame: pl.DataFrame) -> str:
    """sha256 of the frame's rows in a canonical order: columns by name, rows sorted, as CSV.

    Independent of row order, column order and Parquet encoding; any changed value changes it.
    """
    columns = sorted(frame.columns)
    canonical = frame.select(
        # nested values (lists, structs) as JSON, every other value as its string form
        pl.struct(pl.col(c)).struct.json_encode().alias(c) if frame.schema[c].is_nested() else pl.col(c).cast(pl.String)
        for c in columns
    )
    canonical = canonical.sort(columns, nulls_last=True) if canonical.height else canonical
    buf = io.BytesIO()
    canonical.write_csv(buf, null_value="\\N")
    return hashlib.sha256(buf.getvalue()).hexdigest()


def window_hashes(settings: Settings, window: str) -> dict[str, str]:
    """table -> :func:`content_hash` of the window's lake file, for every lake table that has it."""
    lake = open_lake(settings)
    hashes = {}
    for table in lake.tables():
        try:
            hashes[table] = content_hash(lake.read_window(table, window))
        except LakeMissingError:
            continue
    return hashes


@dataclass
class WindowParity:
    window: str
    run_id: str
    success: bool
    before: dict[str, str]
    after: dict[str, str]

    @property
    def mismatched(self) -> list[str]:
        """Tables whose rebuilt content differs from the previous materialisation."""
        return sorted(t for t in self.before if self.after.get(t) != self.before[t])

    @property
    def matches(self) -> bool:
        return self.success and not self.mismatched

    @property
    def first_build(self) -> bool:
        return not self.before


@dataclass
class ReplayReport:
    first: str
    last: str
    windows: list[WindowParity] = field(default_factory=list)

    @property
    def matched(self) -> list[str]:
        return [w.window for w in self.windows if w.matches and not w.first_build]

    @property
    def mismatched(self) -> list[str]:
        return [w.window for w in self.windows if not w.matches]

    @property
    def parity(self) -> bool:
        return not self.mismatched

    def summary(self) -> dict:
        return {
            "first": self.first,
            "last": self.last,
            "windows": len(self.windows),
            "matched": len(self.matched),
            "first_builds": [w.window for w in self.windows if w.first_build],
            "mismatched": {w.window: (w.mismatched or ["run failed"]) for w in self.windows if not w.matches},
        }


def replay_windows(
    defs: Definitions, instance: DagsterInstance, first: str, last: str, settings: Settings | None = None
) -> ReplayReport:
    """Rebuild every window from ``first`` to ``last`` (inclusive) from the landing zone through
    ``mempool_window_job``, comparing each table's content hash before and after.

    The range covers the registered partitions and the landing zone's windows in it (a window
    not registered yet is added and built; it has no previous hash, so it counts as a first
    build, not as a match).
    """
    settings = settings or Settings.from_env()
    key_start_ms(first), key_start_ms(last)  # clear error for a malformed bound
    if first > last:
        raise ValueError(f"replay range is empty: {first} is after {last}")
    zone = LandingZone.from_settings(settings)
    registered = set(instance.get_dynamic_partitions(MEMPOOL_WINDOWS))
    landed = set(zone.windows("mempool", since=first))
    keys = sorted(k for k in registered | landed if first <= k <= last)
    missing = [k for k in keys if k not in registered]
    if missing:
        instance.add_dynamic_partitions(MEMPOOL_WINDOWS, missing)
    report = ReplayReport(first, last)
    for window in keys:
        before = window_hashes(settings, window)
        run = execute_window(defs, instance, window, tags={"mev/replay": f"{first}..{last}"})
        report.windows.append(WindowParity(window, run.run_id, run.success, before, window_hashes(settings, window)))
    return report


class ReplayConfig(Config):
    first: str
    """First window key of the range (YYYY-MM-DDTHH:MM:SS)."""
    last: str
    """Last window key of the range, inclusive."""


@op(out=Out(dict, description="The replay parity summary (also in the output metadata)."), tags={"kind": "replay"})
def replay_range(context: OpExecutionContext, config: ReplayConfig) -> dict:
    """Rebuild the windows of the range from the landing zone; fail when any window's content differs."""
    from mev_assets.definitions import build_definitions  # here: definitions imports this module

    settings = Settings.from_env()
    report = replay_windows(build_definitions(settings), context.instance, config.first, config.last, settings)
    summary = report.summary()
    context.add_output_metadata(
        {"windows": len(report.windows), "matched": len(report.matched), "parity": report.parity,
         "report": MetadataValue.json(summary)}
    )
    if not report.parity:
        raise ReplayMismatchError(f"replay of {config.first}..{config.last}: windows differ: {summary['mismatched']}")
    return summary


class ReplayMismatchError(RuntimeError):
    """A rebuilt window differs from its previous materialisation (or its run failed)."""


@job(description="Rebuild a range of windows from the landing zone and check each matches its previous content hash.")
def replay_job():
    replay_range()


__all__ = [
    "ReplayConfig",
    "ReplayMismatchError",
    "ReplayReport",
    "RetentionConfig",
    "WindowParity",
    "apply_retention_plan",
    "content_hash",
    "live_collectors",
    "replay_job",
    "replay_windows",
    "retention_inventory",
    "retention_job",
    "retention_schedule",
    "window_hashes",
]
