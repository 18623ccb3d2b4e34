"""The dbt project ``dbt_models/`` as Dagster assets: daily rollups downstream of the per-window tables.

dbt sources (schema ``mev``) map to the asset keys of the per-window assets that write them, so
lineage runs ``mempool_transactions`` -> ``stg_mempool_transactions`` -> ``daily_mempool_stats``.
The dbt assets are unpartitioned: each run rebuilds the latest days incrementally (see
docs/dbt.md), and ``dbt build`` runs the dbt tests, which Dagster shows as asset checks.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetObservation, Config, MetadataValue
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from mev_assets.assets.transactions import DUCKDB_POOL
from mev_assets.core.lake import Lake, open_lake
from mev_assets.core.rollups import export_rollups
from mev_assets.resources.clickhouse import ClickHouseResource
from mev_assets.settings import PROJECT_ROOT, Settings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_models"
DBT_GROUP = "daily"

# The venv's dbt, found also when the venv is not activated (PATH without .venv/bin).
_VENV_DBT = Path(sys.executable).with_name("dbt")
DBT_EXECUTABLE = str(_VENV_DBT) if _VENV_DBT.exists() else "dbt"
RUN_ARTIFACTS_KEPT = 10

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path="target")


def _project_files(project_dir: Path) -> list[Path]:
    return [
        path
        for folder in ("models", "macros", "tests")
        for path in (project_dir / folder).rglob("*")
        if path.suffix in (".sql", ".yml", ".yaml")
    ] + [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]


def manifest_is_stale(project: DbtProject) -> bool:
    """True when ``manifest.json`` is missing or older than a model, macro, test or config file."""
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    return any(path.stat().st_mtime > built for path in _project_files(Path(project.project_dir)) if path.exists())


def parse_manifest(project: DbtProject) -> Path:
    """Run ``dbt parse`` (no database, no network) and move the new manifest into place atomically,
    so a concurrent reader (the daemon, another test process) never sees a half-written file."""
    target = Path(project.project_dir) / project.target_path
    target.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="parse-", dir=target))
    try:
        env = {
            **os.environ,
            "DBT_PROFILES_DIR": str(project.profiles_dir),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_TARGET_PATH": str(scratch),
            "DBT_LOG_PATH": str(scratch),
        }
        done = subprocess.run(
            [DBT_EXECUTABLE, "parse", "--quiet"],
            cwd=project.project_dir,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"dbt parse failed in {project.project_dir} (exit {done.returncode}):\n{done.stdout}{done.stderr}"
            )
        # dagster-dbt seeds each run's target directory with target/partial_parse.msgpack, which
        # spares every run a full parse; the manifest goes last, as the sign that both are there.
        if (scratch / "partial_parse.msgpack").exists():
            os.replace(scratch / "partial_parse.msgpack", target / "partial_parse.msgpack")
        os.replace(scratch / "manifest.json", project.manifest_path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return project.manifest_path


def prepare_manifest(project: DbtProject = dbt_project) -> Path:
    """Make sure ``target/manifest.json`` describes the project as it is on disk.

    Parsed when missing or older than a project file, so a fresh clone (tests, the CLI, the daemon)
    and ``dagster dev`` after an edit both load current definitions. dagster-dbt's own
    ``prepare_if_dev`` is not used: it runs ``dbt`` from PATH, which a venv that is not activated
    (``make test`` runs ``.venv/bin/python``) does not have.
    """
    if manifest_is_stale(project):
        parse_manifest(project)
    return project.manifest_path


def prune_run_artifacts(project: DbtProject, prefix: str, keep: int = RUN_ARTIFACTS_KEPT) -> None:
    """dagster-dbt gives every dbt invocation its own ``target/<op>-<run>-<id>`` directory
    (~1.5 MB); keep the newest few for debugging instead of one per run forever."""
    target = Path(project.project_dir) / project.target_path
    runs = sorted(
        (p for p in target.glob(f"{prefix}-*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in runs[keep:]:
        shutil.rmtree(old, ignore_errors=True)


class WarehouseDbtTranslator(DagsterDbtTranslator):
    """Maps each dbt source table to the asset that writes it; every dbt model joins one group."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            # source('mev', 'mempool_transactions') is the table the asset `mempool_transactions` writes
            return AssetKey(dbt_resource_props["name"])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return DBT_GROUP


class DailyRollupConfig(Config):
    """Launch config of the dbt run."""

    full_refresh: bool = False
    """Rebuild every date from the per-window tables still retained, instead of the latest days."""


class RollupsDbtResource(DbtCliResource):
    """dbt's CLI resource plus where the rollups go after ``dbt build``: the dbt DuckDB file they
    are read from and the lake they are exported to (the values of Settings)."""

    duckdb_path: str = ""
    lake_dir: str = ""
    storage: str = "local"
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"

    def lake(self) -> Lake:
        return open_lake(
            SimpleNamespace(
                lake_dir=self.lake_dir, storage=self.storage, s3_bucket=self.s3_bucket, s3_prefix=self.s3_prefix,
                s3_endpoint_url=self.s3_endpoint_url, s3_region=self.s3_region,
            )
        )


def dbt_duckdb_path(settings: Settings) -> Path:
    """The DuckDB file dbt builds in (profiles.yml): the warehouse locally; in S3 mode a local file
    of its own that holds the rollups (the per-window tables are in the lake on S3)."""
    return settings.duckdb_path if settings.storage == "local" else settings.mev_home / "rollups.duckdb"


@dbt_assets(
    manifest=prepare_manifest(),
    project=dbt_project,
    dagster_dbt_translator=WarehouseDbtTranslator(),
    # dbt writes the same DuckDB file as the per-window assets, and DuckDB allows one writer.
    pool=DUCKDB_POOL,
)
def daily_rollups(
    context: AssetExecutionContext, dbt: RollupsDbtResource, clickhouse: ClickHouseResource, config: DailyRollupConfig
):
    """Staging views and daily rollups built by ``dbt build`` (models, then their tests); then
    the rebuilt days of each rollup exported to the lake (one file per day, for ``mev-assets sql``)
    and, with a ClickHouse server, loaded into its rollup tables (one idempotent load per day)."""
    prune_run_artifacts(dbt_project, context.op_execution_context.op.name)
    args = ["build"] + (["--full-refresh"] if config.full_refresh else [])
    yield from dbt.cli(args, context=context).stream()

    lake = dbt.lake()
    export = export_rollups(dbt.duckdb_path, lake)
    for model, frames in export.frames.items():
        loaded = (
            {day: clickhouse.load_day(model, day, frame) for day, frame in frames.items()} if clickhouse.is_server else None
        )
        metadata = {
            "lake_days_exported": MetadataValue.json(export.days[model]),
            "lake_rows_exported": export.rows[model],
            "lake_location": f"{lake.url_of(lake.base)}/{model}/",
            "rebuilt_since": export.since or "(full build)",
        }
        if loaded is not None:
            metadata["clickhouse_rows_loaded"] = sum(loaded.values())
        context.log.info(f"{model}: {len(export.days[model])} day(s) exported to the lake {export.days[model]}")
        yield AssetObservation(asset_key=AssetKey(model), metadata=metadata)


def build_dbt_resource(settings: Settings) -> RollupsDbtResource:
    """The dbt CLI resource, pointed at the warehouse of ``settings`` (target ``local`` or ``s3``).

    profiles.yml reads ``MEV_HOME`` from the environment that dbt's subprocess inherits, so it is
    exported here; otherwise a default ``MEV_HOME`` (the working directory's ``.mev_home``) and
    dbt's own default could name different warehouses. In S3 mode the lake plugin reads the
    bucket from the same environment (``MEV_S3_*``).
    """
    os.environ["MEV_HOME"] = str(settings.mev_home)
    return RollupsDbtResource(
        project_dir=dbt_project,
        dbt_executable=DBT_EXECUTABLE,
        target=settings.storage,
        duckdb_path=str(dbt_duckdb_path(settings)),
        lake_dir=str(settings.lake_dir),
        storage=settings.storage,
        s3_bucket=settings.s3_bucket,
        s3_prefix=settings.s3_prefix,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
    )


DBT_ASSETS = [daily_rollups]
