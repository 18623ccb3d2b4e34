"""The `mev-assets` CLI as a user runs it: a subprocess, one-line errors, non-zero exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import duckdb
import pytest

from mev_assets.core.windows import key_for_start_ms, window_start_ms
from mev_assets.ingest.landing import LandingZone
from tests.landing_factory import write_window

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mev_assets.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=200,
    )


@pytest.fixture
def env(tmp_path):
    return {"MEV_HOME": str(tmp_path / "home"), "MEV_WINDOW_SECONDS": "60", "DAGSTER_HOME": ""}


@pytest.mark.parametrize(
    "args,env_extra,needle",
    [
        (["materialize", "--from", "yesterday"], {}, "not a window key"),
        (["materialize", "--from", "2024-05-05T12:00:30"], {}, "not aligned"),
        (["materialize", "--from", "2024-05-05T13:00:00", "--to", "2024-05-05T12:00:00"], {}, "is after"),
        (["materialize", "--select", "no_such_asset"], {}, "invalid --select"),
        (["materialize"], {"MEV_WINDOW_SECONDS": "seven"}, "MEV_WINDOW_SECONDS must be an integer"),
        (["import", "raw", "/nonexistent/capture.jsonl"], {}, "no such file"),
    ],
)
def test_errors_are_one_clear_line(env, args, env_extra, needle):
    done = cli({**env, **env_extra}, *args)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and needle in lines[0]


def test_materialize_registers_and_materialises_a_range(env, tmp_path):
    zone = LandingZone(tmp_path / "home" / "landing")
    start = window_start_ms(time.time_ns() // 1_000_000, 60) - 3_600_000
    keys = [key_for_start_ms(start + i * 60_000) for i in range(5)]
    for i, key in enumerate(keys):
        write_window(zone, key, i + 1, offset=10 * i)
    done = cli(env, "materialize", "--from", keys[1], "--to", keys[4], "--select", "mempool_transactions",
               "--windows-per-run", "3")
    assert done.returncode == 0, done.stderr
    assert "4/4 window(s) materialised" in done.stdout and "in 2 run(s)" in done.stdout
    assert f"{keys[1]} .. {keys[3]} (3 windows)  ok" in done.stdout
    with duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.sql('select "window", count(*) from mev.mempool_transactions group by 1 order by 1').fetchall()
        assert rows == [(keys[1], 2), (keys[2], 3), (keys[3], 4), (keys[4], 5)]
        tables = {t for (t,) in con.sql("select table_name from information_schema.tables").fetchall()}
        assert "mempool_source_stats" not in tables  # --select limited the run
    assert (tmp_path / "home" / "dagster" / "dagster.yaml").is_file()
    replayed = cli(env, "replay", "--from", keys[1], "--to", keys[2])
    assert replayed.returncode == 0, replayed.stderr
    assert "2 identical" in replayed.stdout and "0 different" in replayed.stdout
