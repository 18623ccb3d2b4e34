"""`mev-assets devnet ...`: the local chain from the command line.

``devnet`` is a click group; the top-level CLI mounts it (``main.add_command(devnet)``). Also
runnable alone: ``python -m mev_assets.devnet up``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import click

from mev_assets.settings import Settings

devnet = click.Group("devnet", help="Local chain: anvil + Uniswap V2 at mainnet addresses + traffic + a sandwich searcher.")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@devnet.command()
@click.option("--port", default=8545, show_default=True, help="anvil port on 127.0.0.1 (0 = any free port).")
@click.option("--block-time", default=12.0, show_default=True, type=float, help="Seconds between blocks (0 = automine).")
@click.option("--rate", default=None, type=float, help="Traffic in tx/s (default MEV_TRAFFIC_RATE, 15).")
@click.option("--duration", default=None, type=float, help="Stop after this many seconds (default: until Ctrl-C).")
@click.option("--seed", default=0, show_default=True, help="Seed of the traffic and searcher decisions.")
@click.option("--state-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where deployment.json, sandwich_labels.jsonl and anvil.log go (default $MEV_HOME/devnet).")
@click.option("--share", default=0.5, show_default=True, help="Share of profitable victims the searcher sandwiches.")
@click.option("--no-searcher", is_flag=True, help="Do not run the searcher.")
@click.option("--status-every", default=30.0, show_default=True, help="Seconds between status lines.")
def up(port: int, block_time: float, rate: float | None, duration: float | None, seed: int, state_dir: Path | None,
       share: float, no_searcher: bool, status_every: float) -> None:
    """Start anvil, deploy, run traffic + searcher until Ctrl-C (or --duration)."""
    from mev_assets.devnet.runner import start_devnet

    _logging()
    settings = Settings.from_env()
    handle = start_devnet(settings, port=port, block_time=block_time or None, rate=rate, seed=seed,
                          state_dir=state_dir, searcher=not no_searcher, searcher_share=share)
    click.echo(f"devnet up: {handle.http_url}  {handle.ws_url}  (chain id {handle.deployment.chain_id})")
    click.echo(f"  deployment: {handle.deployment_path}")
    click.echo(f"  labels:     {handle.labels_path}")
    click.echo(f"  anvil log:  {handle.state_dir / 'anvil.log'}")
    click.echo(f"  collector:  MEV_SOURCES=local={handle.ws_url} MEV_CHAIN_ID={handle.deployment.chain_id}")
    started = time.monotonic()
    try:
        while True:
            remaining = None if duration is None else duration - (time.monotonic() - started)
            if remaining is not None and remaining <= 0:
                break
            handle.wait(status_every if remaining is None else min(status_every, remaining))
            click.echo(handle.status())
    except KeyboardInterrupt:
        click.echo("stopping ...")
    finally:
        handle.stop()
    click.echo(handle.status())
    click.echo(f"labels: {handle.labels_path}")


@devnet.command()
@click.option("--rpc-url", default="http://127.0.0.1:8545", show_default=True, help="A running anvil (chain id 31337).")
@click.option("--out", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="Deployment JSON (default $MEV_HOME/devnet/deployment.json).")
def deploy(rpc_url: str, out: Path | None) -> None:
    """Deploy WETH9, Uniswap V2 and the devnet tokens at mainnet addresses onto a running anvil."""
    from mev_assets.devnet.contracts import deploy as do_deploy

    settings = Settings.from_env()
    out = out or settings.mev_home / "devnet" / "deployment.json"
    dep = do_deploy(rpc_url, settings.tools_dir, out)
    for p in dep.pools:
        click.echo(f"  {p.symbol0}/{p.symbol1:5s} {p.pair}")
    click.echo(f"deployed on {rpc_url} (block {dep.block_number}); deployment: {out}")


@devnet.command()
@click.option("--rpc-url", default="http://127.0.0.1:8545", show_default=True, help="A running, deployed anvil.")
@click.option("--deployment", "deployment_path", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Deployment JSON (default: read the deployment back from the chain).")
@click.option("--rate", default=None, type=float, help="tx/s (default MEV_TRAFFIC_RATE); 0 = as fast as possible.")
@click.option("--duration", default=None, type=float, help="Seconds to run (default: until Ctrl-C or --count).")
@click.option("--count", default=None, type=int, help="Stop after this many transactions.")
@click.option("--seed", default=0, show_default=True)
@click.option("--accounts", default=None, type=int, help="Sending accounts (default: enough for the rate at 12 s blocks).")
@click.option("--first-account", default=100, show_default=True, help="HD index of the first account (use distinct ranges for concurrent generators).")
def traffic(rpc_url: str, deployment_path: Path | None, rate: float | None, duration: float | None, count: int | None,
            seed: int, accounts: int | None, first_account: int) -> None:
    """Send realistic traffic into a running, deployed devnet."""
    from mev_assets.devnet.contracts import Deployment, read_deployment
    from mev_assets.devnet.runner import traffic_accounts_for
    from mev_assets.devnet.traffic import TrafficConfig, TrafficGenerator

    _logging()
    settings = Settings.from_env()
    rate = settings.traffic_rate if rate is None else rate
    dep = Deployment.load(deployment_path) if deployment_path else read_deployment(rpc_url)
    cfg = TrafficConfig(rate=rate, seed=seed, accounts=accounts or traffic_accounts_for(rate or 15.0, 12.0),
                        first_account=first_account)
    gen = TrafficGenerator(rpc_url, dep, cfg).setup()
    stop = threading.Event()
    click.echo(f"sending traffic to {rpc_url} at {rate or 'max'} tx/s from {cfg.accounts} accounts ...")
    try:
        gen.run(duration=duration, count=count, stop=stop)
    except KeyboardInterrupt:
        stop.set()
    click.echo(gen.stats.summary())


@devnet.command()
@click.option("--rpc-url", default="http://127.0.0.1:8545", show_default=True)
@click.option("--ws-url", default=None, help="Default: the rpc url with ws://.")
@click.option("--labels", "labels_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Labels file (JSON lines, appended).")
@click.option("--share", default=0.5, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--duration", default=None, type=float)
def searcher(rpc_url: str, ws_url: str | None, labels_path: Path, share: float, seed: int, duration: float | None) -> None:
    """Run the sandwich searcher against a running, deployed devnet."""
    from mev_assets.devnet.contracts import read_deployment
    from mev_assets.devnet.searcher import Searcher, SearcherConfig

    _logging()
    ws_url = ws_url or rpc_url.replace("http://", "ws://").replace("https://", "wss://")
    s = Searcher(rpc_url, ws_url, read_deployment(rpc_url), labels_path, SearcherConfig(share=share, seed=seed)).setup()
    stop = threading.Event()
    t = s.start(stop)
    click.echo(f"searcher watching {ws_url}; labels -> {labels_path}")
    try:
        stop.wait(duration)
    except KeyboardInterrupt:
        pass
    stop.set()
    t.join(10)
    click.echo(dict(s.stats))


if __name__ == "__main__":
    devnet()
