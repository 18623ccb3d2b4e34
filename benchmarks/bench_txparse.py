"""Micro-benchmark of mev_assets.core.txparse against eth-account, measured in the same run.

    .venv/bin/python benchmarks/bench_txparse.py [--seconds 1.0]

Workload: the 9 real transactions of mainnet block 19807080 (tests/fixtures/mainnet) plus
freshly signed legacy (EIP-155 and pre-155), type 1, type 2 and type 4 transactions with
realistic calldata; every transaction is run through each function in turn.

Baselines (the "library" way of doing the same work):
* raw:  ``Account.recover_transaction(raw)`` (eth-account decodes with its rlp Serializable /
        TypedTransaction classes and recovers via eth-keys) + ``keccak(raw)`` for the hash.
* rpc:  JSON object -> eth-account transaction dict -> ``TypedTransaction.from_dict(...).encode()``
        (legacy: ``encode_transaction``) -> keccak compared with ``hash`` -> recovered sender
        compared with ``from``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eth_account import Account  # noqa: E402
from eth_account._utils.legacy_transactions import (  # noqa: E402
    encode_transaction,
    serializable_unsigned_transaction_from_dict,
)
from eth_account.typed_transactions import TypedTransaction  # noqa: E402
from eth_hash.auto import keccak  # noqa: E402
from eth_utils import to_checksum_address  # noqa: E402

from mev_assets.core.txparse import decode_raw_transaction, transaction_from_rpc  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "mainnet"


def _signed_workload() -> list[tuple[str, dict]]:
    key = b"\x5a" * 32
    acct = Account.from_key(key)
    to = to_checksum_address("0x7a250d5630b4cf539739df2c5dacb4c659f2488d")
    data = "0x7ff36ab5" + "00" * 31 + "01" + "00" * 31 + "80" + "11" * 32 + "00" * 31 + "02" + ("00" * 12 + "22" * 20) * 2
    access_list = [{"address": to, "storageKeys": ["0x" + "00" * 31 + "08", "0x" + "00" * 31 + "09"]}]
    auth = Account.sign_authorization({"chainId": 1, "address": to, "nonce": 5}, b"\x07" * 32)
    base = {"nonce": 17, "gas": 250_000, "to": to, "value": 3 * 10**17, "data": data}
    txs = [
        {**base, "gasPrice": 25 * 10**9, "chainId": 1},
        {**base, "gasPrice": 25 * 10**9},
        {**base, "type": 1, "gasPrice": 25 * 10**9, "chainId": 1, "accessList": access_list},
        {**base, "type": 2, "maxFeePerGas": 40 * 10**9, "maxPriorityFeePerGas": 10**9, "chainId": 1, "accessList": []},
        {**base, "type": 2, "maxFeePerGas": 40 * 10**9, "maxPriorityFeePerGas": 10**9, "chainId": 1,
         "accessList": access_list},
        {**base, "type": 4, "maxFeePerGas": 40 * 10**9, "maxPriorityFeePerGas": 10**9, "chainId": 1, "accessList": [],
         "authorizationList": [auth]},
    ]  # fmt: skip
    out = []
    for tx in txs:
        signed = acct.sign_transaction(tx)
        t = tx.get("type", 0)
        obj = {
            "hash": "0x" + bytes(signed.hash).hex(), "from": acct.address.lower(), "type": hex(t),
            "nonce": hex(tx["nonce"]), "gas": hex(tx["gas"]), "to": tx["to"].lower(), "value": hex(tx["value"]),
            "input": tx["data"], "v": hex(signed.v), "r": hex(signed.r), "s": hex(signed.s),
        }  # fmt: skip
        if t == 0:
            obj["gasPrice"] = hex(tx["gasPrice"])
            if "chainId" in tx:
                obj["chainId"] = "0x1"
        else:
            obj.update(chainId="0x1", yParity=hex(signed.v), accessList=tx["accessList"])
            if t == 1:
                obj["gasPrice"] = hex(tx["gasPrice"])
            else:
                obj.update(maxFeePerGas=hex(tx["maxFeePerGas"]), maxPriorityFeePerGas=hex(tx["maxPriorityFeePerGas"]))
                obj["gasPrice"] = obj["maxFeePerGas"]
            if t == 4:
                obj["authorizationList"] = [
                    {"chainId": hex(a.chain_id), "address": "0x" + bytes(a.address).hex(), "nonce": hex(a.nonce),
                     "yParity": hex(a.y_parity), "r": hex(a.r), "s": hex(a.s)}
                    for a in tx["authorizationList"]
                ]  # fmt: skip
        out.append(("0x" + bytes(signed.raw_transaction).hex(), obj))
    return out


def workload() -> list[tuple[str, dict]]:
    block = json.loads((FIXTURES / "block-19807080.json").read_text())[0]
    trace = json.loads((FIXTURES / "block-19807080-trace.json").read_text())[0]
    raws = [t["meta"]["byte_code"] for t in trace["block_trace"]["txn_info"]]
    return list(zip(raws, block["transactions"])) + _signed_workload()


# --------------------------------------------------------------------------------------
# baselines

_TYPED_KEYS = ("chainId", "nonce", "gas", "to", "value", "accessList", "gasPrice", "maxFeePerGas",
               "maxPriorityFeePerGas", "maxFeePerBlobGas", "blobVersionedHashes", "authorizationList", "r", "s")  # fmt: skip


def baseline_raw(raw: str) -> tuple[str, str]:
    sender = Account.recover_transaction(raw)
    return "0x" + keccak(bytes.fromhex(raw[2:])).hex(), sender.lower()


def baseline_rpc(obj: dict) -> str:
    t = int(obj.get("type", "0x0"), 16)
    to = to_checksum_address(obj["to"]) if obj.get("to") else None
    if t == 0:
        d = {"nonce": obj["nonce"], "gasPrice": obj["gasPrice"], "gas": obj["gas"], "value": obj["value"],
             "data": obj["input"], "to": to or b""}  # fmt: skip
        v = int(obj["v"], 16)
        if v >= 35:
            d["chainId"] = (v - 35) // 2
        unsigned = serializable_unsigned_transaction_from_dict(d)
        raw = encode_transaction(unsigned, vrs=(v, int(obj["r"], 16), int(obj["s"], 16)))
    else:
        d = {k: obj[k] for k in _TYPED_KEYS if k in obj and not (t >= 2 and k == "gasPrice")}
        d["type"] = t
        d["data"] = obj["input"]
        d["v"] = obj.get("yParity", obj.get("v"))
        if to:
            d["to"] = to
        if t == 4:
            d["authorizationList"] = [{**a, "address": to_checksum_address(a["address"])} for a in obj["authorizationList"]]
        raw = TypedTransaction.from_dict(d).encode()
    if "0x" + keccak(raw).hex() != obj["hash"]:
        raise ValueError("hash mismatch")
    sender = Account.recover_transaction(raw).lower()
    if sender != obj["from"]:
        raise ValueError("bad signature")
    return sender


# --------------------------------------------------------------------------------------


def per_tx_us(fn, items, seconds: float) -> float:
    for it in items:  # warm-up
        fn(it)
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for it in items:
            fn(it)
        n += len(items)
        now = time.perf_counter()
        if now >= deadline:
            return (now - start) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0, help="time budget per measurement")
    args = ap.parse_args()

    items = workload()
    raws = [r for r, _ in items]
    objs = [o for _, o in items]
    # sanity: all paths agree before timing
    for raw, obj in items:
        a, b = decode_raw_transaction(raw), transaction_from_rpc(obj, 1 if obj.get("chainId") else None)
        assert a == b and a.hash == obj["hash"] and a.sender == obj["from"], obj["hash"]
        assert baseline_raw(raw) == (a.hash, a.sender) and baseline_rpc(obj) == a.sender

    results = {
        "decode_raw_transaction": per_tx_us(decode_raw_transaction, raws, args.seconds),
        "baseline raw (eth-account recover_transaction + keccak)": per_tx_us(baseline_raw, raws, args.seconds),
        "transaction_from_rpc": per_tx_us(transaction_from_rpc, objs, args.seconds),
        "baseline rpc (eth-account from_dict/encode + recover)": per_tx_us(baseline_rpc, objs, args.seconds),
    }
    print(f"workload: {len(items)} transactions (9 mainnet block 19807080, {len(items) - 9} freshly signed)")
    for name, us in results.items():
        print(f"  {name:58s} {us:8.1f} us/tx  {1e6 / us:8.0f} tx/s")
    raw_ratio = results["baseline raw (eth-account recover_transaction + keccak)"] / results["decode_raw_transaction"]
    rpc_ratio = results["baseline rpc (eth-account from_dict/encode + recover)"] / results["transaction_from_rpc"]
    print(f"  speed-up decode_raw_transaction vs baseline: {raw_ratio:.1f}x")
    print(f"  speed-up transaction_from_rpc vs baseline:   {rpc_ratio:.1f}x")


if __name__ == "__main__":
    main()
