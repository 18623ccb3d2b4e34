"""``mev-assets``: the command-line entry point.

Every command reads its settings from the environment (docs/configuration.md). Errors are one
clear line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from mev_assets.settings import Settings, SettingsError, ensure_dagster_home


class CliError(click.ClickException):
    """One line on stderr, exit code 1."""

    def show(self, file=None) -> None:  # noqa: ARG002 - click's signature
        click.echo(f"error: {self.format_message()}", err=True)


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise CliError(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mev_assets")
def main() -> None:
    """Ethereum mempool and MEV research pipeline (Dagster assets over a durable landing zone)."""


@main.command()
def collect() -> None:
    """Run the collector: subscribe to MEV_SOURCES and write the landing zone until stopped."""
    from mev_assets.ingest.collector import run_collector

    sys.exit(run_collector(_settings()))


@main.group(name="import")
def import_group() -> None:
    """Write landing segments from captured data, through the collector's own path."""


@import_group.command(name="raw")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--collector-id", default=None, help="Writer id for the segments (default: import-<file stem>).")
def import_raw(files: tuple[Path, ...], collector_id: str | None) -> None:
    """Import JSON lines {"timestamp_ms": ..., "raw": "0x...", "source": ...} as landing segments."""
    from mev_assets.ingest.landing import LandingZone
    from mev_assets.ingest.raw_import import import_raw_lines

    settings = _settings()
    zone = LandingZone.from_settings(settings)
    for path in files:
        if not path.is_file():
            raise CliError(f"no such file: {path}")
        kwargs = {"collector_id": collector_id} if collector_id else {}
        report = import_raw_lines(path, zone, settings, **kwargs)
        click.echo(f"{path}: {report.summary()}")


@import_group.command(name="mempool-dumpster")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--sourcelog", "sourcelogs", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="mempool-dumpster sourcelog CSV (timestamp_ms,hash,source); repeatable.")
@click.option("--collector-id", default=None, help="Writer id for the segments (default: dumpster-<file stem>).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr (TTY only).")
def import_dumpster_cmd(files: tuple[Path, ...], sourcelogs: tuple[Path, ...], collector_id: str | None, progress: bool) -> None:
    """Import mempool-dumpster daily transaction files (Parquet with rawTx, or CSV) as landing segments."""
    settings = _settings()
    from mev_assets.ingest.dumpster_import import import_dumpster
    from mev_assets.ingest.landing import LandingZone

    for path in (*files, *sourcelogs):
        if not path.is_file():
            raise CliError(f"no such file: {path}")
    kwargs = {"collector_id": collector_id} if collector_id else {}
    try:
        report = import_dumpster(list(files), LandingZone.from_settings(settings), settings,
                                 sourcelog_paths=list(sourcelogs), progress=progress, **kwargs)
    except (ValueError, OSError) as exc:
        raise CliError(str(exc).splitlines()[0]) from None
    click.echo(report.summary())


@main.command()
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
def sql(query: str, fmt: str) -> None:
    """ClickHouse SQL over every table the pipeline produced (in-process chdb, or MEV_CLICKHOUSE_URL)."""
    settings = _settings()
    from mev_assets.sql_command import SqlError, run_sql

    try:
        click.echo(run_sql(settings, query, fmt))
    except SqlError as exc:
        raise CliError(str(exc)) from None


@main.command()
@click.option("--from", "from_key", default=None, help="First window key (YYYY-MM-DDTHH:MM:SS), inclusive.")
@click.option("--to", "to_key", default=None, help="Last window key, inclusive.")
@click.option("--select", "selection", default=None, help="Dagster asset selection, e.g. 'tx_features'.")
@click.option("--windows-per-run", default=None, type=click.IntRange(min=1),
              help="Windows per run (default: the assets' backfill policy, 60).")
def materialize(from_key: str | None, to_key: str | None, selection: str | None, windows_per_run: int | None) -> None:
    """Register the landing zone's ready windows and materialise them on the configured instance,
    many windows per run (a backfill), in registration order."""
    settings = _settings()  # before importing the definitions, which read the settings too
    from dagster import DagsterInstance

    from mev_assets.core.backfill import DEFAULT_WINDOWS_PER_RUN, contiguous_chunks
    from mev_assets.core.windows import WindowKeyError, validate_key
    from mev_assets.definitions import build_definitions
    from mev_assets.ingest.landing import LandingZone, now_ms
    from mev_assets.lane import LaneError, execute_windows, resolve_selection
    from mev_assets.partitions import MEMPOOL_WINDOWS

    try:
        for key in (from_key, to_key):
            if key:
                validate_key(key, settings.window_seconds)
    except WindowKeyError as exc:
        raise CliError(str(exc)) from None
    if from_key and to_key and from_key > to_key:
        raise CliError(f"--from {from_key} is after --to {to_key}")
    ensure_dagster_home(settings)
    defs = build_definitions(settings)
    try:
        asset_keys = resolve_selection(defs, selection)
    except LaneError as exc:
        raise CliError(str(exc)) from None
    zone = LandingZone.from_settings(settings)
    ready = zone.ready_windows(now_ms(), settings.window_seconds, settings.grace_seconds)
    keys = [k for k in ready if (not from_key or k >= from_key) and (not to_key or k <= to_key)]
    if not keys:
        click.echo(f"no ready window in {zone.location} between {from_key or 'the start'} and {to_key or 'now'}")
        return
    instance = DagsterInstance.get()
    known = set(instance.get_dynamic_partitions(MEMPOOL_WINDOWS))
    new = [k for k in keys if k not in known]
    if new:
        instance.add_dynamic_partitions(MEMPOOL_WINDOWS, new)
    chunks = contiguous_chunks(instance.get_dynamic_partitions(MEMPOOL_WINDOWS), keys, windows_per_run or DEFAULT_WINDOWS_PER_RUN)
    click.echo(f"materialising {len(keys)} window(s) ({len(new)} newly registered) in {len(chunks)} run(s) "
               f"on {settings.dagster_home}")
    failed: list[str] = []
    started = time.monotonic()
    for chunk in chunks:
        run = execute_windows(defs, instance, chunk, tags={"mev/trigger": "cli"}, asset_keys=asset_keys)
        span = chunk[0] if len(chunk) == 1 else f"{chunk[0]} .. {chunk[-1]} ({len(chunk)} windows)"
        click.echo(f"  {span}  {'ok    ' if run.success else 'FAILED'}  run {run.run_id[:8]}  {run.seconds:.1f}s")
        if not run.success:
            failed += chunk
    click.echo(f"{len(keys) - len(failed)}/{len(keys)} window(s) materialised in {time.monotonic() - started:.1f}s")
    if failed:
        raise CliError(f"{len(failed)} window(s) failed: {', '.join(failed[:10])}{' ...' if len(failed) > 10 else ''} "
                       "(see the runs in the Dagster UI)")


@main.command()
@click.option("--from", "from_key", required=True, help="First window key (YYYY-MM-DDTHH:MM:SS), inclusive.")
@click.option("--to", "to_key", required=True, help="Last window key, inclusive.")
def replay(from_key: str, to_key: str) -> None:
    """Rebuild a range of windows from the landing zone and check each one's content hash."""
    settings = _settings()  # before importing the definitions, which read the settings too
    from dagster import DagsterInstance

    from mev_assets.core.windows import WindowKeyError, validate_key
    from mev_assets.definitions import build_definitions
    from mev_assets.ops_jobs import replay_windows

    try:
        for key in (from_key, to_key):
            validate_key(key, settings.window_seconds)
    except WindowKeyError as exc:
        raise CliError(str(exc)) from None
    if from_key > to_key:
        raise CliError(f"--from {from_key} is after --to {to_key}")
    ensure_dagster_home(settings)
    report = replay_windows(build_definitions(settings), DagsterInstance.get(), from_key, to_key, settings)
    summary = report.summary()
    click.echo(
        f"replayed {summary['windows']} window(s) {from_key} .. {to_key}: {summary['matched']} identical, "
        f"{len(summary['first_builds'])} first build(s), {len(summary['mismatched'])} different"
    )
    for window, columns in summary["mismatched"].items():
        click.echo(f"  {window}: {', '.join(map(str, columns))}")
    if not report.parity:
        raise CliError("replay parity failed: some rebuilt windows differ from their previous materialisation")


@main.command()
@click.option("--windows", default=3, show_default=True, help="Closed windows to process before stopping.")
@click.option("--window-seconds", default=15, show_default=True, help="Window width for the demo.")
@click.option("--rate", default=None, type=float, help="Traffic rate in tx/s (default MEV_TRAFFIC_RATE).")
def demo(windows: int, window_seconds: int, rate: float | None) -> None:
    """Local chain + traffic + collector + sensor-driven runs on the real instance, then a summary."""
    from mev_assets.demo import run_demo

    sys.exit(run_demo(_settings(), windows=windows, window_seconds=window_seconds, rate=rate))


@main.command()
@click.option("--window-seconds", default=15, show_default=True, help="Window width for the live lane.")
@click.option("--port", default=3000, show_default=True, help="Dagster UI port.")
def dev(window_seconds: int, port: int) -> None:
    """The live lane with the Dagster UI: devnet, traffic, collector, `dagster dev` with the sensor on."""
    from mev_assets.demo import run_dev

    sys.exit(run_dev(_settings(), window_seconds=window_seconds, port=port))


def _mount_devnet() -> None:
    from mev_assets.devnet.cli import devnet

    main.add_command(devnet, name="devnet")


_mount_devnet()

if __name__ == "__main__":
    main()
