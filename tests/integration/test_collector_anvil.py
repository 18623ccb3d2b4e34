"""The collector against a real anvil node: completeness, two sources through a delaying
proxy, two collector processes, a node restart, and kill -9 recovery from the WAL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import coincurve
import polars as pl
import pytest
from eth_account import Account
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from mev_assets.devnet.anvil import DEFAULT_MNEMONIC, AnvilNode, find_anvil, free_port
from mev_assets.ingest.collector import CollectorThread
from mev_assets.ingest.fakenode import sign_dynamic_fee_tx
from mev_assets.ingest.landing import LandingZone
from mev_assets.ingest.records import KIND_TX, decode_record
from mev_assets.ingest.wal import read_wal_file
from mev_assets.settings import PROJECT_ROOT, Settings, Source
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

CHAIN = 31337
ANVIL_CONFIGURED = str(PROJECT_ROOT / "tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")


@pytest.fixture(scope="module")
def anvil_bin() -> str:
    try:
        return find_anvil(ANVIL_CONFIGURED)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"anvil not installed: {exc}")


@pytest.fixture(scope="module")
def keys() -> list[coincurve.PrivateKey]:
    Account.enable_unaudited_hdwallet_features()
    return [
        coincurve.PrivateKey(bytes(Account.from_mnemonic(DEFAULT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key))
        for i in range(4)
    ]


class Sender:
    """Signs transfers from the funded devnet accounts and sends them to a node."""

    def __init__(self, keys: list[coincurve.PrivateKey]):
        self.keys = keys
        self.nonces: dict[int, int] = {}

    def send(self, node: AnvilNode, n: int) -> list[str]:
        hashes = []
        for i in range(n):
            k = i % len(self.keys)
            if k not in self.nonces:
                addr = Account.from_key(self.keys[k].secret).address
                self.nonces[k] = int(node.rpc("eth_getTransactionCount", [addr, "pending"]), 16)
            raw = sign_dynamic_fee_tx(self.keys[k], CHAIN, self.nonces[k], bytes([0x22] * 20), value=i + 1, fee_cap=10**11)
            self.nonces[k] += 1
            hashes.append(node.rpc("eth_sendRawTransaction", ["0x" + raw.hex()]))
        return hashes


def settings_for(tmp_path: Path, sources, **kw) -> Settings:
    base = dict(
        mev_home=tmp_path / "home", dagster_home=tmp_path / "home" / "dagster", window_seconds=2,
        chain_id=CHAIN, sources=tuple(sources), collector_id="c1", seal_delay_ms=300, metrics_port=0,
    )
    base.update(kw)
    return Settings(**base)


def all_rows(lz: LandingZone, area: str) -> pl.DataFrame:
    frames = [lz.read_area(area, k).frame for k in lz.windows(area)]
    return pl.concat(frames) if frames else pl.DataFrame()


@pytest.mark.timeout(120)
def test_every_sent_transaction_lands_exactly_once(tmp_path, anvil_bin, keys):
    n = 200
    with AnvilNode(anvil_bin, block_time=1) as node:
        port = free_port()
        s = settings_for(tmp_path, [Source("anvil", node.ws_url)], metrics_port=port)
        lz = LandingZone(s.landing_dir)
        with CollectorThread(s) as ct:
            c = ct.collector
            wait_for(lambda: c.lanes[0].connected, what="subscription")
            b0 = int(node.rpc("eth_blockNumber"), 16)
            hashes = Sender(keys).send(node, n)
            wait_for(lambda: c.accepted_total == n, what=f"{n} accepted")
            # the heads that mined them are recorded too (with their tx hashes)
            last = wait_for(lambda: node.rpc("eth_getTransactionReceipt", [hashes[-1]]), what="mined")
            mined_in = int(last["blockNumber"], 16)
            # every head after b0 up to the one that mined the last tx (one row per block)
            wait_for(lambda: c.metrics.value("mev_collector_blocks_total", {"source": "anvil"}) >= mined_in - b0,
                     what="heads up to the last mined block")
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'mev_collector_accepted_total{source="anvil"} 200.0' in body
        for name in ("mev_collector_received_total", "mev_collector_wal_bytes", "mev_collector_seal_latency_seconds_bucket",
                     "mev_collector_ingest_lag_seconds_bucket", "mev_collector_reconnects_total", "mev_collector_queue_depth"):
            assert name in body, name
    txs = all_rows(lz, "mempool")
    assert txs.height == n and sorted(txs["hash"]) == sorted(hashes)
    blocks = all_rows(lz, "blocks")
    landed = {h for hs in blocks["tx_hashes"].to_list() if hs for h in hs}
    assert set(hashes) <= landed
    assert blocks["hash"].n_unique() == blocks.height  # one row per block
    # every window with data, and every window between, is sealed by c1
    for key in lz.windows("mempool"):
        assert "c1" in lz.sealed_by(key)


class DelayProxy:
    """A WebSocket proxy on loopback delaying node->client messages by ``delay`` seconds."""

    def __init__(self, upstream: str, delay: float):
        self.upstream = upstream
        self.delay = delay
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self) -> "DelayProxy":
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.run_forever()

    async def _serve(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None, max_size=None)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()

    async def _handle(self, client) -> None:
        async with connect(self.upstream, compression=None, max_size=None) as up:
            queue: asyncio.Queue = asyncio.Queue()

            async def upward():
                async for msg in client:
                    await up.send(msg)

            async def downward_read():
                async for msg in up:
                    queue.put_nowait((time.monotonic() + self.delay, msg))

            async def downward_send():
                while True:
                    due, msg = await queue.get()
                    wait = due - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    await client.send(msg)

            tasks = [asyncio.create_task(t()) for t in (upward, downward_read, downward_send)]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            except ConnectionClosed:
                pass
            finally:
                for t in tasks:
                    t.cancel()

    def stop(self) -> None:
        async def close():
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.mark.timeout(120)
def test_two_sources_each_tx_once_with_measurable_latency_delta(tmp_path, anvil_bin, keys):
    delay = 0.15
    with AnvilNode(anvil_bin, block_time=1) as node:
        proxy = DelayProxy(node.ws_url, delay).start()
        try:
            s = settings_for(tmp_path, [Source("fast", node.ws_url), Source("slow", proxy.url)])
            lz = LandingZone(s.landing_dir)
            with CollectorThread(s) as ct:
                c = ct.collector
                wait_for(lambda: all(lane.connected for lane in c.lanes), what="both subscribed")
                hashes = Sender(keys).send(node, 40)
                wait_for(lambda: c.metrics.value("mev_collector_sightings_total", {"source": "slow"}) == 40, what="slow sightings")
        finally:
            proxy.stop()
    txs = all_rows(lz, "mempool")
    assert txs.height == 40 and sorted(txs["hash"]) == sorted(hashes)
    assert set(txs["source"]) == {"fast"}  # the first arrival wins
    sl = all_rows(lz, "sourcelog")
    assert sl.height == 80
    wide = sl.pivot(on="source", index="hash", values="timestamp_ms")
    # the proxy holds each message for `delay` after the node sent it, while the direct lane gets
    # it at once: the measured delta is the injected delay (to the ms, both lanes share a clock)
    delta = (wide["slow"] - wide["fast"]) / 1000
    assert delta.median() >= 0.95 * delay, delta.describe()
    # (single sightings can be off by tens of ms: the proxy and the collector share this process)
    assert delta.min() > 0.5 * delay and delta.median() < delay + 0.1, delta.describe()


def collector_env(home: Path, cid: str, sources: str, window: int = 2, **extra) -> dict:
    env = dict(os.environ)
    env.update(
        MEV_HOME=str(home), MEV_SOURCES=sources, MEV_CHAIN_ID=str(CHAIN), MEV_WINDOW_SECONDS=str(window),
        MEV_COLLECTOR_ID=cid, MEV_METRICS_PORT="0", MEV_SEAL_DELAY_MS="300",
    )
    env.pop("DAGSTER_HOME", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def spawn_collector(env: dict, log_path: Path) -> subprocess.Popen:
    out = open(log_path, "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "mev_assets.ingest.collector"], env=env, stdout=out, stderr=subprocess.STDOUT,
        cwd=str(PROJECT_ROOT),
    )


def heartbeat(lz: LandingZone, cid: str) -> dict:
    return lz.heartbeat(cid) or {}


def connected(lz: LandingZone, cid: str, proc: subprocess.Popen) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"collector {cid} exited with {proc.returncode}")
    beat = heartbeat(lz, cid)
    return beat.get("pid") == proc.pid and all(v.get("connected") for v in beat.get("sources", {}).values()) and bool(beat.get("sources"))


def wal_tx_hashes(lz: LandingZone, cid: str) -> list[str]:
    hashes = []
    d = lz.wal_dir(cid)
    for p in sorted(d.glob("window=*.log")):
        try:
            for payload in read_wal_file(p).records:
                kind, rec = decode_record(payload)
                if kind == KIND_TX:
                    hashes.append(rec[1])
        except FileNotFoundError:
            continue
    return hashes


def stop_proc(proc: subprocess.Popen, timeout: float = 30) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


@pytest.mark.timeout(180)
def test_two_collector_processes_with_different_ids_never_collide(tmp_path, anvil_bin, keys):
    home = tmp_path / "home"
    lz = LandingZone(home / "landing")
    with AnvilNode(anvil_bin, block_time=1) as node:
        procs = {cid: spawn_collector(collector_env(home, cid, f"anvil={node.ws_url}"), tmp_path / f"{cid}.log") for cid in ("p1", "p2")}
        try:
            for cid, proc in procs.items():
                wait_for(lambda: connected(lz, cid, proc), what=f"{cid} subscribed")
            hashes = Sender(keys).send(node, 60)
            for cid, proc in procs.items():
                wait_for(lambda: heartbeat(lz, cid).get("accepted") == 60, what=f"{cid} accepted 60")
        finally:
            codes = {cid: stop_proc(p) for cid, p in procs.items()}
    assert codes == {"p1": 0, "p2": 0}, [(tmp_path / f"{c}.log").read_text()[-2000:] for c in procs]
    txs = all_rows(lz, "mempool")
    for cid in ("p1", "p2"):
        mine = txs.filter(pl.col("collector_id") == cid)
        assert sorted(mine["hash"]) == sorted(hashes)
        assert heartbeat(lz, cid)["stopped"] is True
    names = [p.name for k in lz.windows() for p in lz.segment_files("mempool", k)]
    assert all(n.startswith(("p1-", "p2-")) for n in names)
    for cid in ("p1", "p2"):
        # each collector sealed every window of its lifetime, contiguous, empty ones included
        mine = [k for k in lz.windows() if cid in lz.sealed_by(k)]
        assert mine == [k for k in lz.windows() if mine[0] <= k <= mine[-1]]
        for key in lz.windows():
            if any(p.name.startswith(cid + "-") for p in lz.segment_files("mempool", key)):
                assert cid in lz.sealed_by(key)
    assert not list(lz.root.rglob(".tmp-*"))


@pytest.mark.timeout(180)
def test_node_restart_mid_stream_reconnects_and_loses_nothing(tmp_path, anvil_bin, keys):
    port = free_port()
    state = tmp_path / "anvil-state.json"
    node = AnvilNode(anvil_bin, port=port, block_time=1, state_path=state).start()
    s = settings_for(tmp_path, [Source("anvil", f"ws://127.0.0.1:{port}")])
    lz = LandingZone(s.landing_dir)
    sender = Sender(keys)
    try:
        with CollectorThread(s, backoff_cap=2.0) as ct:
            c = ct.collector
            lane = c.lanes[0]
            wait_for(lambda: lane.connected, what="subscription")
            before = sender.send(node, 25)
            wait_for(lambda: c.accepted_total == 25, what="25 accepted before the restart")
            wait_for(lambda: node.rpc("eth_getTransactionReceipt", [before[-1]]), what="mined before the restart")
            node.stop(signal.SIGTERM)  # anvil dumps its state
            wait_for(lambda: not lane.connected, what="disconnect seen")
            assert state.exists()
            node = AnvilNode(anvil_bin, port=port, block_time=1, state_path=state).start()
            wait_for(lambda: lane.connected and lane.sessions == 2, what="reconnected")
            after = sender.send(node, 25)
            wait_for(lambda: c.accepted_total == 50, what="25 accepted after the restart")
            assert c.metrics.value("mev_collector_reconnects_total", {"source": "anvil"}) >= 1
    finally:
        node.stop()
    txs = all_rows(lz, "mempool")
    assert txs.height == 50 and sorted(txs["hash"]) == sorted(before + after)


@pytest.mark.timeout(180)
def test_kill_9_mid_window_recovers_every_accepted_record_without_duplicates(tmp_path, anvil_bin, keys):
    home = tmp_path / "home"
    lz = LandingZone(home / "landing")
    sender = Sender(keys)
    with AnvilNode(anvil_bin, block_time=1) as node:
        # long windows: the kill lands mid-window, with everything still only in the WAL
        env = collector_env(home, "k1", f"anvil={node.ws_url}", window=60)
        p1 = spawn_collector(env, tmp_path / "k1-a.log")
        try:
            wait_for(lambda: connected(lz, "k1", p1), what="first run subscribed")
            first = sender.send(node, 40)
            # "accepted" = in the WAL (written to the OS); wait until the log holds all of them
            wait_for(lambda: sorted(wal_tx_hashes(lz, "k1")) == sorted(first), what="first batch in the WAL")
        finally:
            p1.kill()
            p1.wait(10)
        assert p1.returncode == -signal.SIGKILL
        assert lz.wal_dir("k1").joinpath("LOCK").exists() and list(lz.wal_dir("k1").glob("window=*.log"))
        p2 = spawn_collector(env, tmp_path / "k1-b.log")
        try:
            wait_for(lambda: connected(lz, "k1", p2), what="second run subscribed")
            # the recovered batch is sealed at start, before new records arrive
            recovered = all_rows(lz, "mempool")
            assert sorted(recovered["hash"]) == sorted(first)
            second = sender.send(node, 40)
            wait_for(lambda: heartbeat(lz, "k1").get("accepted") == 40, what="second batch accepted")
        finally:
            code = stop_proc(p2)
    assert code == 0, (tmp_path / "k1-b.log").read_text()[-3000:]
    txs = all_rows(lz, "mempool")
    assert txs.height == 80 and txs["hash"].n_unique() == 80
    assert sorted(txs["hash"]) == sorted(first + second)
    assert not list(lz.wal_dir("k1").glob("window=*.log"))
    for key in lz.windows():
        assert "k1" in lz.sealed_by(key)
