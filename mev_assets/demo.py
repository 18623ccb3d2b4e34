"""``make demo`` and ``make dev``: the whole lane on a local chain, from one command.

The demo starts the devnet (anvil with traffic and the searcher), a collector process on two
connections to the node, and drives ``mempool_window_sensor`` against the real Dagster instance
until enough closed windows are processed; then it stops every process and prints a summary read
back from the warehouse. ``make dev`` starts the same processes plus ``dagster dev`` with the
sensor on, and runs until Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import duckdb
import polars as pl

from mev_assets.core.selectors import describe_selector
from mev_assets.core.windows import key_start_ms
from mev_assets.devnet.anvil import DEVNET_CHAIN_ID, free_port
from mev_assets.ingest.landing import LandingZone, now_ms
from mev_assets.settings import PROJECT_ROOT, Settings, ensure_dagster_home

DEMO_COLLECTOR_ID = "demo-collector"
DEMO_SOURCES = ("node-a", "node-b")


class DemoError(RuntimeError):
    pass


def _say(text: str = "") -> None:
    print(text, flush=True)


def lane_settings(settings: Settings, window_seconds: int) -> Settings:
    """The devnet lane: chain 31337 and a short window, whatever the environment says."""
    return replace(settings, window_seconds=window_seconds, chain_id=DEVNET_CHAIN_ID)


def lane_env(settings: Settings, ws_url: str, metrics_port: int) -> dict[str, str]:
    """Environment of the lane's child processes (collector, dagster dev)."""
    return {
        **os.environ,
        "MEV_HOME": str(settings.mev_home),
        "DAGSTER_HOME": str(settings.dagster_home),
        "MEV_WINDOW_SECONDS": str(settings.window_seconds),
        "MEV_CHAIN_ID": str(settings.chain_id),
        "MEV_SOURCES": ",".join(f"{name}={ws_url}" for name in DEMO_SOURCES),
        "MEV_COLLECTOR_ID": DEMO_COLLECTOR_ID,
        "MEV_METRICS_PORT": str(metrics_port),
        "PYTHONUNBUFFERED": "1",
    }


def start_collector(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mev_assets.ingest.collector"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen | None, timeout: float = 30.0) -> int | None:
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def run_demo(settings: Settings, windows: int = 3, window_seconds: int = 15, rate: float | None = None) -> int:
    from dagster import DagsterInstance

    from mev_assets.definitions import build_definitions
    from mev_assets.devnet.runner import start_devnet
    from mev_assets.lane import run_sensor_requests, sensor_tick

    warnings.filterwarnings("ignore")
    settings = lane_settings(settings, window_seconds)
    ensure_dagster_home(settings)
    logs = settings.mev_home / "logs"
    _say(f"mev_assets demo: MEV_HOME={settings.mev_home}, {window_seconds}-second windows, chain {settings.chain_id}")
    _say("starting the devnet (anvil, Uniswap V2 and tokens at mainnet addresses, traffic, searcher) ...")
    devnet = start_devnet(settings, block_time=12, rate=rate)
    collector = None
    processed: list[str] = []
    try:
        metrics_port = free_port()
        env = lane_env(settings, devnet.ws_url, metrics_port)
        collector = start_collector(env, logs / "collector.log")
        started = now_ms()
        _say(
            f"node {devnet.ws_url}; collector {DEMO_COLLECTOR_ID} on sources {', '.join(DEMO_SOURCES)} "
            f"(metrics http://127.0.0.1:{metrics_port}/metrics, log {logs / 'collector.log'})"
        )
        defs = build_definitions(settings)
        instance = DagsterInstance.get()
        _say(f"Dagster instance {settings.dagster_home}; waiting for {windows} full window(s) to close ...")
        cursor = None
        deadline = time.monotonic() + (windows + 2) * window_seconds + settings.grace_seconds + 180
        full = 0
        while full < windows:
            if collector.poll() is not None:
                raise DemoError(f"the collector exited with code {collector.returncode}; see {logs / 'collector.log'}")
            if time.monotonic() > deadline:
                raise DemoError(f"only {full} of {windows} windows were processed in time; see {logs}")
            requests, cursor = sensor_tick(defs, instance, cursor)
            for run in run_sensor_requests(defs, instance, requests):
                if key_start_ms(run.window) + window_seconds * 1000 <= started:
                    continue  # a window from an earlier session, processed now: not part of this demo
                state = "ok" if run.success else "FAILED"
                _say(f"  window {run.window}  run {run.run_id[:8]}  {state}  ({run.seconds:.1f}s)")
                if not run.success:
                    raise DemoError(f"run {run.run_id} for window {run.window} failed; inspect it with `make dev`")
                processed.append(run.window)
                if key_start_ms(run.window) >= started:
                    full += 1
            time.sleep(1.0)  # the driver's polling interval, as the daemon's sensor interval
    finally:
        _say("stopping traffic, collector and node ...")
        devnet.stop_event.set()
        code = stop_process(collector)
        devnet.stop()
        if code not in (0, None):
            _say(f"warning: the collector exited with code {code}; see {logs / 'collector.log'}")
    print_summary(settings, sorted(set(processed)), devnet.labels_path)
    return 0


def _table(frame: pl.DataFrame) -> str:
    with pl.Config(tbl_rows=50, tbl_cols=20, tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True, fmt_str_lengths=60):
        return str(frame)


def print_summary(settings: Settings, windows: list[str], labels_path: Path | None = None) -> None:
    if not windows:
        _say("no window was processed")
        return
    in_list = ", ".join(f"'{w}'" for w in windows)
    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        per_window = con.sql(
            f"""select "window", count(*) as txs, count(distinct "from") as senders,
                       count(*) filter (where data_size > 0) as contract_calls
                from mev.mempool_transactions where "window" in ({in_list}) group by 1 order by 1"""
        ).pl()
        sources = con.sql(
            f"""select source, sum(txs_seen) as txs_seen,
                       round(sum(txs_seen) / (select count(*) from mev.mempool_transactions where "window" in ({in_list})), 4) as coverage,
                       round(sum(first_arrivals) / (select count(*) from mev.mempool_transactions where "window" in ({in_list})), 4) as first_arrival_share,
                       round(median(latency_p50_ms), 2) as latency_p50_ms, round(max(latency_p99_ms), 2) as latency_p99_ms,
                       max(latency_max_ms) as latency_max_ms
                from mev.mempool_source_stats where "window" in ({in_list}) group by 1 order by 1"""
        ).pl()
        selectors = con.sql(
            f"""select data_4bytes as selector, count(*) as txs
                from mev.mempool_transactions where "window" in ({in_list}) group by 1 order by 2 desc, 1 limit 10"""
        ).pl()
    total = int(per_window["txs"].sum()) if per_window.height else 0
    all_windows = pl.DataFrame({"window": windows})
    per_window = all_windows.join(per_window, on="window", how="left").fill_null(0)
    _say()
    _say(f"=== {len(windows)} window(s), {total} transactions ===")
    _say(_table(per_window))
    _say("\nper-source coverage and latency behind the first source:")
    _say(_table(sources) if sources.height else "  (no sightings)")
    _say("\ntop protocols by 4-byte selector:")
    if selectors.height:
        named = selectors.with_columns(
            pl.col("selector").map_elements(describe_selector, return_dtype=pl.String).alias("protocol: method"),
            (pl.col("txs") / max(total, 1) * 100).round(1).alias("share_%"),
        )
        _say(_table(named))
    zone = LandingZone.from_settings(settings)
    quarantine = pl.concat([zone.read_quarantine(w) for w in windows])
    _say("\nquarantined records:")
    if quarantine.height:
        reasons = quarantine.group_by("reason").agg(pl.len().alias("records")).sort("records", descending=True)
        _say(_table(reasons))
    else:
        _say("  none")
    if labels_path is not None and labels_path.is_file():
        import json

        labels = [json.loads(line) for line in labels_path.read_text().splitlines() if line.strip()]
        landed = sum(1 for lab in labels if lab.get("success"))
        _say(f"\nsearcher ground truth: {len(labels)} sandwich(es) labelled, {landed} landed (front-run, victim, back-run in one block, in order) ({labels_path})")
    _say(f"\nruns and partitions are in the Dagster instance {settings.dagster_home} (browse them with `make dev`)")


def run_dev(settings: Settings, window_seconds: int = 15, port: int = 3000) -> int:
    from mev_assets.devnet.runner import start_devnet

    settings = lane_settings(settings, window_seconds)
    ensure_dagster_home(settings)
    logs = settings.mev_home / "logs"
    devnet = start_devnet(settings, block_time=12)
    collector = dagster = None
    stop = {"now": False}

    def _stop(*_):
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        env = lane_env(settings, devnet.ws_url, settings.metrics_port)
        collector = start_collector(env, logs / "collector.log")
        dagster_bin = Path(sys.executable).with_name("dagster")
        dagster = subprocess.Popen(
            [str(dagster_bin), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
            env=env,
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )
        _say(f"live lane: node {devnet.ws_url}, collector log {logs / 'collector.log'}")
        _say(f"Dagster UI: http://127.0.0.1:{port} (sensor mempool_window_sensor is on); Ctrl-C stops everything")
        while not stop["now"]:
            for name, proc in (("collector", collector), ("dagster dev", dagster)):
                if proc.poll() is not None:
                    _say(f"{name} exited with code {proc.returncode}; stopping")
                    stop["now"] = True
            time.sleep(0.5)
    finally:
        _say("stopping ...")
        stop_process(dagster)
        stop_process(collector)
        devnet.stop()
    return 0
