"""Backfill of one mainnet-scale day through Dagster, against one-window-per-run measured in the same run.

    .venv/bin/python benchmarks/bench_backfill.py [--txs 1500000] [--windows 1440] [--baseline-windows 20]
                                                  [--windows-per-run 60] [--daemon-runs 2] [--skip-daemon] [--keep DIR]

Workload (generated, in a fresh MEV_HOME): ``--windows`` sealed 60 s windows of one UTC day holding
``--txs`` transactions in all (a diurnal curve, ~1,040 per window at the defaults): calldata from the
mainnet-like mix of ``bench_features.py`` (transfers, ERC-20, Uniswap V2/V3/Universal Router swaps,
1inch, 0x, Balancer, Curve, unknown selectors), 60 k senders with consecutive nonces, EIP-1559 fees
around the heads' base fee, ``hash = keccak(raw_tx)``; two collectors (one sees every transaction,
the other 60 %, later) and a sourcelog with 1-3 sources per transaction; a head every 12 s.

Phases, each in its own process on the same Dagster instance and DuckDB warehouse (local mode):

* ``baseline``: the first ``--baseline-windows`` windows, one run per window (what the sensor does for
  a live window): seconds per window, extrapolated to the day.
* ``backfill``: the whole day through ``mempool_window_job`` (every per-window asset and all their
  asset checks), ``--windows-per-run`` windows per run, in process (``mev-assets materialize``'s path).
* ``derived``: the whole day through ``derived_windows_job`` (what the previous-day schedule runs).
* check overhead: the same windows with and without the asset checks - one window per run on the
  baseline windows (``baseline`` vs ``baseline_nochecks``), and in runs of ``--windows-per-run`` on
  ``--check-windows`` windows from mid-day (``range_checks`` vs ``range_nochecks``).
* ``daemon`` (unless ``--skip-daemon``): Dagster's own asset backfill of the whole day - the
  backfill daemon plans runs by the assets' backfill policy and the run queue launches
  ``--daemon-runs`` concurrent run processes that share the DuckDB ``duckdb_writer`` pool. Reports
  the runs, failures and any DuckDB lock error found in the runs' event logs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

DAY_START_MS = 1_746_057_600_000  # 2025-05-01T00:00:00Z
WINDOW_SECONDS = 60
SOURCES = ["local", "alchemy", "bloxroute"]
GWEI = 10**9
LOCK_NEEDLES = ("could not set lock", "conflicting lock", "database is locked")


def bench_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEV_") and k != "DAGSTER_HOME"}
    env.update({"MEV_HOME": str(home), "MEV_WINDOW_SECONDS": str(WINDOW_SECONDS), "MEV_CHAIN_ID": "1",
                "MEV_GRACE_SECONDS": "0"})
    return env


# ---- the generated day ---------------------------------------------------------------------------
def calldata_pool(n: int, seed: int) -> pl.DataFrame:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_features import Mix

    from mev_assets.core.registry import load_registry
    from mev_assets.settings import Settings

    registry = load_registry(Settings.from_env().protocol_registry)
    return Mix(registry, seed).build(n).select("to", "value", "input")


def generate_day(home: Path, txs: int, windows: int, seed: int = 11) -> dict:
    """Write the day's sealed landing segments into ``home``'s landing zone."""
    from eth_utils import keccak

    from mev_assets.core.schemas import BLOCKS_SCHEMA, LANDING_TX_SCHEMA, SOURCELOG_SCHEMA
    from mev_assets.core.windows import key_for_start_ms
    from mev_assets.ingest.landing import LandingZone

    started = time.monotonic()
    rng = np.random.default_rng(seed)
    # a diurnal curve: the busiest hour about twice the quietest
    phase = np.linspace(0, 2 * np.pi, windows, endpoint=False)
    counts = rng.multinomial(txs, (1 + 0.35 * np.sin(phase - 1.2)) / (1 + 0.35 * np.sin(phase - 1.2)).sum())
    window_of = np.repeat(np.arange(windows), counts)
    ts = DAY_START_MS + window_of * WINDOW_SECONDS * 1000 + rng.integers(0, WINDOW_SECONDS * 1000, txs)
    order = np.argsort(ts, kind="stable")
    ts, window_of = ts[order], window_of[order]

    pool = calldata_pool(20_000, seed)
    pick = rng.integers(0, pool.height, txs)
    senders = np.array(["0x" + rng.bytes(20).hex() for _ in range(60_000)])
    frame = pool[pick].with_columns(
        timestamp_ms=pl.Series(ts),
        _window=pl.Series(window_of),
        **{"from": pl.Series(senders[rng.zipf(1.3, txs) % len(senders)])},
        salt=pl.Series([rng.bytes(24).hex() for _ in range(txs)]),
        tip=pl.Series((np.exp(rng.normal(-1.0, 1.2, txs)) * GWEI).astype(np.int64)),
    ).with_columns(
        nonce=pl.int_range(pl.len()).over("from").cast(pl.UInt64),
        raw_tx=pl.concat_str(pl.lit("0x02f9"), pl.col("salt"), pl.col("input").str.slice(2)),
        data_size=((pl.col("input").str.len_bytes() - 2) // 2).cast(pl.Int64),
    )
    raws = frame.get_column("raw_tx").to_list()
    hashes = ["0x" + keccak(bytes.fromhex(r[2:])).hex() for r in raws]
    frame = frame.with_columns(
        hash=pl.Series(hashes),
        chain_id=pl.lit(1, pl.Int64),
        tx_type=pl.lit(2, pl.Int64),
        gas=pl.when(pl.col("data_size") == 0).then(21_000).otherwise(90_000 + pl.col("data_size") * 120).cast(pl.UInt64),
        gas_price=(pl.col("tip") + 40 * GWEI).cast(pl.String),
        gas_tip_cap=pl.col("tip").cast(pl.String),
        gas_fee_cap=(pl.col("tip") + 40 * GWEI).cast(pl.String),
        data_4bytes=pl.when(pl.col("data_size") >= 4).then(pl.col("input").str.slice(0, 10)).otherwise(pl.lit("")),
    )
    seen_by_second = pl.Series(rng.random(txs) < 0.6)
    extra_source = pl.Series(rng.random(txs) < 0.3)
    delay = pl.Series(rng.integers(5, 400, txs))
    frame = frame.with_columns(_second=seen_by_second, _extra=extra_source, _delay=delay)

    zone = LandingZone(home / "landing")
    keys = [key_for_start_ms(DAY_START_MS + i * WINDOW_SECONDS * 1000) for i in range(windows)]
    head_every_ms = 12_000
    head_ts = np.arange(DAY_START_MS, DAY_START_MS + windows * WINDOW_SECONDS * 1000, head_every_ms)
    base_fee = (20 * GWEI * np.exp(np.cumsum(rng.normal(0, 0.02, len(head_ts))))).astype(np.int64)
    heads = pl.DataFrame({
        "received_ms": head_ts + 300, "number": np.arange(len(head_ts)) + 22_000_000,
        "hash": ["0x" + rng.bytes(32).hex() for _ in head_ts], "parent_hash": ["0x" + "00" * 32] * len(head_ts),
        "timestamp": head_ts // 1000, "base_fee_per_gas": base_fee.astype(str), "gas_used": [15_000_000] * len(head_ts),
        "gas_limit": [36_000_000] * len(head_ts), "tx_hashes": [[] for _ in head_ts], "source": ["local"] * len(head_ts),
        "collector_id": ["c1"] * len(head_ts),
    }, schema=BLOCKS_SCHEMA).with_columns(_window=(pl.col("received_ms") - DAY_START_MS) // (WINDOW_SECONDS * 1000))
    by_window = frame.partition_by("_window", as_dict=True)
    heads_by_window = heads.partition_by("_window", as_dict=True)
    landing_cols = list(LANDING_TX_SCHEMA)
    for i, key in enumerate(keys):
        part = by_window.get((i,), frame.clear())
        first = part.with_columns(source=pl.lit("local"), collector_id=pl.lit("c1"))
        second = part.filter("_second").with_columns(
            (pl.col("timestamp_ms") + pl.col("_delay")).alias("timestamp_ms"),
            source=pl.lit("alchemy"), collector_id=pl.lit("c2"))
        zone.write_segment("mempool", key, "c1", 1, first.select(landing_cols).cast(LANDING_TX_SCHEMA))
        zone.write_segment("mempool", key, "c2", 1, second.select(landing_cols).cast(LANDING_TX_SCHEMA))
        extra = part.filter("_extra").select(
            (pl.col("timestamp_ms") + pl.col("_delay") // 2).alias("timestamp_ms"), "hash",
            source=pl.lit("bloxroute"), collector_id=pl.lit("c1"))
        zone.write_segment("sourcelog", key, "c1", 1, pl.concat([
            first.select("timestamp_ms", "hash", "source", "collector_id"), extra]).cast(SOURCELOG_SCHEMA))
        zone.write_segment("sourcelog", key, "c2", 1, second.select("timestamp_ms", "hash", "source", "collector_id")
                           .cast(SOURCELOG_SCHEMA))
        block_part = heads_by_window.get((i,))
        if block_part is not None:
            zone.write_segment("blocks", key, "c1", 1, block_part.drop("_window"))
        zone.mark_sealed(key, "c1")
        zone.mark_sealed(key, "c2")
    size = sum(p.stat().st_size for p in (home / "landing").rglob("*") if p.is_file())
    return {"windows": windows, "txs": txs, "landing_rows": int(txs + seen_by_second.sum()),
            "landing_mib": round(size / 2**20, 1), "seconds": round(time.monotonic() - started, 1), "keys": keys}


# ---- phases (each in its own process) ------------------------------------------------------------
def _instance_and_defs(home: Path):
    from dagster import DagsterInstance

    from mev_assets.definitions import build_definitions
    from mev_assets.settings import Settings, ensure_dagster_home

    settings = Settings.from_env()
    ensure_dagster_home(settings)
    return DagsterInstance.get(), build_definitions(settings)


def phase_runs(phase: str, keys: list[str], per_run: int) -> dict:
    from mev_assets.core.backfill import contiguous_chunks
    from mev_assets.lane import execute_windows
    from mev_assets.partitions import MEMPOOL_WINDOWS

    instance, defs = _instance_and_defs(Path(os.environ["MEV_HOME"]))
    known = set(instance.get_dynamic_partitions(MEMPOOL_WINDOWS))
    instance.add_dynamic_partitions(MEMPOOL_WINDOWS, [k for k in keys if k not in known])
    job = "derived_windows_job" if phase == "derived" else "mempool_window_job"
    if phase.endswith("_nochecks"):
        from dagster import AssetSelection, Definitions, define_asset_job

        from mev_assets.assets import PER_WINDOW_ASSETS
        from mev_assets.partitions import mempool_windows

        job = "assets_only_job"
        selection = AssetSelection.assets(*PER_WINDOW_ASSETS).without_checks()
        defs = Definitions.merge(defs, Definitions(jobs=[define_asset_job(job, selection, partitions_def=mempool_windows)]))
    chunks = contiguous_chunks(instance.get_dynamic_partitions(MEMPOOL_WINDOWS), keys, per_run)
    started = time.monotonic()
    runs = [execute_windows(defs, instance, chunk, tags={"mev/bench": phase}, job_name=job) for chunk in chunks]
    seconds = time.monotonic() - started
    failed = [r.run_id for r in runs if not r.success]
    return {"phase": phase, "windows": len(keys), "runs": len(runs), "failed_runs": len(failed),
            "lock_errors": sum(_lock_errors(instance, run_id) for run_id in failed),
            "seconds": round(seconds, 1), "per_window_s": round(seconds / len(keys), 3),
            "slowest_run_s": round(max(r.seconds for r in runs), 1)}


def _lock_errors(instance, run_id: str) -> int:
    found = 0
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.is_failure:
            text = json.dumps(str(event.event_specific_data)).lower()
            found += any(needle in text for needle in LOCK_NEEDLES)
    return found


def phase_daemon(keys: list[str], concurrent_runs: int, timeout_s: float) -> dict:
    """Dagster's own asset backfill, processed by a real ``dagster-daemon`` with a run queue."""
    from dagster import AssetSelection
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.utils import make_new_backfill_id
    from dagster._time import get_current_timestamp

    from mev_assets.assets import PER_WINDOW_ASSETS

    home = Path(os.environ["MEV_HOME"])
    instance, defs = _instance_and_defs(home)
    config = Path(instance.root_directory) / "dagster.yaml"
    text = config.read_text()
    if "  runs:" not in text:  # the run queue's limit lives next to the DuckDB pool's
        config.write_text(text.replace("concurrency:\n", f"concurrency:\n  runs:\n    max_concurrent_runs: {concurrent_runs}\n", 1))
    instance = type(instance).get()  # re-read the instance config with the run limit
    workspace = home / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - python_module:\n      module_name: mev_assets.definitions\n"
                         f"      working_directory: {ROOT}\n")
    asset_keys = list(AssetSelection.assets(*PER_WINDOW_ASSETS).resolve(defs.resolve_asset_graph()))
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(), asset_graph=defs.resolve_asset_graph(), partition_names=keys,
        asset_selection=asset_keys, backfill_timestamp=get_current_timestamp(), tags={"mev/bench": "daemon"},
        dynamic_partitions_store=instance, all_partitions=False, title="bench: one day", description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)
    started = time.monotonic()
    daemon = subprocess.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(workspace)],
                              stdout=subprocess.DEVNULL, stderr=open(home / "daemon.log", "w"), env=os.environ.copy())
    try:
        status = None
        while time.monotonic() - started < timeout_s:
            status = instance.get_backfill(backfill.backfill_id).status
            if status not in (BulkActionStatus.REQUESTED,):
                break
            time.sleep(5)  # polling an external process's progress, not synchronising a test
        seconds = time.monotonic() - started
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
    from dagster import RunsFilter

    runs = instance.get_runs(filters=RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    failed = [r for r in runs if r.status.value != "SUCCESS"]
    return {"phase": "daemon", "windows": len(keys), "status": str(status), "runs": len(runs),
            "failed_runs": len(failed), "lock_errors": sum(_lock_errors(instance, r.run_id) for r in runs),
            "concurrent_runs": concurrent_runs, "seconds": round(seconds, 1),
            "per_window_s": round(seconds / len(keys), 3)}


def child(args) -> None:
    keys = json.loads(Path(args.keys_file).read_text())
    if args.phase == "daemon":
        result = phase_daemon(keys, args.daemon_runs, args.daemon_timeout)
    else:
        result = phase_runs(args.phase, keys, 1 if args.phase.startswith("baseline") else args.windows_per_run)
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(result), flush=True)


def run_phase(phase: str, keys: list[str], home: Path, args) -> dict:
    keys_file = home / f"keys-{phase}.json"
    keys_file.write_text(json.dumps(keys))
    cmd = [sys.executable, __file__, "--child", phase, "--keys-file", str(keys_file),
           "--windows-per-run", str(args.windows_per_run), "--daemon-runs", str(args.daemon_runs),
           "--daemon-timeout", str(args.daemon_timeout)]
    done = subprocess.run(cmd, env=bench_env(home), capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"phase {phase} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--txs", type=int, default=1_500_000)
    parser.add_argument("--windows", type=int, default=1440)
    parser.add_argument("--baseline-windows", type=int, default=20)
    parser.add_argument("--windows-per-run", type=int, default=60)
    parser.add_argument("--daemon-runs", type=int, default=2)
    parser.add_argument("--daemon-timeout", type=float, default=3600)
    parser.add_argument("--check-windows", type=int, default=240)
    parser.add_argument("--skip-daemon", action="store_true")
    parser.add_argument("--phases", default="day,checks,daemon",
                        help="Comma list of: day (baseline, backfill, derived), checks, daemon.")
    parser.add_argument("--keep", type=Path, default=None, help="Keep the generated home here.")
    parser.add_argument("--child", dest="phase", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--keys-file", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child(args)
        return 0

    phases = set(args.phases.split(",")) - ({"daemon"} if args.skip_daemon else set())
    home = args.keep or Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(bench_env(home))
    try:
        if (home / "landing").exists():  # --keep DIR of an earlier run: the same day again
            from mev_assets.ingest.landing import LandingZone

            keys = LandingZone(home / "landing").windows("mempool")
            print(f"day: the {len(keys)} windows already in {home}")
        else:
            day = generate_day(home, args.txs, args.windows)
            keys = day.pop("keys")
            print(f"day: {day['txs']:,} transactions in {day['windows']} windows ({day['landing_rows']:,} landing rows, "
                  f"{day['landing_mib']} MiB of segments), generated in {day['seconds']} s")
        results = []
        base = run_phase("baseline", keys[: args.baseline_windows], home, args)
        results.append(base)
        if "day" in phases:
            full = run_phase("backfill", keys, home, args)
            derived = run_phase("derived", keys, home, args)
            results += [full, derived]
        if "checks" in phases:
            middle = keys[len(keys) // 2 - args.check_windows // 2:][: args.check_windows]
            results += [run_phase("baseline_nochecks", keys[: args.baseline_windows], home, args),
                        run_phase("range_checks", middle, home, args), run_phase("range_nochecks", middle, home, args)]
        if "daemon" in phases:
            results.append(run_phase("daemon", keys, home, args))
        print(f"{'phase':<18} {'windows':>7} {'runs':>5} {'failed':>6} {'locks':>5} {'wall s':>8} {'s/window':>9} "
              f"{'peak MiB':>8}  vs baseline")
        for r in results:
            ratio = base["per_window_s"] / r["per_window_s"] if r["per_window_s"] else float("nan")
            print(f"{r['phase']:<18} {r['windows']:>7} {r['runs']:>5} {r['failed_runs']:>6} {r['lock_errors']:>5} "
                  f"{r['seconds']:>8.1f} {r['per_window_s']:>9.3f} {r['peak_rss_mib']:>8}  {ratio:.1f}x")
        by_phase = {r["phase"]: r for r in results}
        print(f"one run per window (baseline) extrapolated to {len(keys)} windows: "
              f"{base['per_window_s'] * len(keys) / 60:.1f} min")
        if "day" in phases:
            print(f"backfill of the day: {by_phase['backfill']['seconds'] / 60:.1f} min; "
                  f"derived assets only: {by_phase['derived']['seconds'] / 60:.1f} min")
        if "checks" in phases:
            one = base["per_window_s"] - by_phase["baseline_nochecks"]["per_window_s"]
            ranged = by_phase["range_checks"]["per_window_s"] - by_phase["range_nochecks"]["per_window_s"]
            print(f"asset checks per window: {one:.3f} s in one-window runs, {ranged:.3f} s in runs of "
                  f"{args.windows_per_run} windows ({ranged / by_phase['range_nochecks']['per_window_s']:.0%} "
                  "of the assets' own time)")
        if "daemon" in phases:
            d = by_phase["daemon"]
            print(f"daemon asset backfill: {d['status']}, {d['runs']} runs, {d['concurrent_runs']} at a time, "
                  f"{d['failed_runs']} failed, {d['lock_errors']} DuckDB lock error(s), {d['seconds'] / 60:.1f} min")
        return 1 if any(r["failed_runs"] or r["lock_errors"] for r in results) else 0
    finally:
        if args.keep is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
