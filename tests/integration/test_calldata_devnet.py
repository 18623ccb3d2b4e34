"""Swaps made on the local chain decode to the parameters their sender used.

Two sources of truth on a real anvil with Uniswap V2 at its mainnet addresses: swaps this test
signs itself (it knows every parameter), and the traffic generator's flow checked against what
the chain did with it (receipts: Transfer/Approval logs, inclusion block time).
"""

from __future__ import annotations

import time

import polars as pl
import pytest
from eth_utils import keccak

from mev_assets.core.calldata import decode_calldata
from mev_assets.core.registry import load_registry
from mev_assets.core.txparse import transaction_from_rpc, transaction_to_row
from mev_assets.devnet.contracts import fund_accounts
from mev_assets.devnet.rpc import RpcClient, derive_account, to_int
from mev_assets.devnet.runner import start_devnet
from mev_assets.devnet.uniswap import encode_swap

pytestmark = pytest.mark.integration

TRANSFER = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
APPROVAL = "0x" + keccak(text="Approval(address,address,uint256)").hex()
GWEI = 10**9


def fetch_rows(rpc: RpcClient, hashes: list[str]) -> pl.DataFrame:
    """The node's transaction objects, validated and shaped like mempool_transactions rows."""
    objs = rpc.batch_strict([("eth_getTransactionByHash", [h]) for h in hashes])
    rows = [transaction_to_row(transaction_from_rpc(o)) for o in objs]
    return pl.DataFrame(rows).select("hash", "from", "to", "value", "input", "data_4bytes")


def transfers(receipt: dict) -> list[tuple[str, str, str, int]]:
    """(token, from, to, amount) of every ERC-20 Transfer log, in order."""
    return [(log["address"].lower(), "0x" + log["topics"][1][26:], "0x" + log["topics"][2][26:], int(log["data"], 16))
            for log in receipt["logs"] if log["topics"][0] == TRANSFER]


@pytest.mark.timeout(300)
def test_devnet_swaps_decode_to_the_parameters_the_sender_used(settings_factory):
    settings = settings_factory()
    registry = load_registry(settings.protocol_registry)
    with start_devnet(settings, block_time=1, traffic=False, searcher=False) as dn:
        dep = dn.deployment
        rpc = RpcClient(dn.http_url)
        weth, usdc, dai = dep.weth.lower(), dep.token("USDC").address.lower(), dep.token("DAI").address.lower()
        router = dep.router.lower()

        # --- swaps this test signs: every parameter known --------------------------------------------
        me = derive_account(9_000)
        fund_accounts(dn.http_url, dep, [me.address], eth_wei=100 * 10**18,
                      token_units={"USDC": 1_000_000 * 10**6, "DAI": 1_000_000 * 10**18})
        now = to_int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"])
        other = "0x" + "5e" * 20
        intents = [  # (method, params, value)
            ("swapExactETHForTokens", {"path": [weth, usdc], "to": me.address.lower(), "deadline": now + 600,
                                       "amount_out_min": 1_000 * 10**6}, 10**18),
            ("swapETHForExactTokens", {"path": [weth, usdc], "to": other, "deadline": now + 1200,
                                       "amount_out": 1_500 * 10**6}, 2 * 10**18),
            ("swapExactTokensForETH", {"path": [usdc, weth], "to": me.address.lower(), "deadline": now + 300,
                                       "amount_in": 500 * 10**6, "amount_out_min": 10**16}, 0),
            ("swapTokensForExactETH", {"path": [usdc, weth], "to": me.address.lower(), "deadline": now + 1800,
                                       "amount_out": 10**17, "amount_in_max": 10_000 * 10**6}, 0),
            ("swapExactTokensForTokens", {"path": [dai, weth, usdc], "to": other, "deadline": now + 900,
                                          "amount_in": 1_000 * 10**18, "amount_out_min": 900 * 10**6}, 0),
            ("swapTokensForExactTokens", {"path": [usdc, dai], "to": me.address.lower(), "deadline": now + 1200,
                                          "amount_out": 500 * 10**18, "amount_in_max": 550 * 10**6}, 0),
        ]
        nonce = to_int(rpc.call("eth_getTransactionCount", [me.address, "pending"]))
        own: list[str] = []
        for i, (method, params, value) in enumerate(intents):
            data = encode_swap(method, **params)
            raw, h = me.sign({"chainId": dep.chain_id, "nonce": nonce + i, "to": dep.router, "value": value, "data": data,
                              "gas": 400_000, "type": 2, "maxFeePerGas": 200 * GWEI, "maxPriorityFeePerGas": GWEI})
            rpc.call("eth_sendRawTransaction", [raw])
            own.append(h)

        # --- the traffic generator's flow -------------------------------------------------------------
        stats = dn.run_traffic(count=60)
        sent = {t.hash: t for t in stats.txs}
        hashes = own + list(sent)
        receipts = dict(zip(hashes, rpc.wait_receipts(hashes, timeout=120)))

        started = time.perf_counter()
        out = decode_calldata(fetch_rows(rpc, hashes), registry)
        elapsed = time.perf_counter() - started
        rows = {r["hash"]: r for r in out.iter_rows(named=True)}
        assert elapsed < 10, "decoding 66 transactions took over 10 s"

        for h, (method, params, value) in zip(own, intents):
            row = rows[h]
            assert (row["protocol"], row["method"], row["decode_status"]) == ("uniswap_v2_router02", method, "decoded")
            assert receipts[h]["status"] == "0x1", method
            exact_in = "Exact" in method.split("For")[0]
            assert row["swap_kind"] == ("exact_in" if exact_in else "exact_out")
            assert (row["path"], row["token_in"], row["token_out"]) == (params["path"], params["path"][0], params["path"][-1])
            assert (row["recipient"], row["deadline"]) == (params["to"], params["deadline"])
            eth_in = method.startswith("swapExactETH") or method.startswith("swapETH")
            want_in = value if method == "swapExactETHForTokens" else params.get("amount_in")
            want_in_max = value if method == "swapETHForExactTokens" else params.get("amount_in_max")
            assert row["amount_in"] == (str(want_in) if want_in is not None else None), method
            assert row["amount_in_max"] == (str(want_in_max) if want_in_max is not None else None), method
            assert row["amount_out"] == (str(params["amount_out"]) if "amount_out" in params else None), method
            assert row["amount_out_min"] == (str(params["amount_out_min"]) if "amount_out_min" in params else None), method
            assert eth_in == (row["token_in_symbol"] == "WETH")

        kinds_seen, swaps_checked = set(), 0
        for h, tx in sent.items():
            row, receipt = rows[h], receipts[h]
            kinds_seen.add(tx.kind)
            if tx.kind == "eth_transfer":
                assert row["decode_status"] == "no_calldata"
                continue
            assert row["decode_status"] == "decoded", (tx.kind, row["decode_error"])
            logs = transfers(receipt)
            if tx.kind == "token_transfer":
                token, _, to, amount = logs[0]
                assert (row["method"], row["token_in"], row["recipient"], row["amount_in"]) == ("transfer", token, to, str(amount))
                continue
            if tx.kind == "approval":
                approval = next(log for log in receipt["logs"] if log["topics"][0] == APPROVAL)
                assert (row["method"], row["token_in"], row["amount_in"]) == (
                    "approve", approval["address"].lower(), str(int(approval["data"], 16)))
                continue
            assert (row["protocol"], row["method"]) == ("uniswap_v2_router02", tx.kind)
            if receipt["status"] != "0x1":
                continue  # reverted (e.g. a later swap moved the price past its limit): nothing to compare with
            block = rpc.call("eth_getBlockByNumber", [receipt["blockNumber"], False])
            assert row["deadline"] >= to_int(block["timestamp"])
            # the chain moved the path's tokens in order: the input into the first pair, then each hop's output
            assert [t[0] for t in logs] == row["path"]
            realised_in, realised_out = logs[0][3], logs[-1][3]
            if row["swap_kind"] == "exact_in":
                assert row["amount_in"] == str(realised_in) and int(row["amount_out_min"]) <= realised_out
            else:
                assert row["amount_out"] == str(realised_out) and int(row["amount_in_max"]) >= realised_in
            if row["path"][0] == weth:
                assert logs[0][1] == router  # the router wrapped the sender's ETH
                assert int(row["amount_in"] or row["amount_in_max"]) == to_int(rpc.call("eth_getTransactionByHash", [h])["value"])
            if row["path"][-1] != weth:
                assert logs[-1][2] == row["recipient"]
            swaps_checked += 1
        assert {"swapExactETHForTokens", "swapExactTokensForETH", "token_transfer"} <= kinds_seen
        assert swaps_checked >= 20, f"only {swaps_checked} traffic swaps were mined to compare with"
