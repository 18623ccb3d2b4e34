"""Collector ingest rate: one collector process fed as fast as it takes transactions.

A feeder (this process) is a WebSocket node on loopback speaking the real subscription
protocol: it answers ``eth_subscribe`` and then pushes pre-signed, valid transaction objects
(``newPendingTransactions`` notifications) as fast as the connection accepts them - websockets'
flow control makes the feeder wait when the collector falls behind, so nothing is dropped.
The collector runs as a subprocess (``python -m mev_assets.ingest.collector``) exactly as in
production: validation (signature recovery, hash check), dedup, WAL with group commit, window
sealing into Parquet, metrics.

Reported: the sustained rate (accepted tx/s between the first and last 10 % of the run, read
from the collector's Prometheus endpoint), the end-to-end rate, and a check that the sealed
segments hold exactly the sent transactions. Baseline in the same run: the same feeder draining
into a bare websockets client that only json-parses the messages, so the ratio shows the
collector's own cost.

    .venv/bin/python benchmarks/bench_ingest.py [--txs 60000] [--window 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from multiprocessing import Pool
from pathlib import Path

import polars as pl
from websockets.asyncio.server import serve

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mev_assets.devnet.anvil import free_port  # noqa: E402
from mev_assets.ingest.fakenode import synthetic_tx_objects  # noqa: E402
from mev_assets.ingest.landing import LandingZone  # noqa: E402

CHAIN = 31337
_dumps = json.JSONEncoder(separators=(",", ":")).encode

BARE_CLIENT = r"""
import asyncio, json, sys, time
from websockets.asyncio.client import connect
async def main(url, n):
    async with connect(url, compression=None, max_size=None) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newPendingTransactions", True]}))
        json.loads(await ws.recv())
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_subscribe", "params": ["newHeads"]}))
        json.loads(await ws.recv())
        got = 0
        async for msg in ws:
            obj = json.loads(msg)
            if obj.get("method") == "eth_subscription":
                got += 1
                if got == n:
                    print(time.time(), flush=True)
                    return
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _gen(args: tuple[int, int]) -> list[dict]:
    n, seed = args
    return synthetic_tx_objects(n, CHAIN, senders=16, seed=seed, data_size=196)


def make_objects(n: int) -> list[dict]:
    parts = 4
    with Pool(2) as pool:
        chunks = pool.map(_gen, [(n // parts + (1 if i < n % parts else 0), 100 + i) for i in range(parts)])
    return [o for c in chunks for o in c]


class Feeder:
    """Serve one subscriber, push ``messages`` once it subscribed, record send times."""

    def __init__(self, objs: list[dict]):
        self.bodies = [_dumps(o) for o in objs]
        self.port = free_port()
        self.first_send = 0.0
        self.last_send = 0.0
        self.done = asyncio.Event()

    async def handler(self, ws) -> None:
        sub = None
        async for text in ws:
            msg = json.loads(text)
            if msg.get("method") == "eth_subscribe":
                kind = msg["params"][0]
                sid = "0x" + ("a" if kind == "newPendingTransactions" else "b") * 32
                await ws.send(_dumps({"jsonrpc": "2.0", "id": msg["id"], "result": sid}))
                if kind == "newPendingTransactions":
                    sub = sid
                if kind == "newHeads":  # the collector subscribes to heads last
                    break
        if sub is None:
            return
        prefix = '{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"' + sub + '","result":'
        messages = [prefix + b + "}}" for b in self.bodies]
        self.first_send = time.time()
        for m in messages:
            await ws.send(m)
        self.last_send = time.time()
        self.done.set()
        try:
            await ws.wait_closed()
        except Exception:  # noqa: BLE001
            pass


def metric(port: int, name: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def run_baseline(objs: list[dict]) -> float:
    feeder = Feeder(objs)
    async with serve(feeder.handler, "127.0.0.1", feeder.port, compression=None, max_size=None):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", BARE_CLIENT, f"ws://127.0.0.1:{feeder.port}", str(len(objs)),
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        end = float(out.decode().strip())
    return len(objs) / (end - feeder.first_send)


async def run_collector(objs: list[dict], window: int, home: Path) -> dict:
    feeder = Feeder(objs)
    mport = free_port()
    env = dict(os.environ)
    env.update(
        MEV_HOME=str(home), MEV_SOURCES=f"feed=ws://127.0.0.1:{feeder.port}", MEV_CHAIN_ID=str(CHAIN),
        MEV_WINDOW_SECONDS=str(window), MEV_COLLECTOR_ID="bench", MEV_METRICS_PORT=str(mport), MEV_SEAL_DELAY_MS="500",
    )
    n = len(objs)
    samples: list[tuple[float, float]] = []
    async with serve(feeder.handler, "127.0.0.1", feeder.port, compression=None, max_size=None):
        log = open(home / "collector.log", "wb")
        proc = subprocess.Popen([sys.executable, "-m", "mev_assets.ingest.collector"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            while not feeder.first_send:
                if proc.poll() is not None:
                    raise RuntimeError(f"collector exited early: {(home / 'collector.log').read_text()[-2000:]}")
                await asyncio.sleep(0.05)
            deadline = time.time() + 600
            accepted = 0.0
            while accepted < n and time.time() < deadline:
                await asyncio.sleep(0.1)
                accepted = await asyncio.to_thread(metric, mport, "mev_collector_accepted_total{")
                samples.append((time.time(), accepted))
            quarantined = await asyncio.to_thread(metric, mport, "mev_collector_quarantined_total{")
            lag_sum = await asyncio.to_thread(metric, mport, "mev_collector_ingest_lag_seconds_sum")
            lag_count = await asyncio.to_thread(metric, mport, "mev_collector_ingest_lag_seconds_count")
            rss_kb = int(next(l for l in open(f"/proc/{proc.pid}/status") if l.startswith("VmHWM")).split()[1])
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(proc.wait, 120)
    end = next(t for t, a in samples if a >= n) if samples and samples[-1][1] >= n else float("nan")
    lo = next((t, a) for t, a in samples if a >= 0.1 * n)
    hi = next((t, a) for t, a in samples if a >= 0.9 * n)
    sustained = (hi[1] - lo[1]) / (hi[0] - lo[0]) if hi[0] > lo[0] else float("nan")
    lz = LandingZone(home / "landing")
    frames = [lz.read_area("mempool", k).frame for k in lz.windows("mempool")]
    rows = pl.concat(frames) if frames else pl.DataFrame({"hash": []})
    sealed = [k for k in lz.windows("mempool") if "bench" in lz.sealed_by(k)]
    return {
        "accepted": samples[-1][1] if samples else 0,
        "quarantined": quarantined,
        "end_to_end_tps": n / (end - feeder.first_send),
        "sustained_tps": sustained,
        "rows": rows.height,
        "unique": rows["hash"].n_unique() if rows.height else 0,
        "match": set(rows["hash"]) == {o["hash"] for o in objs},
        "windows": len(frames),
        "sealed_windows": len(sealed),
        "exit_code": code,
        "mean_ingest_lag_ms": 1000 * lag_sum / lag_count if lag_count else float("nan"),
        "peak_rss_mb": rss_kb / 1024,
        "wal_left": sorted(p.name for p in (home / "landing" / "_wal" / "bench").iterdir()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--txs", type=int, default=60_000)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="use (and keep) this directory as MEV_HOME")
    args = ap.parse_args()
    t = time.time()
    objs = make_objects(args.txs)
    print(f"generated {len(objs)} signed transaction objects in {time.time() - t:.1f} s "
          f"(~{sum(len(_dumps(o)) for o in objs[:1000]) / 1000:.0f} bytes each); {os.cpu_count()} CPUs")
    base = asyncio.run(run_baseline(objs))
    print(f"baseline   feeder -> bare websockets client (json.loads only): {base:10,.0f} msg/s")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        r = asyncio.run(run_collector(objs, args.window, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            r = asyncio.run(run_collector(objs, args.window, Path(tmp)))
    print(f"collector  sustained (10 %..90 %):                           {r['sustained_tps']:10,.0f} tx/s")
    print(f"collector  end to end (first send -> last accepted):         {r['end_to_end_tps']:10,.0f} tx/s")
    print(f"ratio      collector / baseline:                             {r['sustained_tps'] / base:10.2f}")
    print(f"check      sent {len(objs)}, accepted {r['accepted']:.0f}, rows in sealed segments {r['rows']} "
          f"(unique {r['unique']}, same hashes: {r['match']}), quarantined {r['quarantined']:.0f}")
    print(f"           {r['windows']} windows with data, {r['sealed_windows']} sealed; exit code {r['exit_code']}; "
          f"WAL left: {r['wal_left']}")
    print(f"           mean ingest lag (receipt -> in WAL) {r['mean_ingest_lag_ms']:.2f} ms; peak RSS {r['peak_rss_mb']:.0f} MB")
    ok = r["rows"] == len(objs) == r["unique"] and r["match"] and r["exit_code"] == 0
    print("RESULT", "ok: no loss, no duplicates" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
