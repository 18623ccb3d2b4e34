"""The devnet against a real anvil: contracts at mainnet addresses, traffic, the sandwich searcher,
the start_devnet API and the `devnet` CLI group."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from mev_assets.devnet.anvil import AnvilError, AnvilNode, find_anvil
from mev_assets.devnet.cli import devnet as devnet_cli
from mev_assets.devnet.contracts import (
    POOL_SPECS,
    Deployment,
    deploy,
    fund_accounts,
    token_amounts_usd,
    uniswap_artifact,
)
from mev_assets.devnet.rpc import RpcClient, derive_account, selector, to_int
from mev_assets.devnet.runner import start_devnet
from mev_assets.devnet.searcher import Searcher, SearcherConfig, read_labels
from mev_assets.devnet.traffic import KINDS, SWAP_KINDS, TrafficConfig, TrafficGenerator
from mev_assets.devnet.uniswap import (
    SEL_BALANCE_OF,
    SWAP_SIGNATURES,
    V2_FACTORY,
    V2_INIT_CODE_HASH,
    V2_ROUTER02,
    WETH,
    amounts_in,
    amounts_out,
    encode_swap,
    pair_address,
)
from mev_assets.settings import Settings

pytestmark = pytest.mark.integration

GWEI = 10**9
MAINNET = {
    "USDC": ("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 6),
    "USDT": ("0xdAC17F958D2ee523a2206206994597C13D831ec7", 6),
    "WBTC": ("0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", 8),
    "DAI": ("0x6B175474E89094C44Da98b954EedeAC495271d0F", 18),
}


# --- helpers & fixtures ---------------------------------------------------------------------------

def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="module")
def settings() -> Settings:
    s = Settings.from_env()
    try:
        find_anvil(s.anvil_bin)
    except AnvilError as exc:
        pytest.skip(f"anvil not installed: {exc}")
    if not (s.tools_dir / "node_modules/@uniswap/v2-core").is_dir():
        pytest.skip("Uniswap npm artifacts not installed (make setup)")
    return s


@pytest.fixture(scope="module")
def chain(settings, tmp_path_factory):
    """One anvil (1 s blocks) with everything deployed, shared by the read-mostly tests."""
    state = tmp_path_factory.mktemp("devnet")
    node = AnvilNode(find_anvil(settings.anvil_bin), block_time=1, log_path=state / "anvil.log").start()
    try:
        dep = deploy(node.http_url, settings.tools_dir, state / "deployment.json")
        yield node, dep, state
    finally:
        node.stop()


def call(rpc: RpcClient, to: str, sig: str, types: list[str] | None = None, args: list | None = None, out: list[str] | None = None, block="latest"):
    data = selector(sig) + (abi_encode(types, args) if types else b"")
    raw = rpc.eth_call(to, data, block)
    return abi_decode(out, raw) if out else raw


def send(rpc: RpcClient, acct, to: str, data: bytes = b"", value: int = 0, gas: int = 250_000, tip: int = GWEI // 10,
         legacy: bool = False) -> str:
    nonce = to_int(rpc.call("eth_getTransactionCount", [acct.address, "pending"]))
    base = to_int(rpc.call("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"])
    tx = {"chainId": 31337, "nonce": nonce, "to": to, "value": value, "data": data, "gas": gas}
    if legacy:
        tx["gasPrice"] = 2 * base + tip
    else:
        tx.update(type=2, maxFeePerGas=2 * base + tip, maxPriorityFeePerGas=tip)
    raw, h = acct.sign(tx)
    rpc.call("eth_sendRawTransaction", [raw])
    return h


# --- contracts ------------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_contracts_at_mainnet_addresses(chain, settings):
    node, dep, state = chain
    rpc = RpcClient(node.http_url)
    assert (dep.weth, dep.factory, dep.router) == (WETH, V2_FACTORY, V2_ROUTER02)
    for address in [WETH, V2_FACTORY, V2_ROUTER02] + [a for a, _ in MAINNET.values()]:
        assert len(rpc.call("eth_getCode", [address, "latest"])) > 1000, address

    # The deployment JSON round-trips.
    assert Deployment.load(state / "deployment.json") == dep

    # Tokens: mainnet addresses, decimals 6/6/8/18, names and symbols from storage.
    for symbol, (address, decimals) in MAINNET.items():
        assert dep.token(symbol).address == address
        assert call(rpc, address, "decimals()", out=["uint8"])[0] == decimals
        assert call(rpc, address, "symbol()", out=["string"])[0] == symbol
    assert call(rpc, WETH, "name()", out=["string"])[0] == "Wrapped Ether"
    assert call(rpc, WETH, "symbol()", out=["string"])[0] == "WETH"
    assert call(rpc, WETH, "decimals()", out=["uint8"])[0] == 18

    # Constructor-written state: factory feeToSetter, Router02 immutables.
    assert call(rpc, V2_FACTORY, "feeToSetter()", out=["address"])[0].lower() == dep.deployer.lower()
    assert call(rpc, V2_ROUTER02, "factory()", out=["address"])[0].lower() == V2_FACTORY.lower()
    assert call(rpc, V2_ROUTER02, "WETH()", out=["address"])[0].lower() == WETH.lower()

    # The npm pair's init-code hash is mainnet's, and every pair sits at the CREATE2 address
    # Router02's library computes.
    pair_art = uniswap_artifact(settings.tools_dir, "v2-core", "UniswapV2Pair")
    assert "0x" + keccak(bytes.fromhex(pair_art["bytecode"].removeprefix("0x"))).hex() == V2_INIT_CODE_HASH
    assert call(rpc, V2_FACTORY, "allPairsLength()", out=["uint256"])[0] == len(POOL_SPECS) == len(dep.pools)
    for pool in dep.pools:
        on_chain = call(rpc, V2_FACTORY, "getPair(address,address)", ["address", "address"], [pool.token0, pool.token1], ["address"])[0]
        assert on_chain.lower() == pool.pair.lower() == pair_address(pool.token0, pool.token1).lower()
    assert dep.pool("WETH", "USDC").pair == "0xB4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc"  # mainnet's

    # Router quotes on the seeded pools: ~3000 USDC per ETH, and a two-hop route.
    one_eth = call(rpc, V2_ROUTER02, "getAmountsOut(uint256,address[])", ["uint256", "address[]"],
                   [10**18, [WETH, MAINNET["USDC"][0]]], ["uint256[]"])[0]
    assert 2900 * 10**6 < one_eth[-1] < 3000 * 10**6
    reserves = {p.pair: call(rpc, p.pair, "getReserves()", out=["uint112", "uint112", "uint32"])[:2] for p in dep.pools}
    path = [MAINNET["USDC"][0], WETH, MAINNET["DAI"][0]]
    two_hop = call(rpc, V2_ROUTER02, "getAmountsOut(uint256,address[])", ["uint256", "address[]"], [1000 * 10**6, path], ["uint256[]"])[0]
    assert list(two_hop) == amounts_out(1000 * 10**6, path, reserves)
    assert 980 * 10**18 < two_hop[-1] < 1000 * 10**18
    path = [MAINNET["WBTC"][0], WETH]
    need = call(rpc, V2_ROUTER02, "getAmountsIn(uint256,address[])", ["uint256", "address[]"], [10**18, path], ["uint256[]"])[0]
    assert list(need) == amounts_in(10**18, path, reserves)

    # WETH deposit / withdraw.
    user = derive_account(9000)
    rpc.call("anvil_setBalance", [user.address, hex(10 * 10**18)])
    h1 = send(rpc, user, WETH, selector("deposit()"), value=3 * 10**18, gas=60_000)
    h2 = send(rpc, user, WETH, selector("withdraw(uint256)") + abi_encode(["uint256"], [10**18]), gas=60_000, legacy=True)
    r1, r2 = rpc.wait_receipts([h1, h2], timeout=20)
    assert to_int(r1["status"]) == to_int(r2["status"]) == 1
    assert call(rpc, WETH, "balanceOf(address)", ["address"], [user.address], ["uint256"])[0] == 2 * 10**18
    gas = sum(to_int(r["gasUsed"]) * to_int(r["effectiveGasPrice"]) for r in (r1, r2))
    assert to_int(rpc.call("eth_getBalance", [user.address, "latest"])) == 10 * 10**18 - 2 * 10**18 - gas

    # Re-deploying onto a deployed chain reads the deployment back (idempotent).
    again = deploy(node.http_url, settings.tools_dir)
    assert [p.pair for p in again.pools] == [p.pair for p in dep.pools]


# --- traffic --------------------------------------------------------------------------------------

@pytest.mark.timeout(90)
def test_traffic_mix_lands_on_chain(chain):
    node, dep, _ = chain
    rpc = RpcClient(node.http_url)
    gen = TrafficGenerator(node.http_url, dep, TrafficConfig(rate=0, seed=11, accounts=48, first_account=300), record=True).setup()
    stats = gen.run(count=240)
    assert stats.sent == 240 and len(stats.txs) == 240 and len(set(stats.hashes)) == 240
    assert not stats.rejected
    assert set(stats.counts) == set(KINDS), stats.counts  # every kind, each at least once
    assert {0, 1, 2} <= set(stats.tx_types) and stats.tx_types[2] > stats.tx_types[0] + stats.tx_types[1]

    receipts = rpc.wait_receipts(stats.hashes, timeout=60)
    txs = rpc.batch_strict([("eth_getTransactionByHash", [h]) for h in stats.hashes])
    ok = Counter()
    for sent, receipt, tx in zip(stats.txs, receipts, txs):
        assert tx["from"].lower() == sent.sender.lower() and to_int(tx["nonce"]) == sent.nonce
        assert to_int(tx["type"]) == sent.tx_type
        if sent.kind in SWAP_KINDS:
            assert tx["to"].lower() == V2_ROUTER02.lower()
            assert tx["input"][:10] == "0x" + selector(SWAP_SIGNATURES[sent.kind]).hex()
        ok[sent.kind in SWAP_KINDS, to_int(receipt["status"])] += 1
    assert ok[False, 0] == 0, "transfers and approvals never fail"
    swaps = ok[True, 1] + ok[True, 0]
    assert ok[True, 1] >= 0.85 * swaps, ok
    assert len({r["blockNumber"] for r in receipts}) >= 3  # spread over blocks, not one burst

    # Deterministic given the seed: the same intents (kinds) from other accounts.
    again = TrafficGenerator(node.http_url, dep, TrafficConfig(rate=0, seed=11, accounts=48, first_account=400), record=True).setup()
    assert [t.kind for t in again.run(count=40).txs] == [t.kind for t in stats.txs[:40]]


@pytest.mark.timeout(60)
def test_traffic_rate_is_poisson_paced(chain):
    node, dep, _ = chain
    gen = TrafficGenerator(node.http_url, dep, TrafficConfig(rate=25, seed=3, accounts=64, first_account=500)).setup()
    stats = gen.run(count=75)
    assert stats.sent == 75
    assert 25 * 0.65 < stats.rate < 25 * 1.35, stats.summary()


# --- searcher -------------------------------------------------------------------------------------

@pytest.mark.timeout(90)
def test_searcher_sandwiches_victims(settings, tmp_path):
    """On a node that mines on demand, three victims are sandwiched in one block, in fee order, with
    each victim's own limit still met and the labelled profit equal to the searcher's balance change."""
    node = AnvilNode(find_anvil(settings.anvil_bin), block_time=None, extra_args=["--no-mining"],
                     log_path=tmp_path / "anvil.log").start()
    stop = threading.Event()
    try:
        dep = deploy(node.http_url, settings.tools_dir)
        rpc = RpcClient(node.http_url)
        labels_path = tmp_path / "labels.jsonl"
        searcher = Searcher(node.http_url, node.ws_url, dep, labels_path, SearcherConfig(share=1.0, seed=1)).setup()
        thread = searcher.start(stop)
        assert searcher.ready.wait(15)

        victims = [derive_account(7000 + i) for i in range(3)]
        fund_accounts(node.http_url, dep, [v.address for v in victims], eth_wei=1000 * 10**18,
                      token_units=token_amounts_usd(dep, 1_000_000))
        reserves = {p.pair: call(rpc, p.pair, "getReserves()", out=["uint112", "uint112", "uint32"])[:2] for p in dep.pools}
        dai, usdc, link = (dep.token(s).address for s in ("DAI", "USDC", "LINK"))
        deadline = 2**40
        # (a) ETH -> DAI exact in, 3 % slippage, type 2
        path_a = [WETH, dai]
        q = amounts_out(30 * 10**18, path_a, reserves)[-1]
        data_a = encode_swap("swapExactETHForTokens", path=path_a, to=victims[0].address, deadline=deadline, amount_out_min=q * 97 // 100)
        # (b) USDC -> DAI exact in, 2 % slippage, legacy
        path_b = [usdc, dai]
        q = amounts_out(60_000 * 10**6, path_b, reserves)[-1]
        data_b = encode_swap("swapExactTokensForTokens", path=path_b, to=victims[1].address, deadline=deadline,
                             amount_in=60_000 * 10**6, amount_out_min=q * 98 // 100)
        # (c) LINK -> exactly 20 ETH, 3 % slippage, type 2 with a high tip
        path_c = [link, WETH]
        need = amounts_in(20 * 10**18, path_c, reserves)[0]
        data_c = encode_swap("swapTokensForExactETH", path=path_c, to=victims[2].address, deadline=deadline,
                             amount_out=20 * 10**18, amount_in_max=need * 103 // 100)
        hashes = [
            send(rpc, victims[0], V2_ROUTER02, data_a, value=30 * 10**18, tip=GWEI // 10),
            send(rpc, victims[1], V2_ROUTER02, data_b, tip=GWEI // 2, legacy=True),
            send(rpc, victims[2], V2_ROUTER02, data_c, tip=2 * GWEI),
        ]
        wait_for(lambda: to_int(rpc.call("txpool_status")["pending"]) == 9, 20, "3 victims + 3 front-runs + 3 back-runs in the pool")
        rpc.call("evm_mine")
        labels = wait_for(lambda: len(read_labels(labels_path)) == 3 and read_labels(labels_path), 20, "3 labels")

        block = rpc.call("eth_getBlockByNumber", ["latest", False])
        assert len(block["transactions"]) == 9
        by_victim = {lab["victim_hash"]: lab for lab in labels}
        assert set(by_victim) == set(hashes)
        for h in hashes:
            lab = by_victim[h]
            assert lab["success"] and lab["same_block"] and lab["ordered"], lab
            assert lab["frontrun_index"] < lab["victim_index"] < lab["backrun_index"]
            assert lab["block_number"] == to_int(block["number"])
            assert lab["statuses"] == {"victim": 1, "frontrun": 1, "backrun": 1}
            for key in ("frontrun_hash", "victim_hash", "backrun_hash"):
                assert block["transactions"].index(lab[key]) == lab[key.replace("hash", "index")]
            # the victim's own limit held
            if lab["victim_method"].startswith("swapExact"):
                assert int(lab["victim_realised_out"]) >= int(lab["victim_limit"])
            else:
                assert int(lab["victim_realised_in"]) <= int(lab["victim_limit"])
            # fees: front-run above the victim, back-run below (anvil orders by max fee)
            assert int(lab["fees"]["frontrun"][0]) > int(lab["fees"]["victim"][0]) > int(lab["fees"]["backrun"][0])
            assert int(lab["profit_token_in"]) > 0 and int(lab["profit_wei"]) > 0

            # Realised profit == the searcher's balance change, recomputed here from the node.
            n = lab["block_number"]
            fr, br = rpc.batch_strict([("eth_getTransactionReceipt", [lab["frontrun_hash"]]),
                                       ("eth_getTransactionReceipt", [lab["backrun_hash"]])])
            assert fr["from"].lower() == br["from"].lower() == lab["searcher"].lower()
            gas = sum(to_int(r["gasUsed"]) * to_int(r["effectiveGasPrice"]) for r in (fr, br))
            assert int(lab["gas_cost_wei"]) == gas
            eth_delta = to_int(rpc.call("eth_getBalance", [lab["searcher"], hex(n)])) - to_int(rpc.call("eth_getBalance", [lab["searcher"], hex(n - 1)]))
            if lab["token_in"] == WETH:
                assert eth_delta == int(lab["profit_wei"]) == int(lab["profit_token_in"]) - gas
            else:
                bal = lambda blk: int.from_bytes(rpc.eth_call(lab["token_in"], SEL_BALANCE_OF + bytes(12) + bytes.fromhex(lab["searcher"][2:]), hex(blk)), "big")  # noqa: E731
                assert eth_delta == -gas
                assert bal(n) - bal(n - 1) == int(lab["profit_token_in"])
            assert lab["balance_consistent"] is True
        assert {lab["token_in_symbol"] for lab in labels} == {"WETH", "USDC", "LINK"}
        assert searcher.stats["succeeded"] == 3
    finally:
        stop.set()
        node.stop()
    thread.join(10)
    assert not thread.is_alive()


# --- the handle and the CLI -----------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_start_devnet_runs_traffic_and_searcher(settings_factory, tmp_path):
    settings = settings_factory(MEV_TRAFFIC_RATE="20")
    handle = start_devnet(settings, block_time=1, seed=5, state_dir=tmp_path / "dn", traffic_accounts=48, searcher_share=1.0)
    try:
        assert handle.deployment_path.is_file() and handle.labels_path.is_file()
        assert Deployment.load(handle.deployment_path).router == V2_ROUTER02
        info = json.loads((tmp_path / "dn" / "devnet.json").read_text())
        assert info["ws_url"] == handle.ws_url and info["searchers"] == handle.searcher.addresses
        wait_for(lambda: handle.traffic.stats.sent >= 40, 30, "background traffic")

        # A bounded run next to the background traffic: exactly N txs, all mined.
        rpc = RpcClient(handle.http_url)
        bounded = handle.run_traffic(count=30)
        assert len(bounded.hashes) == len(set(bounded.hashes)) == 30
        assert len(rpc.wait_receipts(bounded.hashes, timeout=30)) == 30

        # A juicy victim on the live chain gets sandwiched and labelled.
        victim = derive_account(7100)
        fund_accounts(handle.http_url, handle.deployment, [victim.address], eth_wei=500 * 10**18, token_units={})
        uni = handle.deployment.token("UNI").address
        reserves = {p.pair: call(rpc, p.pair, "getReserves()", out=["uint112", "uint112", "uint32"])[:2] for p in handle.deployment.pools}
        q = amounts_out(40 * 10**18, [WETH, uni], reserves)[-1]
        data = encode_swap("swapExactETHForTokens", path=[WETH, uni], to=victim.address, deadline=2**40, amount_out_min=q * 90 // 100)
        vh = send(rpc, victim, V2_ROUTER02, data, value=40 * 10**18, tip=GWEI)
        label = wait_for(lambda: next((lab for lab in handle.labels() if lab["victim_hash"] == vh), None), 30, "a label for the victim")
        assert label["token_in_symbol"] == "WETH" and label["token_path_symbols"] == ["WETH", "UNI"]
        assert label["balance_consistent"] is True
        assert handle.searcher.stats["attempted"] >= 1
        assert "traffic: sent" in handle.status()
    finally:
        handle.stop()
    assert handle.node.process.poll() is not None
    assert all(not t.is_alive() for t in handle.threads)


@pytest.mark.timeout(60)
def test_cli_deploy_and_traffic_on_a_running_node(chain, tmp_path):
    node, dep, _ = chain
    runner = CliRunner()
    out = tmp_path / "dep.json"
    res = runner.invoke(devnet_cli, ["deploy", "--rpc-url", node.http_url, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert str(out) in res.output and dep.pool("WETH", "USDC").pair in res.output
    assert [p.pair for p in Deployment.load(out).pools] == [p.pair for p in dep.pools]
    res = runner.invoke(devnet_cli, ["traffic", "--rpc-url", node.http_url, "--deployment", str(out), "--rate", "0",
                                     "--count", "12", "--accounts", "12", "--first-account", "600"])
    assert res.exit_code == 0, res.output
    assert "sent 12 tx" in res.output


@pytest.mark.timeout(90)
def test_cli_up_for_a_bounded_duration(settings_factory, tmp_path):
    settings_factory()
    res = CliRunner().invoke(devnet_cli, ["up", "--port", "0", "--block-time", "1", "--rate", "10", "--duration", "3",
                                          "--state-dir", str(tmp_path / "up"), "--status-every", "1"])
    assert res.exit_code == 0, res.output
    assert str(tmp_path / "up" / "deployment.json") in res.output
    assert str(tmp_path / "up" / "sandwich_labels.jsonl") in res.output
    assert "traffic: sent" in res.output
    assert Path(tmp_path / "up" / "deployment.json").is_file()
