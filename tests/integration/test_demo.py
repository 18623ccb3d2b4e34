"""`mev-assets demo` end to end: devnet, collector process, sensor-driven runs, summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import duckdb
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


def test_demo_processes_windows_through_the_instance_and_stops_everything(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "MEV_HOME": str(home), "DAGSTER_HOME": "", "MEV_GRACE_SECONDS": "20"}
    done = subprocess.run(
        [sys.executable, "-m", "mev_assets.cli", "demo", "--windows", "2", "--window-seconds", "5", "--rate", "6"],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    processed = re.findall(r"window (\S+)\s+run (\w+)\s+ok", out)
    assert len(processed) >= 2
    assert "per-source coverage and latency" in out and "top protocols by 4-byte selector" in out
    assert "node-a" in out and "node-b" in out
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        rows = con.sql('select count(*), count(distinct hash) from mev.mempool_transactions').fetchone()
        assert rows[0] > 0 and rows[0] == rows[1]
        both = con.sql("select count(*) from mev.mempool_transactions where len(sources) = 2").fetchone()[0]
        assert both > 0
    # every process stopped: the collector's final heartbeat says so, and nobody holds the WAL lock
    import json

    beat = json.loads((home / "landing" / "_collectors" / "demo-collector.json").read_text())
    assert beat["stopped"] is True
    # the runs are in the real instance under MEV_HOME/dagster
    assert (home / "dagster" / "history").exists() or (home / "dagster" / "storage").exists()
