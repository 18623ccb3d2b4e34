"""The devnet as one handle: anvil + contracts + traffic + searcher (the API the demo, the live
lane and the integration tests use).

    from mev_assets.devnet import start_devnet
    with start_devnet(settings, block_time=2, rate=15, seed=1) as dn:
        dn.node.ws_url            # point the collector here
        dn.deployment             # addresses, tokens, pools
        dn.labels_path            # ground-truth sandwiches (JSON lines)
        dn.run_traffic(count=100) # send exactly 100 more txs (own accounts), returns their hashes
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mev_assets.devnet.anvil import AnvilNode, find_anvil
from mev_assets.devnet.contracts import Deployment, deploy
from mev_assets.devnet.searcher import Searcher, SearcherConfig, read_labels
from mev_assets.devnet.traffic import TrafficConfig, TrafficGenerator, TrafficStats
from mev_assets.settings import Settings

log = logging.getLogger(__name__)

DEPLOYMENT_FILE = "deployment.json"
LABELS_FILE = "sandwich_labels.jsonl"
INFO_FILE = "devnet.json"
ANVIL_LOG = "anvil.log"

# HD index ranges of the devnet's actors (all from the anvil mnemonic):
#   0           deployer (anvil dev account 0)      100..       background traffic
#   1000..      searcher wallets                     5000..      bounded runs (run_traffic)
BACKGROUND_TRAFFIC_FIRST = 100
BOUNDED_TRAFFIC_FIRST = 5000


def traffic_accounts_for(rate: float, block_time: float | None) -> int:
    """Enough accounts for one in-flight transaction each at ``rate`` (with headroom)."""
    per_block = rate * (block_time or 1.0)
    return max(32, min(600, int(per_block * 1.6) + 16))


@dataclass
class DevnetHandle:
    node: AnvilNode
    deployment: Deployment
    state_dir: Path
    deployment_path: Path
    labels_path: Path
    settings: Settings
    traffic: TrafficGenerator | None = None
    searcher: Searcher | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    _bounded_runs: int = 0

    @property
    def http_url(self) -> str:
        return self.node.http_url

    @property
    def ws_url(self) -> str:
        return self.node.ws_url

    def run_traffic(self, count: int, *, rate: float = 0.0, seed: int | None = None, accounts: int = 32,
                    first_account: int | None = None) -> TrafficStats:
        """Send exactly ``count`` transactions (blocking) from accounts of their own (disjoint from
        the background traffic, so both can run at once) and return their stats; ``.hashes`` /
        ``.txs`` list every transaction sent. ``rate`` 0 sends as fast as accounts free up."""
        first = first_account if first_account is not None else BOUNDED_TRAFFIC_FIRST + 1000 * self._bounded_runs
        self._bounded_runs += 1
        cfg = TrafficConfig(rate=rate, seed=self._bounded_runs if seed is None else seed, accounts=accounts, first_account=first)
        gen = TrafficGenerator(self.http_url, self.deployment, cfg, record=True).setup()
        return gen.run(count=count, stop=self.stop_event)

    def labels(self) -> list[dict]:
        return read_labels(self.labels_path)

    def wait(self, duration: float | None = None) -> None:
        """Block until ``stop()`` is called (from another thread) or ``duration`` seconds passed."""
        self.stop_event.wait(duration)

    def status(self) -> str:
        parts = []
        if self.traffic is not None:
            parts.append("traffic: " + self.traffic.stats.summary())
        if self.searcher is not None:
            st = self.searcher.stats
            parts.append(f"searcher: swaps seen {st['router_swaps']}, profitable {st['profitable']}, "
                         f"attempted {st['attempted']}, labelled {st['labelled']}, succeeded {st['succeeded']}")
        return "\n".join(parts)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout)
        self.node.stop()

    def __enter__(self) -> "DevnetHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_devnet(settings: Settings | None = None, *, port: int = 0, block_time: float | None = 12,
                 rate: float | None = None, seed: int = 0, state_dir: Path | str | None = None,
                 traffic: bool = True, searcher: bool = True, traffic_accounts: int | None = None,
                 searcher_share: float = 0.5, anvil_args: list[str] | None = None,
                 ready_timeout: float = 30.0) -> DevnetHandle:
    """Start anvil on ``port`` (0 = a free one), deploy the contracts, and start the traffic
    generator (``rate`` tx/s, default ``settings.traffic_rate``) and the searcher in background
    threads. ``block_time`` None means anvil's automine. Files go to ``state_dir`` (default
    ``$MEV_HOME/devnet``): deployment.json, sandwich_labels.jsonl (truncated: a new chain has new
    labels), devnet.json (urls, actors), anvil.log. Stop with ``handle.stop()`` or a ``with`` block."""
    settings = settings or Settings.from_env()
    state = Path(state_dir) if state_dir is not None else settings.mev_home / "devnet"
    state.mkdir(parents=True, exist_ok=True)
    rate = settings.traffic_rate if rate is None else rate
    node = AnvilNode(find_anvil(settings.anvil_bin), port=port, block_time=block_time,
                     log_path=state / ANVIL_LOG, extra_args=list(anvil_args or []))
    node.start()
    try:
        deployment_path = state / DEPLOYMENT_FILE
        deployment = deploy(node.http_url, settings.tools_dir, deployment_path)
        labels_path = state / LABELS_FILE
        labels_path.write_text("")
        handle = DevnetHandle(node=node, deployment=deployment, state_dir=state, deployment_path=deployment_path,
                              labels_path=labels_path, settings=settings)
        if searcher:
            handle.searcher = Searcher(node.http_url, node.ws_url, deployment, labels_path,
                                       SearcherConfig(share=searcher_share, seed=seed)).setup()
            handle.threads.append(handle.searcher.start(handle.stop_event))
            if not handle.searcher.ready.wait(ready_timeout):
                raise RuntimeError("the searcher did not subscribe to the node in time")
        if traffic and rate > 0:
            n_accounts = traffic_accounts or traffic_accounts_for(rate, block_time)
            handle.traffic = TrafficGenerator(node.http_url, deployment, TrafficConfig(
                rate=rate, seed=seed, accounts=n_accounts, first_account=BACKGROUND_TRAFFIC_FIRST)).setup()
            handle.threads.append(handle.traffic.start(handle.stop_event))
        _write_info(handle, block_time, rate)
        return handle
    except BaseException:
        node.stop()
        raise


def _write_info(h: DevnetHandle, block_time: float | None, rate: float) -> None:
    info = {
        "http_url": h.http_url,
        "ws_url": h.ws_url,
        "chain_id": h.deployment.chain_id,
        "block_time": block_time,
        "traffic_rate": rate if h.traffic else 0,
        "deployment": str(h.deployment_path),
        "labels": str(h.labels_path),
        "anvil_log": str(h.state_dir / ANVIL_LOG),
        "deployer": h.deployment.deployer,
        "searchers": h.searcher.addresses if h.searcher else [],
        "traffic_accounts": h.traffic.addresses if h.traffic else [],
        "started_at": time.time(),
    }
    (h.state_dir / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
