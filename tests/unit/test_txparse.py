"""Tests for mev_assets.core.txparse.

Expected values come from real mainnet data (tests/fixtures/mainnet, see PROVENANCE.md),
from eth-account signatures, or from the rlp library: never from the code under test.
"""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import threading
from pathlib import Path

import pytest
import rlp
from eth_account import Account
from eth_hash.auto import keccak
from eth_keys import keys as eth_keys
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mev_assets.core.txparse import (
    InvalidTransaction,
    Transaction,
    decode_raw_transaction,
    keccak256,
    recover_sender,
    transaction_from_rpc,
    transaction_to_row,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mainnet"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


# --------------------------------------------------------------------------------------
# fixtures and helpers


def _load_json(name):
    return json.loads((FIXTURES / name).read_text())


BLOCK = _load_json("block-19807080.json")[0]
BLOCK_TXS = BLOCK["transactions"]
TRACE_RAWS = [t["meta"]["byte_code"] for t in _load_json("block-19807080-trace.json")[0]["block_trace"]["txn_info"]]
VECTORS = _load_json("rlp-test-vectors.json")


def q(x) -> int:
    return int(x, 16)


def h2b(x: str) -> bytes:
    return bytes.fromhex(x[2:])


def expect_invalid(code, fn, *args, **kwargs) -> InvalidTransaction:
    with pytest.raises(InvalidTransaction) as info:
        fn(*args, **kwargs)
    exc = info.value
    assert exc.code == code, str(exc)
    assert str(exc) == f"{exc.code}: {exc.detail}"
    assert exc.detail
    return exc


KEY = b"\x42" * 32
ACCOUNT = Account.from_key(KEY)
SENDER = ACCOUNT.address.lower()
TO = "0x" + "ab" * 20
ACCESS_LIST = [
    {"address": "0x" + "01" * 20, "storageKeys": ["0x" + "00" * 31 + "01", "0x" + "ff" * 32]},
    {"address": "0x" + "02" * 20, "storageKeys": []},
]
CALLDATA = "0xa9059cbb" + "00" * 12 + "cd" * 20 + "00" * 31 + "64"


def signed_case(kind: str, *, key: bytes = KEY, **over):
    """Sign a transaction with eth-account; returns (raw_hex, node-like JSON object, sender)."""
    acct = Account.from_key(key)
    base = {"nonce": 7, "gas": 90_000, "to": to_checksum_address(TO), "value": 10**18 + 1, "data": CALLDATA}
    if kind == "legacy":
        tx = {**base, "gasPrice": 30 * 10**9, "chainId": 1}
    elif kind == "legacy_pre155":
        tx = {**base, "gasPrice": 30 * 10**9}
    elif kind == "type1":
        tx = {**base, "type": 1, "gasPrice": 30 * 10**9, "chainId": 1, "accessList": ACCESS_LIST}
    elif kind == "type2":
        tx = {**base, "type": 2, "maxFeePerGas": 40 * 10**9, "maxPriorityFeePerGas": 2 * 10**9, "chainId": 1,
              "accessList": ACCESS_LIST}  # fmt: skip
    elif kind == "type4":
        auth = Account.sign_authorization({"chainId": 1, "address": "0x" + "cd" * 20, "nonce": 3}, b"\x07" * 32)
        tx = {**base, "type": 4, "maxFeePerGas": 40 * 10**9, "maxPriorityFeePerGas": 2 * 10**9, "chainId": 1,
              "accessList": [], "authorizationList": [auth]}  # fmt: skip
    else:
        raise AssertionError(kind)
    tx.update(over)
    if tx.get("to") is None:
        tx.pop("to", None)
    signed = acct.sign_transaction(tx)
    return "0x" + bytes(signed.raw_transaction).hex(), rpc_object(tx, signed, acct.address), acct.address.lower()


def rpc_object(tx: dict, signed, address: str) -> dict:
    """The JSON object a node returns for a signed tx (geth's field set)."""
    tx_type = tx.get("type", 0)
    data = tx["data"] if isinstance(tx["data"], str) else "0x" + bytes(tx["data"]).hex()
    obj = {
        "blockHash": None,
        "blockNumber": None,
        "hash": "0x" + bytes(signed.hash).hex(),
        "from": address,
        "type": hex(tx_type),
        "nonce": hex(tx["nonce"]),
        "gas": hex(tx["gas"]),
        "to": tx["to"].lower() if tx.get("to") else None,
        "value": hex(tx["value"]),
        "input": data,
        "v": hex(signed.v),
        "r": hex(signed.r),
        "s": hex(signed.s),
    }
    if tx_type == 0:
        obj["gasPrice"] = hex(tx["gasPrice"])
        if "chainId" in tx:
            obj["chainId"] = hex(tx["chainId"])
        return obj
    obj["chainId"] = hex(tx["chainId"])
    obj["yParity"] = hex(signed.v)
    obj["accessList"] = [
        {"address": e["address"], "storageKeys": list(e["storageKeys"])} for e in tx.get("accessList", [])
    ]
    if tx_type == 1:
        obj["gasPrice"] = hex(tx["gasPrice"])
    else:
        obj["maxFeePerGas"] = hex(tx["maxFeePerGas"])
        obj["maxPriorityFeePerGas"] = hex(tx["maxPriorityFeePerGas"])
        obj["gasPrice"] = hex(tx["maxFeePerGas"])  # geth's pending-tx convention
    if tx_type == 4:
        obj["authorizationList"] = [
            {"chainId": hex(a.chain_id), "address": "0x" + bytes(a.address).hex(), "nonce": hex(a.nonce),
             "yParity": hex(a.y_parity), "r": hex(a.r), "s": hex(a.s)}
            for a in tx["authorizationList"]
        ]  # fmt: skip
    return obj


def assert_matches_rpc(tx: Transaction, obj: dict, raw_hex: str) -> None:
    """Field-by-field comparison of a Transaction with a node's JSON object."""
    tx_type = q(obj["type"])
    assert tx.hash == obj["hash"].lower()
    assert tx.sender == obj["from"].lower()
    assert tx.to == (obj["to"].lower() if obj.get("to") else None)
    assert tx.value == q(obj["value"])
    assert tx.nonce == q(obj["nonce"])
    assert tx.gas == q(obj["gas"])
    assert tx.input == h2b(obj["input"])
    assert tx.tx_type == tx_type
    assert tx.chain_id == (q(obj["chainId"]) if "chainId" in obj else None)
    if tx_type < 2:
        assert tx.gas_price == tx.gas_tip_cap == tx.gas_fee_cap == q(obj["gasPrice"])
    else:
        assert tx.gas_tip_cap == q(obj["maxPriorityFeePerGas"])
        assert tx.gas_fee_cap == q(obj["maxFeePerGas"])
        assert tx.gas_price == q(obj["maxFeePerGas"])  # geth's tx.GasPrice() for dynamic-fee txs
    assert tx.raw == h2b(raw_hex)
    assert tx.hash == "0x" + keccak(h2b(raw_hex)).hex()


# --------------------------------------------------------------------------------------
# real mainnet data


def test_fixture_sanity():
    assert len(BLOCK_TXS) == len(TRACE_RAWS) == 9
    assert {q(t["type"]) for t in BLOCK_TXS} == {0, 2}


@pytest.mark.parametrize("i", range(9))
def test_block_raw_tx_decodes_to_node_json(i):
    obj, raw = BLOCK_TXS[i], TRACE_RAWS[i]
    tx = decode_raw_transaction(raw)
    assert_matches_rpc(tx, obj, raw)
    assert decode_raw_transaction(h2b(raw)) == tx  # bytes input too
    assert decode_raw_transaction(raw, expected_chain_id=1) == tx


@pytest.mark.parametrize("i", range(9))
def test_block_rpc_tx_validates_and_reencodes_to_trace_raw(i):
    obj, raw = BLOCK_TXS[i], TRACE_RAWS[i]
    tx = transaction_from_rpc(obj, expected_chain_id=1)
    assert tx.raw == h2b(raw)
    assert_matches_rpc(tx, obj, raw)
    assert tx == decode_raw_transaction(raw)


def test_block_rows():
    for obj, raw in zip(BLOCK_TXS, TRACE_RAWS):
        row = transaction_to_row(transaction_from_rpc(obj, 1))
        assert json.loads(json.dumps(row)) == row
        assert set(row) == {"hash", "chain_id", "tx_type", "from", "to", "value", "nonce", "gas", "gas_price",
                            "gas_tip_cap", "gas_fee_cap", "data_size", "data_4bytes", "input", "raw_tx"}  # fmt: skip
        assert row["hash"] == obj["hash"]
        assert row["from"] == obj["from"]
        assert row["to"] == obj["to"]
        assert row["chain_id"] == 1
        assert row["value"] == str(q(obj["value"]))
        assert row["nonce"] == q(obj["nonce"]) and row["gas"] == q(obj["gas"])
        fee_cap = obj.get("maxFeePerGas", obj["gasPrice"])
        assert row["gas_fee_cap"] == row["gas_price"] == str(q(fee_cap))
        assert row["gas_tip_cap"] == str(q(obj.get("maxPriorityFeePerGas", obj["gasPrice"])))
        assert row["input"] == obj["input"]
        assert row["data_size"] == (len(obj["input"]) - 2) // 2
        assert row["data_4bytes"] == (obj["input"][:10] if len(obj["input"]) >= 10 else "")
        assert row["raw_tx"] == raw


def test_rlp_vectors_roundtrip_and_wrapped_form():
    for vec in VECTORS["rlp_roundtrip"]:
        tx = decode_raw_transaction(vec["rlpIn"])
        assert tx.hash == vec["hash"]
        assert "0x" + tx.raw.hex() == vec["rlpOut"]
        # the sender agrees with eth-account's independent recovery
        assert tx.sender == Account.recover_transaction(vec["rlpOut"]).lower()
    wrapped = VECTORS["parse_tx"][1]
    tx = decode_raw_transaction(wrapped["rlpIncorrect_wrapped"])
    assert tx.hash == wrapped["hash"]
    assert "0x" + tx.raw.hex() == wrapped["rlpCorrect"]
    assert tx == decode_raw_transaction(wrapped["rlpCorrect"])


def test_rlp_vector_expected_sender():
    vec = VECTORS["parse_tx"][0]
    tx = decode_raw_transaction(vec["rlp"])
    assert tx.sender == vec["expected_from"]
    assert tx.hash == vec["hash"]
    assert tx.chain_id == 1 and tx.tx_type == 2


# --------------------------------------------------------------------------------------
# freshly signed transactions


@pytest.mark.parametrize(
    "kind,create",
    [(k, c) for k in ("legacy", "legacy_pre155", "type1", "type2", "type4") for c in (False, True)
     if not (k == "type4" and c)],  # set-code transactions cannot create contracts
)  # fmt: skip
def test_signed_roundtrip(kind, create):
    raw, obj, sender = signed_case(kind, **({"to": None} if create else {}))
    a = decode_raw_transaction(raw)
    b = transaction_from_rpc(obj)
    assert a == b
    assert_matches_rpc(a, obj, raw)
    assert a.sender == sender
    if kind == "legacy_pre155":
        assert a.chain_id is None
        expect_invalid("no_chain_id", transaction_from_rpc, obj, expected_chain_id=1)
        expect_invalid("no_chain_id", decode_raw_transaction, raw, expected_chain_id=1)
    else:
        assert transaction_from_rpc(obj, expected_chain_id=1) == a


def test_signed_wrapped_typed_tx():
    raw, _obj, sender = signed_case("type4")
    wrapped = rlp.encode(h2b(raw))
    assert wrapped[0] in (0xB8, 0xB9)
    tx = decode_raw_transaction(wrapped)
    assert tx.raw == h2b(raw) and tx.sender == sender


def test_rpc_variants_accepted():
    raw, obj, sender = signed_case("type2")
    # older nodes: only v, `data` and `gasLimit` spellings, checksummed/uppercase hex, no gasPrice
    alt = dict(obj)
    del alt["yParity"], alt["gasPrice"]
    alt["data"] = alt.pop("input")
    alt["gasLimit"] = alt.pop("gas")
    alt["from"] = ACCOUNT.address
    alt["hash"] = "0x" + alt["hash"][2:].upper()
    alt["r"] = "0x" + "0" * (66 - len(alt["r"])) + alt["r"][2:]  # zero-padded r
    assert transaction_from_rpc(alt, 1).raw == h2b(raw)
    # only yParity
    alt2 = dict(obj)
    del alt2["v"]
    assert transaction_from_rpc(alt2, 1).sender == sender


def _blob_case(sidecar_version: int | None):
    """A type-3 transaction built with the rlp library and signed with eth_keys.

    The blob is all zeros; its KZG commitment is the G1 point at infinity (0xc0 || 47 zero
    bytes), and so are its proofs.
    """
    commitment = b"\xc0" + b"\x00" * 47
    versioned_hash = b"\x01" + hashlib.sha256(commitment).digest()[1:]
    unsigned = [1, 9, 10**9, 50 * 10**9, 21_000, h2b(TO), 0, b"\x12\x34", [[h2b(TO), [b"\x00" * 32]]],
                3 * 10**9, [versioned_hash]]  # fmt: skip
    pk = eth_keys.PrivateKey(KEY)
    sig = pk.sign_msg_hash(keccak(b"\x03" + rlp.encode(unsigned)))
    body = unsigned + [sig.v, sig.r, sig.s]
    canonical = b"\x03" + rlp.encode(body)
    if sidecar_version is None:
        network = canonical
    elif sidecar_version == 0:
        network = b"\x03" + rlp.encode([body, [b"\x00" * 131072], [commitment], [commitment]])
    else:
        network = b"\x03" + rlp.encode([body, b"\x01", [b"\x00" * 131072], [commitment], [commitment] * 128])
    obj = {
        "type": "0x3", "hash": "0x" + keccak(canonical).hex(), "from": SENDER, "chainId": "0x1", "nonce": "0x9",
        "maxPriorityFeePerGas": hex(10**9), "maxFeePerGas": hex(50 * 10**9), "gas": hex(21_000), "to": TO,
        "value": "0x0", "input": "0x1234", "accessList": [{"address": TO, "storageKeys": ["0x" + "00" * 32]}],
        "maxFeePerBlobGas": hex(3 * 10**9), "blobVersionedHashes": ["0x" + versioned_hash.hex()],
        "v": hex(sig.v), "yParity": hex(sig.v), "r": hex(sig.r), "s": hex(sig.s),
    }  # fmt: skip
    return canonical, network, obj


@pytest.mark.parametrize("sidecar_version", [None, 0, 1])
def test_blob_transaction(sidecar_version):
    canonical, network, obj = _blob_case(sidecar_version)
    tx = decode_raw_transaction(network)
    assert tx.raw == canonical
    assert tx.hash == obj["hash"]
    assert tx.sender == SENDER
    assert tx.tx_type == 3 and tx.to == TO and tx.input == b"\x12\x34"
    assert tx.gas_price == tx.gas_fee_cap == 50 * 10**9 and tx.gas_tip_cap == 10**9
    assert transaction_from_rpc(obj, 1) == tx


def test_blob_sidecar_mismatch_rejected():
    canonical, network, obj = _blob_case(0)
    outer = rlp.decode(network[1:])
    bad_commitment = b"\xc0" + b"\x00" * 46 + b"\x01"
    expect_invalid("bad_field", decode_raw_transaction, b"\x03" + rlp.encode([outer[0], outer[1], [bad_commitment], outer[3]]))
    expect_invalid("bad_field", decode_raw_transaction, b"\x03" + rlp.encode([outer[0], [], outer[2], outer[3]]))
    expect_invalid("bad_field", decode_raw_transaction, b"\x03" + rlp.encode([outer[0], [b"\x00" * 10], outer[2], outer[3]]))
    expect_invalid("bad_rlp", decode_raw_transaction, b"\x03" + rlp.encode([outer[0], outer[1], outer[2]]))
    # blob txs cannot create contracts
    body = rlp.decode(canonical[1:])
    body[5] = b""
    expect_invalid("bad_field", decode_raw_transaction, b"\x03" + rlp.encode(body))
    obj = dict(obj, to=None)
    expect_invalid("bad_field", transaction_from_rpc, obj)


_keys = st.integers(1, SECP256K1_N - 1).map(lambda k: k.to_bytes(32, "big"))
_u64 = st.integers(0, 2**64 - 1)
_u256 = st.integers(0, 2**256 - 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["legacy", "legacy_pre155", "type1", "type2"]),
    key=_keys,
    nonce=_u64,
    gas=_u64,
    value=_u256,
    fee=st.integers(0, 2**128),
    tip=st.integers(0, 2**64),
    chain_id=st.integers(1, 2**63),
    data=st.binary(max_size=300),
    create=st.booleans(),
)
def test_property_signed_roundtrip(kind, key, nonce, gas, value, fee, tip, chain_id, data, create):
    over = {"nonce": nonce, "gas": gas, "value": value, "data": data}
    if create:
        over["to"] = None
    if kind in ("legacy", "type1"):
        over["gasPrice"] = fee
    elif kind == "type2":
        over.update(maxFeePerGas=fee, maxPriorityFeePerGas=tip)
    if kind != "legacy_pre155":
        over["chainId"] = chain_id
    raw, obj, sender = signed_case(kind, key=key, **over)
    a = decode_raw_transaction(raw)
    b = transaction_from_rpc(obj, None if kind == "legacy_pre155" else chain_id)
    assert a == b
    assert_matches_rpc(a, obj, raw)
    assert a.sender == sender


def test_recover_sender_helper():
    msg = keccak(b"hello")
    sig = eth_keys.PrivateKey(KEY).sign_msg_hash(msg)
    assert recover_sender(msg, sig.v, sig.r, sig.s) == SENDER
    expect_invalid("bad_signature", recover_sender, msg, sig.v, sig.r, SECP256K1_N - sig.s)  # high s
    expect_invalid("bad_signature", recover_sender, msg, 2, sig.r, sig.s)
    expect_invalid("bad_signature", recover_sender, msg, sig.v, 0, sig.s)
    expect_invalid("bad_signature", recover_sender, b"short", sig.v, sig.r, sig.s)


@given(st.binary(max_size=600))
@settings(max_examples=200, deadline=None)
def test_keccak256_matches_reference(data):
    assert keccak256(data) == keccak(data)


def test_keccak256_thread_safe():
    inputs = [bytes([i]) * (i * 37 % 500) for i in range(64)]
    expected = [keccak(x) for x in inputs]
    errors = []

    def work():
        for _ in range(300):
            for x, e in zip(inputs, expected):
                if keccak256(x) != e:
                    errors.append(x)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


# --------------------------------------------------------------------------------------
# failures


def _reencode_typed(raw_hex: str, mutate) -> bytes:
    b = h2b(raw_hex)
    items = rlp.decode(b[1:])
    mutate(items)
    return b[:1] + rlp.encode(items)


def test_wrong_chain_id():
    raw, obj, _ = signed_case("type2")
    e = expect_invalid("wrong_chain_id", transaction_from_rpc, obj, expected_chain_id=5)
    assert "5" in e.detail
    expect_invalid("wrong_chain_id", decode_raw_transaction, raw, expected_chain_id=5)
    raw0, obj0, _ = signed_case("legacy")
    expect_invalid("wrong_chain_id", transaction_from_rpc, obj0, expected_chain_id=5)
    expect_invalid("wrong_chain_id", transaction_from_rpc, BLOCK_TXS[6], expected_chain_id=17000)


def test_tampered_from():
    _, obj, _ = signed_case("type2")
    bad = dict(obj, **{"from": "0x" + "11" * 20})
    e = expect_invalid("bad_signature", transaction_from_rpc, bad)
    assert "0x" + "11" * 20 in e.detail
    expect_invalid("bad_signature", transaction_from_rpc, dict(BLOCK_TXS[0], **{"from": BLOCK_TXS[1]["from"]}))


@pytest.mark.parametrize(
    "field,new",
    [("value", "0x1"), ("nonce", "0x8"), ("input", "0x"), ("to", "0x" + "99" * 20), ("maxFeePerGas", "0x1"),
     ("gas", "0x5208"), ("r", "0x1234"), ("s", "0x1234"), ("accessList", [])],
)  # fmt: skip
def test_tampered_fields_hash_mismatch(field, new):
    _, obj, _ = signed_case("type2")
    expect_invalid("hash_mismatch", transaction_from_rpc, dict(obj, **{field: new}))


def test_tampered_block_tx_hash_mismatch():
    for obj in BLOCK_TXS:
        bad = dict(obj, value=hex(q(obj["value"]) + 1))
        expect_invalid("hash_mismatch", transaction_from_rpc, bad, 1)


def test_tampered_r_with_consistent_hash_is_bad_signature():
    raw, obj, sender = signed_case("type2")

    def bump_r(items):
        items[-2] = (int.from_bytes(items[-2], "big") + 1).to_bytes(32, "big").lstrip(b"\x00")

    forged = _reencode_typed(raw, bump_r)
    bad = dict(obj, r=hex(int(obj["r"], 16) + 1), hash="0x" + keccak(forged).hex())
    expect_invalid("bad_signature", transaction_from_rpc, bad)
    # a raw tx carries no sender claim: the forged signature either fails or recovers elsewhere
    try:
        assert decode_raw_transaction(forged).sender != sender
    except InvalidTransaction as exc:
        assert exc.code == "bad_signature"


def test_high_s_rejected():
    """(r, n - s) with flipped parity is the malleable twin of a valid signature (EIP-2)."""
    raw, obj, _ = signed_case("type2")
    s, parity = int(obj["s"], 16), int(obj["yParity"], 16)

    def flip(items):
        items[-3] = b"" if parity else b"\x01"
        items[-1] = (SECP256K1_N - s).to_bytes(32, "big").lstrip(b"\x00")

    twin = _reencode_typed(raw, flip)
    expect_invalid("bad_signature", decode_raw_transaction, twin)
    bad = dict(obj, s=hex(SECP256K1_N - s), yParity=hex(1 - parity), v=hex(1 - parity), hash="0x" + keccak(twin).hex())
    e = expect_invalid("bad_signature", transaction_from_rpc, bad)
    assert "EIP-2" in e.detail
    # legacy EIP-155 too
    raw0, obj0, _ = signed_case("legacy")
    items = rlp.decode(h2b(raw0))
    v = int.from_bytes(items[6], "big")
    items[6] = (v ^ 1).to_bytes(1, "big")
    items[8] = (SECP256K1_N - int.from_bytes(items[8], "big")).to_bytes(32, "big").lstrip(b"\x00")
    expect_invalid("bad_signature", decode_raw_transaction, rlp.encode(items))


@pytest.mark.parametrize(
    "over",
    [{"r": "0x0"}, {"s": "0x0"}, {"s": hex(SECP256K1_N)}, {"r": hex(SECP256K1_N)}, {"yParity": "0x2", "v": "0x2"},
     {"yParity": "0x1b", "v": "0x1b"}],
)  # fmt: skip
def test_invalid_signature_values(over):
    _, obj, _ = signed_case("type2")
    expect_invalid("bad_signature", transaction_from_rpc, dict(obj, **over))


def test_invalid_legacy_v():
    _, obj, _ = signed_case("legacy")
    for v in ("0x0", "0x1", "0x1d", "0x22"):
        expect_invalid("bad_signature", transaction_from_rpc, dict(obj, v=v))
    expect_invalid("bad_field", transaction_from_rpc, dict(obj, chainId="0x5"))  # disagrees with v


def test_inconsistent_v_and_yparity():
    _, obj, _ = signed_case("type2")
    expect_invalid("bad_field", transaction_from_rpc, dict(obj, v=hex(1 - int(obj["yParity"], 16))))


@pytest.mark.parametrize(
    "field", ["hash", "from", "nonce", "gas", "value", "input", "r", "s", "chainId", "maxFeePerGas",
              "maxPriorityFeePerGas"],
)  # fmt: skip
def test_missing_field(field):
    _, obj, _ = signed_case("type2")
    bad = dict(obj)
    del bad[field]
    e = expect_invalid("missing_field", transaction_from_rpc, bad)
    assert field in e.detail
    expect_invalid("missing_field", transaction_from_rpc, dict(obj, **{field: None}))


def test_missing_field_other_types():
    _, obj0, _ = signed_case("legacy")
    for field in ("gasPrice", "v"):
        bad = dict(obj0)
        del bad[field]
        expect_invalid("missing_field", transaction_from_rpc, bad)
    _, obj4, _ = signed_case("type4")
    del obj4["authorizationList"]
    expect_invalid("missing_field", transaction_from_rpc, obj4)
    _, _, obj3 = _blob_case(None)
    for field in ("blobVersionedHashes", "maxFeePerBlobGas"):
        bad = dict(obj3)
        del bad[field]
        expect_invalid("missing_field", transaction_from_rpc, bad)
    _, obj2, _ = signed_case("type2")
    del obj2["v"], obj2["yParity"]
    expect_invalid("missing_field", transaction_from_rpc, obj2)


@pytest.mark.parametrize(
    "field,value",
    [("nonce", "0xzz"), ("nonce", "12"), ("nonce", "0x"), ("nonce", " 0x1"), ("nonce", "0x1_0"), ("nonce", "-0x1"),
     ("nonce", "0x٣"), ("nonce", "0x10000000000000000"), ("gas", 1.5), ("value", "0x1" + "0" * 64),
     ("input", "0x123"), ("input", "0xgg"), ("input", "0x12 34"), ("input", "1234"), ("to", "0x1234"),
     ("to", "0x" + "ab" * 21), ("from", "0x" + "ab" * 19), ("hash", "0x1234"), ("chainId", "chain"),
     ("accessList", "nope"), ("accessList", [{"address": "0x12", "storageKeys": []}]),
     ("accessList", [{"address": TO, "storageKeys": ["0x01"]}]), ("r", []), ("type", "0xq")],
)  # fmt: skip
def test_malformed_fields(field, value):
    _, obj, _ = signed_case("type2")
    expect_invalid("bad_field", transaction_from_rpc, dict(obj, **{field: value}))


def test_malformed_authorization_list():
    _, obj, _ = signed_case("type4")
    bad = copy.deepcopy(obj)
    bad["authorizationList"][0]["address"] = "0x12"
    expect_invalid("bad_field", transaction_from_rpc, bad)
    bad = copy.deepcopy(obj)
    del bad["authorizationList"][0]["r"]
    expect_invalid("missing_field", transaction_from_rpc, bad)
    expect_invalid("bad_field", transaction_from_rpc, dict(obj, authorizationList="x"))
    expect_invalid("bad_field", transaction_from_rpc, dict(obj, to=None))  # set-code cannot create


def test_not_a_mapping():
    for junk in (None, [], "0x02", 5):
        expect_invalid("bad_field", transaction_from_rpc, junk)


@pytest.mark.parametrize("tx_type", ["0x5", "0x7e", "0x64"])
def test_unsupported_type_rpc(tx_type):
    _, obj, _ = signed_case("type2")
    e = expect_invalid("unsupported_type", transaction_from_rpc, dict(obj, type=tx_type))
    assert tx_type in e.detail


def test_unsupported_type_raw():
    raw, _, _ = signed_case("type2")
    for t in (0x00, 0x05, 0x7E, 0x7F):
        expect_invalid("unsupported_type", decode_raw_transaction, bytes([t]) + h2b(raw)[1:])


def test_garbage_and_truncated_rlp():
    raw = h2b(TRACE_RAWS[0])
    for cut in range(0, len(raw)):
        with pytest.raises(InvalidTransaction) as info:
            decode_raw_transaction(raw[:cut])
        assert info.value.code == "bad_rlp"
    expect_invalid("bad_rlp", decode_raw_transaction, raw + b"\x00")  # trailing byte
    expect_invalid("bad_rlp", decode_raw_transaction, "0x")
    expect_invalid("bad_rlp", decode_raw_transaction, "0xzz")
    expect_invalid("bad_rlp", decode_raw_transaction, "0x0")
    expect_invalid("bad_rlp", decode_raw_transaction, 12345)
    expect_invalid("bad_rlp", decode_raw_transaction, None)
    expect_invalid("bad_rlp", decode_raw_transaction, b"\xc0")  # empty legacy list
    expect_invalid("bad_rlp", decode_raw_transaction, b"\x02\x80")  # typed payload not a list
    expect_invalid("bad_rlp", decode_raw_transaction, b"\xc1" * 5000 + b"\x80")  # nonsense nesting
    # RLP-wrapped legacy transaction is not a known form
    expect_invalid("bad_rlp", decode_raw_transaction, rlp.encode(h2b(TRACE_RAWS[6])))


def test_non_canonical_rlp_rejected():
    raw, _, _ = signed_case("type2")

    def leading_zero_nonce(items):
        items[1] = b"\x00" + items[1]

    expect_invalid("bad_rlp", decode_raw_transaction, _reencode_typed(raw, leading_zero_nonce))

    def wrong_field_count(items):
        items.append(b"")

    expect_invalid("bad_rlp", decode_raw_transaction, _reencode_typed(raw, wrong_field_count))

    def list_in_value(items):
        items[6] = [b"\x01"]

    expect_invalid("bad_rlp", decode_raw_transaction, _reencode_typed(raw, list_in_value))

    def nonce_too_wide(items):
        items[1] = b"\x01" + b"\x00" * 8

    expect_invalid("bad_field", decode_raw_transaction, _reencode_typed(raw, nonce_too_wide))

    def short_to(items):
        items[5] = b"\x01" * 19

    expect_invalid("bad_field", decode_raw_transaction, _reencode_typed(raw, short_to))
    # single byte < 0x80 encoded as a 1-byte string: non-canonical
    b = h2b(raw)
    legacy = h2b(TRACE_RAWS[6])  # nonce 0 encoded as 0x80
    assert legacy[:2] == b"\xf8\x6c" and legacy[2] == 0x80
    noncanon = b"\xf8\x6d" + b"\x81\x00" + legacy[3:]
    expect_invalid("bad_rlp", decode_raw_transaction, noncanon)
    # long-form length for a short list
    payload = b[1:]
    assert payload[0] >= 0xF8
    expect_invalid("bad_rlp", decode_raw_transaction, b[:1] + b"\xf9\x00" + payload[1:])


@given(st.binary(max_size=400))
@settings(max_examples=500, deadline=None)
def test_fuzz_random_bytes(data):
    for candidate in (data, b"\x02" + data, b"\x03" + data, b"\x04" + data, b"\xf8" + data):
        try:
            tx = decode_raw_transaction(candidate)
        except InvalidTransaction as exc:
            assert "unexpected" not in exc.detail  # the safety net must not be what catches it
            continue
        assert isinstance(tx, Transaction)


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_fuzz_mutated_real_transactions(data):
    raw = bytearray(h2b(data.draw(st.sampled_from(TRACE_RAWS + [VECTORS["rlp_roundtrip"][1]["rlpIn"]]))))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    try:
        tx = decode_raw_transaction(bytes(raw))
    except InvalidTransaction as exc:
        assert "unexpected" not in exc.detail
        return
    assert isinstance(tx, Transaction)
    assert tx.hash == "0x" + keccak(tx.raw).hex()


_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**300), st.text(max_size=70),
                         st.sampled_from(["0x", "0x0", "0x1", "0x2", "0x3", "0x4", "0x" + "ab" * 20]))  # fmt: skip


@given(st.dictionaries(st.sampled_from(sorted(BLOCK_TXS[0]) + ["authorizationList", "blobVersionedHashes",
                                                               "maxFeePerBlobGas", "data", "gasLimit"]),
                       st.one_of(_json_scalar, st.lists(_json_scalar, max_size=3),
                                 st.lists(st.dictionaries(st.text(max_size=12), _json_scalar), max_size=2))),
       st.integers(0, 8))  # fmt: skip
@settings(max_examples=300, deadline=None)
def test_fuzz_rpc_objects(overrides, which):
    obj = dict(BLOCK_TXS[which], **overrides)
    try:
        tx = transaction_from_rpc(obj, 1)
    except InvalidTransaction as exc:
        assert "unexpected" not in exc.detail
        return
    assert isinstance(tx, Transaction)


def test_exception_is_value_error_and_picklable():
    exc = expect_invalid("bad_rlp", decode_raw_transaction, b"\x02")
    assert isinstance(exc, ValueError)
    again = pickle.loads(pickle.dumps(exc))
    assert (again.code, again.detail, str(again)) == (exc.code, exc.detail, str(exc))
