"""A mempool-dumpster day captured from a real local chain, imported and materialised as a user does it.

Transactions sent to anvil (chain 31337) are written out in the archive's formats - Parquet with the
node's raw bytes (``eth_getRawTransactionByHash``) and the summary CSV without them - then
``mev-assets import mempool-dumpster`` lands them and ``mev-assets materialize --from --to`` builds
the tables; every transaction must be in ``mev.mempool_transactions`` once, with the node's values.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import duckdb
import pytest

from mev_assets.core.windows import key_for_start_ms, window_start_ms
from mev_assets.devnet.runner import start_devnet
from tests.unit.test_dumpster_import import dumpster_row, write_csv, write_parquet, write_sourcelog

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CHAIN = 31337


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mev_assets.cli", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=240)


def test_a_local_chain_capture_imports_and_materialises(settings_factory, tmp_path):
    settings = settings_factory(MEV_WINDOW_SECONDS=60, MEV_CHAIN_ID=CHAIN)
    devnet = start_devnet(settings, block_time=1, traffic=False, searcher=False, state_dir=tmp_path / "devnet")
    try:
        sent = devnet.run_traffic(count=24)
        hashes = [h.lower() for h in sent.hashes]
        objs = {h: devnet.node.rpc("eth_getTransactionByHash", [h]) for h in hashes}
        raws = {h: devnet.node.rpc("eth_getRawTransactionByHash", [h]) for h in hashes}
    finally:
        devnet.stop()
    assert len(set(hashes)) == 24 and all(raws.values())

    # two closed windows two hours ago: the first half as Parquet (with rawTx), the rest as CSV
    start = window_start_ms(time.time_ns() // 1_000_000, 60) - 2 * 3_600_000
    keys = [key_for_start_ms(start), key_for_start_ms(start + 60_000)]
    rows = [dumpster_row(objs[h], start + 5_000 * i, ["anvil", "anvil-b"], raw=bytes.fromhex(raws[h][2:]))
            for i, h in enumerate(hashes)]
    parquet = write_parquet(tmp_path / "devnet-day.parquet", rows[:12])
    csv_file = write_csv(tmp_path / "devnet-day.csv", rows[12:])
    sourcelog = write_sourcelog(tmp_path / "devnet-day_sourcelog.csv", sorted(
        [(int(r["timestamp"]), r["hash"], "anvil") for r in rows]
        + [(int(r["timestamp"]) + 40 + i, r["hash"], "anvil-b") for i, r in enumerate(rows)]))

    env = {"MEV_HOME": str(settings.mev_home), "MEV_WINDOW_SECONDS": "60", "MEV_CHAIN_ID": str(CHAIN), "DAGSTER_HOME": ""}
    done = cli(env, "import", "mempool-dumpster", str(parquet), str(csv_file), "--sourcelog", str(sourcelog),
               "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "24 accepted (12 from rawTx)" in done.stdout and "48 sightings" in done.stdout
    again = cli(env, "import", "mempool-dumpster", str(parquet), str(csv_file), "--sourcelog", str(sourcelog),
                "--no-progress")
    assert again.returncode == 0 and "0 accepted" in again.stdout and "2 already sealed" in again.stdout

    done = cli(env, "materialize", "--from", keys[0], "--to", keys[1])
    assert done.returncode == 0, done.stderr
    assert "2/2 window(s) materialised" in done.stdout

    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        got = con.sql('select hash, "window", "from", nonce, value, raw_tx, input, sources from mev.mempool_transactions'
                      ).fetchall()
        stats = con.sql('select "window", source, txs_seen, latency_p50_ms from mev.mempool_source_stats '
                        'order by 1, 2').fetchall()
    by_hash = {r[0]: r for r in got}
    assert len(got) == len(by_hash) == 24 and set(by_hash) == set(hashes)
    for i, h in enumerate(hashes):
        _, window, sender, nonce, value, raw_tx, inp, sources = by_hash[h]
        node = objs[h]
        assert window == keys[(5_000 * i) // 60_000]
        assert (sender, nonce, value) == (node["from"].lower(), int(node["nonce"], 16), str(int(node["value"], 16)))
        assert sources == ["anvil", "anvil-b"]
        if i < 12:
            assert raw_tx == raws[h].lower() and inp == node["input"]
        else:
            assert raw_tx is None and inp is None  # the CSV has no rawTx: summary columns only
    assert [(w, s, n) for w, s, n, _ in stats] == [(keys[0], "anvil", 12), (keys[0], "anvil-b", 12),
                                                    (keys[1], "anvil", 12), (keys[1], "anvil-b", 12)]
    # anvil-b announced transaction i 40 + i ms after anvil (the sourcelog): its latency behind the first
    lag = {w: p50 for w, s, _, p50 in stats if s == "anvil-b"}
    assert 40 <= lag[keys[0]] <= 51 and 52 <= lag[keys[1]] <= 63
