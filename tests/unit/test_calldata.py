"""Calldata decoding: round trips for every registered method, swap semantics, bad input, mainnet."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import rlp
from eth_abi import decode as abi_decode
from eth_abi import encode
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mev_assets.core.calldata import DECODE_STATUSES, OUTPUT_SCHEMA, decode_calldata
from mev_assets.core.registry import AbiType, CallSpec, load_registry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mainnet"
REG = load_registry()

WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
DAI = "0x6b175474e89094c44da98b954eedeac495271d0f"
WBTC = "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599"
V2_ROUTER = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"
V3_ROUTER = "0xe592427a0aece92de3edee1f18e0157c05861564"
SWAP_ROUTER02 = "0x68b3465833fb72a70ecdf485e0e4c7bd8665fc45"
UR = "0x3fc91a3afd70395cd496c647d5a6cc9d4b2b7fad"
UR_V4 = "0x66a9893cc07d91d95644aedd05d03f95e1dba8af"
BALANCER = "0xba12222222228d8ba445958a75a0704d566bf2c8"
CURVE_3POOL = "0xbebc44782c7db0a1a60cb6fe97d0b483032ff1c7"
ONEINCH_V5 = "0x1111111254eeb25477b68fb85ed929f73a960582"
ZEROEX = "0xdef1c0ded9bec7f1a1670819833240f027b25eff"
MSG_SENDER = "0x" + "00" * 19 + "01"
ADDRESS_THIS = "0x" + "00" * 19 + "02"
CONTRACT_BALANCE = 1 << 255
USER = "0x" + "ab" * 20
SENDER = "0x" + "cd" * 20


def call(signature: str, *values) -> bytes:
    types = signature[signature.index("(") + 1:-1]
    return keccak(text=signature)[:4] + encode(_split(types), list(values))


def _split(types: str) -> list[str]:
    out, depth, cur = [], 0, ""
    for ch in types:
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    return out + [cur] if cur else out


def v3_path(*hops) -> bytes:
    """token, fee, token, fee, token ... as Uniswap V3 packs it."""
    out = b""
    for i, item in enumerate(hops):
        out += bytes.fromhex(item[2:]) if i % 2 == 0 else item.to_bytes(3, "big")
    return out


def execute(commands: list[int], inputs: list[bytes], deadline: int | None = 1_700_000_000) -> bytes:
    if deadline is None:
        return call("execute(bytes,bytes[])", bytes(commands), inputs)
    return call("execute(bytes,bytes[],uint256)", bytes(commands), inputs, deadline)


def frame(rows: list[tuple]) -> pl.DataFrame:
    """rows of (to, data bytes|str, value[, from])."""
    out = []
    for i, r in enumerate(rows):
        to, data, value = r[0], r[1], r[2] if len(r) > 2 else "0"
        out.append({"hash": f"0x{i:064x}", "to": to, "value": str(value),
                    "input": data if isinstance(data, str) or data is None else "0x" + data.hex(),
                    "from": r[3] if len(r) > 3 else SENDER})
    return pl.DataFrame(out, schema={"hash": pl.String, "to": pl.String, "value": pl.String, "input": pl.String,
                                     "from": pl.String})


def decode_one(to, data, value="0", engine="auto") -> dict:
    return decode_calldata(frame([(to, data, value)]), REG, engine=engine).row(0, named=True)


# --- round trips: every registered method and command ------------------------------------------


def values_for(t: AbiType) -> st.SearchStrategy:
    if t.kind == "uint":
        top = (1 << t.bits) - 1
        edges = [v for v in (0, 1, top, (1 << 64) - 1, (1 << 128) - 1, 1 << 128, 1 << 255) if v <= top]
        return st.one_of(st.integers(0, top), st.sampled_from(edges))
    if t.kind == "int":
        lo, hi = -(1 << (t.bits - 1)), (1 << (t.bits - 1)) - 1
        return st.one_of(st.integers(lo, hi), st.sampled_from([lo, -1, 0, 1, hi]))
    if t.kind == "address":
        return st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
    if t.kind == "bool":
        return st.booleans()
    if t.kind == "fixed_bytes":
        return st.binary(min_size=t.bits, max_size=t.bits)
    if t.kind == "bytes":
        return st.binary(max_size=70)
    if t.kind == "string":
        return st.text(max_size=12)
    if t.kind == "array":
        size = {"min_size": t.length, "max_size": t.length} if t.length is not None else {"max_size": 3}
        return st.lists(values_for(t.item), **size)
    return st.tuples(*[values_for(c.type) for c in t.components])


def expected_json(t: AbiType, v):
    """What args_json must hold for value ``v`` (ints as decimal strings, hex bytes, lowercase addresses)."""
    if t.kind in ("uint", "int"):
        return str(v)
    if t.kind in ("bytes", "fixed_bytes"):
        return "0x" + v.hex()
    if t.kind == "array":
        return [expected_json(t.item, x) for x in v]
    if t.kind == "tuple":
        return {c.name: expected_json(c.type, x) for c, x in zip(t.components, v)}
    return v


def _target(spec: CallSpec) -> tuple[str, bytes]:
    """(to, selector-or-command wrapper) under which ``spec`` is reached."""
    proto = REG.protocol(spec.protocol) if spec.code is None else None
    if proto is not None:
        to = proto.addresses[0] if proto.addresses else "0x" + "77" * 20
        return to, bytes.fromhex(spec.selector[2:])
    router = next(p for p in REG.protocols if p.command_set == spec.command_set)
    return router.addresses[0], b""


def _unique(specs: list[CallSpec]) -> list[CallSpec]:
    """One spec per distinct ABI and mapping (methods_from copies and inherited commands are the same)."""
    seen, out = set(), []
    for s in specs:
        key = (s.signature, s.code, repr(s.fields), s.payout)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


ROUND_TRIP = _unique([s for s in REG.specs if s.decodable and s.dispatch is None])
CHUNK = 16
CHUNKS = [ROUND_TRIP[i:i + CHUNK] for i in range(0, len(ROUND_TRIP), CHUNK)]


@pytest.mark.parametrize("chunk", range(len(CHUNKS)))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                HealthCheck.large_base_example])
@given(data=st.data())
def test_every_registered_method_and_command_round_trips(chunk, data):
    rows, expected = [], []
    specs = CHUNKS[chunk]
    for spec in specs:
        values = data.draw(st.tuples(*[values_for(p.type) for p in spec.params]), label=spec.signature)
        encoded = encode([p.type.canonical for p in spec.params], list(values))
        to, prefix = _target(spec)
        payload = prefix + encoded if spec.code is None else execute([spec.code], [encoded])
        rows.append((to, payload))
        expected.append({p.name: expected_json(p.type, v) for p, v in zip(spec.params, values)})
    for engine in ("auto", "eth_abi"):
        out = decode_calldata(frame(rows), REG, engine=engine)
        for spec, want, row in zip(specs, expected, out.iter_rows(named=True)):
            assert row["decode_status"] == "decoded", (engine, spec.signature, row["decode_error"])
            args = json.loads(row["args_json"])
            if spec.code is not None:
                assert row["commands"] == [spec.name]
                args = args["calls"][0]["args"]
            else:
                assert row["method"] == spec.name
            assert args == want, (engine, spec.protocol, spec.signature)


def test_round_trip_covers_every_decodable_method_and_command():
    covered = {(s.signature, s.code, repr(s.fields), s.payout) for s in ROUND_TRIP}
    for s in REG.specs:
        if s.decodable and s.dispatch is None:
            assert (s.signature, s.code, repr(s.fields), s.payout) in covered
    assert len(ROUND_TRIP) > 90


# --- swap semantics -------------------------------------------------------------------------------


def test_uniswap_v2_router_swaps():
    dl = 1_714_000_000
    rows = [
        (V2_ROUTER, call("swapExactETHForTokens(uint256,address[],address,uint256)", 2_900_000_000, [WETH, USDC], USER, dl), 10**18),
        (V2_ROUTER, call("swapETHForExactTokens(uint256,address[],address,uint256)", 3_000_000_000, [WETH, USDC], USER, dl), 11 * 10**17),
        (V2_ROUTER, call("swapExactTokensForETH(uint256,uint256,address[],address,uint256)", 5 * 10**7, 9 * 10**18, [WBTC, WETH], USER, dl)),
        (V2_ROUTER, call("swapTokensForExactETH(uint256,uint256,address[],address,uint256)", 10**18, 3_100_000_000, [USDC, WETH], USER, dl)),
        (V2_ROUTER, call("swapExactTokensForTokens(uint256,uint256,address[],address,uint256)", 10**21, 990_000_000, [DAI, WETH, USDT], USER, dl)),
        (V2_ROUTER, call("swapTokensForExactTokens(uint256,uint256,address[],address,uint256)", 10**8, 4 * 10**22, [DAI, WBTC], USER, dl)),
    ]
    out = decode_calldata(frame(rows), REG)
    got = out.select("protocol", "method", "swap_kind", "token_in_symbol", "token_out_symbol", "amount_in", "amount_out",
                     "amount_out_min", "amount_in_max", "amount_in_norm", "amount_out_norm", "amount_out_min_norm",
                     "amount_in_max_norm", "recipient", "deadline").rows()
    assert got == [
        ("uniswap_v2_router02", "swapExactETHForTokens", "exact_in", "WETH", "USDC", str(10**18), None, "2900000000", None, 1.0, None, 2900.0, None, USER, dl),
        ("uniswap_v2_router02", "swapETHForExactTokens", "exact_out", "WETH", "USDC", None, "3000000000", None, str(11 * 10**17), None, 3000.0, None, 1.1, USER, dl),
        ("uniswap_v2_router02", "swapExactTokensForETH", "exact_in", "WBTC", "WETH", "50000000", None, str(9 * 10**18), None, 0.5, None, 9.0, None, USER, dl),
        ("uniswap_v2_router02", "swapTokensForExactETH", "exact_out", "USDC", "WETH", None, str(10**18), None, "3100000000", None, 1.0, None, 3100.0, USER, dl),
        ("uniswap_v2_router02", "swapExactTokensForTokens", "exact_in", "DAI", "USDT", str(10**21), None, "990000000", None, 1000.0, None, 990.0, None, USER, dl),
        ("uniswap_v2_router02", "swapTokensForExactTokens", "exact_out", "DAI", "WBTC", None, "100000000", None, str(4 * 10**22), None, 1.0, None, 40000.0, USER, dl),
    ]
    assert out["path"].to_list()[4] == [DAI, WETH, USDT]
    assert out["decode_status"].unique().to_list() == ["decoded"]


def test_uniswap_v3_paths_fee_tiers_and_exact_output_order():
    dl = 1_714_000_000
    rows = [
        (V3_ROUTER, call("exactInput((bytes,address,uint256,uint256,uint256))",
                         (v3_path(WETH, 500, USDC, 100, DAI), USER, dl, 10**18, 2_990 * 10**18))),
        # exactOutput paths run from the output token back to the input token
        (V3_ROUTER, call("exactOutput((bytes,address,uint256,uint256,uint256))",
                         (v3_path(DAI, 100, USDC, 500, WETH), USER, dl, 3_000 * 10**18, 11 * 10**17))),
        (V3_ROUTER, call("exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))",
                         (USDC, WETH, 3000, USER, dl, 5_000_000_000, 16 * 10**17, 0))),
    ]
    out = decode_calldata(frame(rows), REG)
    assert out["path"].to_list() == [[WETH, USDC, DAI], [WETH, USDC, DAI], [USDC, WETH]]
    assert out["fee_tiers"].to_list() == [[500, 100], [500, 100], [3000]]
    assert out.select("swap_kind", "token_in", "token_out", "amount_in", "amount_out", "amount_out_min", "amount_in_max").rows() == [
        ("exact_in", WETH, DAI, str(10**18), None, str(2_990 * 10**18), None),
        ("exact_out", WETH, DAI, None, str(3_000 * 10**18), None, str(11 * 10**17)),
        ("exact_in", USDC, WETH, "5000000000", None, str(16 * 10**17), None),
    ]
    assert out["deadline"].to_list() == [dl, dl, dl]


def test_swap_router02_multicall_pays_out_through_unwrap():
    swap = call("exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))",
                (USDC, WETH, 500, ADDRESS_THIS, 3_000_000_000, 0, 0))
    unwrap = call("unwrapWETH9(uint256,address)", 99 * 10**16, USER)
    row = decode_one(SWAP_ROUTER02, call("multicall(uint256,bytes[])", 1_714_000_123, [swap, unwrap]))
    assert (row["method"], row["decode_status"], row["commands"]) == ("multicall", "decoded", ["exactInputSingle", "unwrapWETH9"])
    # the swap leaves WETH in the router; unwrapWETH9 decides who gets it and the minimum
    assert (row["token_in_symbol"], row["token_out_symbol"], row["amount_in"], row["recipient"], row["amount_out_min"]) == (
        "USDC", "WETH", "3000000000", USER, str(99 * 10**16))
    assert row["deadline"] == 1_714_000_123
    assert json.loads(row["args_json"])["calls"][1] == {
        "method": "unwrapWETH9", "args": {"amountMinimum": str(99 * 10**16), "recipient": USER}}


def test_universal_router_eth_in_resolves_value_and_sender():
    data = execute([0x0B, 0x08], [
        encode(["address", "uint256"], [ADDRESS_THIS, 5 * 10**17]),
        encode(["address", "uint256", "uint256", "address[]", "bool"], [MSG_SENDER, CONTRACT_BALANCE, 1_400_000_000, [WETH, USDC], False]),
    ])
    out = decode_calldata(frame([(UR, data, 5 * 10**17, SENDER)]), REG).row(0, named=True)
    assert (out["protocol"], out["method"], out["commands"]) == ("uniswap_universal_router", "execute", ["WRAP_ETH", "V2_SWAP_EXACT_IN"])
    assert (out["swap_kind"], out["token_in_symbol"], out["token_out_symbol"]) == ("exact_in", "WETH", "USDC")
    assert (out["amount_in"], out["amount_out_min"], out["recipient"], out["deadline"]) == (
        str(5 * 10**17), "1400000000", SENDER, 1_700_000_000)


def test_universal_router_split_route_sums_the_legs_and_sweeps():
    data = execute([0x00, 0x08, 0x04], [
        encode(["address", "uint256", "uint256", "bytes", "bool"], [ADDRESS_THIS, 6 * 10**20, 6 * 10**8, v3_path(DAI, 100, USDC), True]),
        encode(["address", "uint256", "uint256", "address[]", "bool"], [ADDRESS_THIS, 4 * 10**20, 4 * 10**8, [DAI, USDC], True]),
        encode(["address", "address", "uint256"], [USDC, USER, 995_000_000]),
    ], deadline=None)
    row = decode_one(UR, data)
    assert row["commands"] == ["V3_SWAP_EXACT_IN", "V2_SWAP_EXACT_IN", "SWEEP"]
    assert (row["token_in"], row["token_out"], row["amount_in"], row["amount_out_min"]) == (DAI, USDC, str(10**21), str(10**9))
    assert (row["recipient"], row["path"], row["fee_tiers"], row["deadline"]) == (USER, [DAI, USDC], [100], None)


def test_universal_router_exact_out_with_permit():
    permit = encode(["((address,uint160,uint48,uint48),address,uint256)", "bytes"],
                    [((USDT, (1 << 160) - 1, 1_720_000_000, 3), UR, 1_714_001_800), b"\x11" * 65])
    swap = encode(["address", "uint256", "uint256", "bytes", "bool"],
                  [MSG_SENDER, 10**8, 60_500_000_000, v3_path(WBTC, 3000, WETH, 500, USDT), True])
    out = decode_calldata(frame([(UR, execute([0x0A, 0x01], [permit, swap]), 0, USER)]), REG).row(0, named=True)
    assert out["commands"] == ["PERMIT2_PERMIT", "V3_SWAP_EXACT_OUT"]
    assert (out["swap_kind"], out["token_in_symbol"], out["token_out_symbol"], out["amount_out"], out["amount_in_max"]) == (
        "exact_out", "USDT", "WBTC", "100000000", "60500000000")
    assert (out["path"], out["fee_tiers"], out["recipient"]) == ([USDT, WETH, WBTC], [500, 3000], USER)
    permit_args = json.loads(out["args_json"])["calls"][0]["args"]
    assert permit_args["permitSingle"]["details"] == {"token": USDT, "amount": str((1 << 160) - 1),
                                                      "expiration": "1720000000", "nonce": "3"}


def test_universal_router_names_unregistered_and_classified_commands():
    data = execute([0x10, 0x8B, 0x3F], [b"\x01\x02", encode(["address", "uint256"], [ADDRESS_THIS, 7]), b""])
    row = decode_one(UR_V4, data)
    # 0x8b = WRAP_ETH with the allow-revert flag; 0x10 is V4_SWAP (named only); 0x3f is in no command set
    assert (row["decode_status"], row["commands"]) == ("decoded", ["V4_SWAP", "WRAP_ETH", "0x3f"])
    calls = json.loads(row["args_json"])["calls"]
    assert calls[0] == {"method": "V4_SWAP", "args": None}
    assert calls[1]["args"] == {"recipient": ADDRESS_THIS, "amountMin": "7"}
    assert "0x3f is not in command set uniswap_universal_router_v2" in calls[2]["error"]


def test_universal_router_command_input_mismatch_is_an_error():
    data = execute([0x0B, 0x0C], [encode(["address", "uint256"], [ADDRESS_THIS, 1])])
    row = decode_one(UR, data)
    assert row["decode_status"] == "error"
    assert row["decode_error"] == "commands has 2 command(s) but inputs has 1 input(s)"
    bad_child = execute([0x08], [b"\x00" * 40])
    row = decode_one(UR, bad_child)
    assert row["decode_status"] == "error" and row["decode_error"].startswith("inputs[0] V2_SWAP_EXACT_IN: ")


def test_balancer_swap_kind_comes_from_the_argument():
    single = ("0x" + "55" * 32, 1, WETH, USDC, 2_000_000_000, b"")
    funds = (USER, False, USER, False)
    rows = [
        (BALANCER, call("swap((bytes32,uint8,address,address,uint256,bytes),(address,bool,address,bool),uint256,uint256)",
                        (bytes.fromhex("55" * 32), 1, WETH, USDC, 2_000_000_000, b""), funds, 7 * 10**17, 1_714_000_000)),
        (BALANCER, call("batchSwap(uint8,(bytes32,uint256,uint256,uint256,bytes)[],address[],(address,bool,address,bool),int256[],uint256)",
                        0, [(bytes.fromhex("66" * 32), 0, 1, 10**18, b"\x01"), (bytes.fromhex("77" * 32), 1, 2, 0, b"")],
                        [WETH, USDC, DAI], funds, [10**18, 0, -(2_990 * 10**18)], 1_714_000_001)),
    ]
    assert single[1] == 1
    for engine in ("auto", "eth_abi"):
        out = decode_calldata(frame(rows), REG, engine=engine)
        assert out.select("swap_kind", "token_in_symbol", "token_out_symbol", "amount_out", "amount_in_max", "recipient").row(0) == (
            "exact_out", "WETH", "USDC", "2000000000", str(7 * 10**17), USER)
        batch = out.row(1, named=True)
        assert (batch["method"], batch["swap_kind"], batch["recipient"], batch["deadline"]) == ("batchSwap", "exact_in", USER, 1_714_000_001)
        assert json.loads(batch["args_json"])["limits"] == [str(10**18), "0", str(-(2_990 * 10**18))]
        assert json.loads(batch["args_json"])["swaps"][0]["userData"] == "0x01"


def test_curve_exchange_reads_the_pool_coins():
    row = decode_one(CURVE_3POOL, call("exchange(int128,int128,uint256,uint256)", 1, 2, 25_000_000_000, 24_900_000_000))
    assert (row["protocol"], row["protocol_kind"], row["token_in_symbol"], row["token_out_symbol"]) == ("curve_pools", "dex_pool", "USDC", "USDT")
    assert (row["amount_in_norm"], row["amount_out_min_norm"], row["path"]) == (25_000.0, 24_900.0, [USDC, USDT])


def test_weth_erc20_and_aggregators():
    rows = [
        (WETH, call("deposit()"), 3 * 10**18),
        (WETH, call("withdraw(uint256)", 2 * 10**18)),
        (USDC, call("transfer(address,uint256)", USER, 1_234_500_000)),
        (DAI, call("approve(address,uint256)", UR, (1 << 256) - 1)),
        (ONEINCH_V5, call("swap(address,(address,address,address,address,uint256,uint256,uint256),bytes,bytes)",
                          "0x" + "e1" * 20, (USDC, WETH, "0x" + "e1" * 20, USER, 10**10, 3 * 10**18, 4), b"", b"\x99" * 300)),
        (ZEROEX, call("transformERC20(address,address,uint256,uint256,(uint32,bytes)[])",
                      DAI, WBTC, 6 * 10**22, 10**8, [(9, b"\x01" * 33), (4, b"")])),
    ]
    out = decode_calldata(frame(rows), REG)
    assert out.select("protocol", "protocol_kind", "method", "token_in_symbol", "token_out_symbol", "amount_in_norm",
                      "amount_out_norm", "amount_out_min_norm", "recipient").rows() == [
        ("weth", "weth", "deposit", "ETH", "WETH", 3.0, 3.0, None, None),
        ("weth", "weth", "withdraw", "WETH", "ETH", 2.0, 2.0, None, None),
        ("erc20", "token", "transfer", "USDC", None, 1234.5, None, None, USER),
        ("erc20", "token", "approve", "DAI", None, float((1 << 256) - 1) / 1e18, None, None, None),
        ("oneinch_v5_router", "aggregator", "swap", "USDC", "WETH", 10_000.0, None, 3.0, USER),
        ("zeroex_exchange_proxy", "aggregator", "transformERC20", "DAI", "WBTC", 60_000.0, None, 1.0, None),
    ]
    assert out["amount_in"][3] == str((1 << 256) - 1)  # exact, never a float
    assert json.loads(out["args_json"][5])["transformations"] == [
        {"deploymentNonce": "9", "data": "0x" + "01" * 33}, {"deploymentNonce": "4", "data": "0x"}]


# --- bad input: a status and a reason, never an exception ------------------------------------------


def test_bad_calldata_gets_a_reason_and_the_batch_goes_on():
    good = call("transfer(address,uint256)", USER, 5)
    swap = call("swapExactTokensForTokens(uint256,uint256,address[],address,uint256)", 1, 2, [USDC, WETH], USER, 3)
    dirty_address = bytearray(good)
    dirty_address[4] = 0x01  # high byte of the address word
    bad_offset = bytearray(swap)
    bad_offset[4 + 2 * 32 + 31] = 0xF0  # path offset past the end
    into_head = bytearray(swap)
    into_head[4 + 2 * 32 + 31] = 0x20  # path offset pointing into the head
    huge_length = swap[:4 + 5 * 32] + (2**64).to_bytes(32, "big") + swap[4 + 6 * 32:]
    dirty_element = bytearray(swap)
    dirty_element[4 + 6 * 32] = 0xFF  # first path element's padding
    cases = [
        ((USDC, good), "decoded", None),
        ((USDC, good[:20]), "error", "calldata has 16 argument byte(s), the parameters need at least 64"),
        ((USDC, bytes(dirty_address)), "error", "to: address word has non-zero high bytes"),
        ((V2_ROUTER, bytes(bad_offset)), "error", "path: offset points past the end of the calldata"),
        ((V2_ROUTER, bytes(into_head)), "error", "path: offset points into the head"),
        ((V2_ROUTER, huge_length), "error", "path: length out of range"),
        ((V2_ROUTER, bytes(dirty_element)), "error", "path[]: address word has non-zero high bytes"),
        ((USDC, "0xa9059cbb0g"), "error", "input is not an even-length hex string"),
        ((USDC, "0xa9059cbb0"), "error", "input is not an even-length hex string"),
        ((USDC, "0xa905"), "unknown_selector", "calldata of 2 byte(s) is shorter than a 4-byte selector"),
        ((V2_ROUTER, "0x12345678"), "unknown_selector", "selector 0x12345678 is not registered for uniswap_v2_router02"),
        ((None, "0x6080604052"), "unknown_selector", "contract creation (no 'to'): init code, not a call"),
        ((USER, "0x"), "no_calldata", None),
        ((USER, None), "no_calldata", None),
        ((USDC, good), "decoded", None),
    ]
    txs = frame([(to, data) for (to, data), _, _ in cases])
    for engine in ("auto", "eth_abi"):
        out = decode_calldata(txs, REG, engine=engine)
        assert out["decode_status"].to_list() == [status for _, status, _ in cases], engine
        errors = out["decode_error"].to_list()
        if engine == "auto":  # eth-abi words its own reasons
            assert errors == [reason for _, _, reason in cases]
        assert all(e for e, (_, s, _) in zip(errors, cases) if s == "error")
        failed = out.filter(pl.col("decode_status") == "error")
        assert failed["args_json"].null_count() == failed.height and failed["amount_in"].null_count() == failed.height
    assert out["hash"].to_list() == txs["hash"].to_list()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mangled_calldata_never_raises_and_both_engines_agree(data):
    """Truncated, extended and byte-flipped encodings of registered methods: same verdict and values
    from the vectorised engine and from eth-abi."""
    rows = []
    for _ in range(12):
        spec = data.draw(st.sampled_from(ROUND_TRIP))
        values = data.draw(st.tuples(*[values_for(p.type) for p in spec.params]))
        encoded = bytearray(encode([p.type.canonical for p in spec.params], list(values)))
        how = data.draw(st.sampled_from(["truncate", "extend", "flip", "word"]))
        if how == "truncate" and encoded:
            encoded = encoded[:data.draw(st.integers(0, len(encoded) - 1))]
        elif how == "extend":
            encoded += data.draw(st.binary(max_size=40))
        elif how == "flip" and encoded:
            i = data.draw(st.integers(0, len(encoded) - 1))
            encoded[i] = data.draw(st.integers(0, 255))
        elif how == "word" and len(encoded) >= 32:
            w = data.draw(st.integers(0, len(encoded) // 32 - 1))
            encoded[w * 32:(w + 1) * 32] = data.draw(st.sampled_from([0, 1, 32, 2**64, 2**255, 2**256 - 1])).to_bytes(32, "big")
        to, prefix = _target(spec)
        rows.append((to, prefix + bytes(encoded) if spec.code is None else execute([spec.code], [bytes(encoded)])))
    txs = frame(rows)
    fast = decode_calldata(txs, REG)
    ref = decode_calldata(txs, REG, engine="eth_abi")
    assert set(fast["decode_status"].unique()) <= set(DECODE_STATUSES)
    assert fast.drop("decode_error").equals(ref.drop("decode_error"))


def _mangle(data, raw: bytes) -> bytes:
    b = bytearray(raw)
    how = data.draw(st.sampled_from(["keep", "keep", "truncate", "flip", "word"]))
    if how == "truncate" and b:
        b = b[:data.draw(st.integers(0, len(b) - 1))]
    elif how == "flip" and b:
        b[data.draw(st.integers(0, len(b) - 1))] = data.draw(st.integers(0, 255))
    elif how == "word" and len(b) >= 32:
        w = data.draw(st.integers(0, len(b) // 32 - 1))
        b[w * 32:(w + 1) * 32] = data.draw(st.sampled_from([0, 1, 32, 2**255, 2**256 - 1])).to_bytes(32, "big")
    return bytes(b)


UR_COMMANDS = [s for s in ROUND_TRIP if s.code is not None]
SR02_METHODS = [m for m in REG.protocol("uniswap_v3_swap_router02").methods if m.decodable and m.dispatch is None]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_mangled_router_batches_never_raise_and_both_engines_agree(data):
    """Universal Router executes and SwapRouter02 multicalls with valid and broken inner calls,
    unknown command codes and the allow-revert flag."""
    rows = []
    for _ in range(6):
        if data.draw(st.booleans()):
            codes, inputs = [], []
            for spec in data.draw(st.lists(st.sampled_from(UR_COMMANDS), max_size=3)):
                values = data.draw(st.tuples(*[values_for(p.type) for p in spec.params]))
                codes.append(spec.code | data.draw(st.sampled_from([0, 0, 0x80])))
                inputs.append(_mangle(data, encode([p.type.canonical for p in spec.params], list(values))))
            if data.draw(st.booleans()):
                codes.append(data.draw(st.integers(0, 255)))
                inputs.append(data.draw(st.binary(max_size=64)))
            payload = _mangle(data, execute(codes, inputs, deadline=data.draw(st.sampled_from([None, 1_700_000_000]))))
            rows.append((data.draw(st.sampled_from([UR, UR_V4])), payload, data.draw(st.sampled_from([0, 10**18]))))
        else:
            inner = []
            for m in data.draw(st.lists(st.sampled_from(SR02_METHODS), max_size=3)):
                values = data.draw(st.tuples(*[values_for(p.type) for p in m.params]))
                inner.append(_mangle(data, bytes.fromhex(m.selector[2:]) + encode([p.type.canonical for p in m.params], list(values))))
            rows.append((SWAP_ROUTER02, _mangle(data, call("multicall(uint256,bytes[])", 1_700_000_000, inner))))
    txs = frame(rows)
    fast = decode_calldata(txs, REG)
    ref = decode_calldata(txs, REG, engine="eth_abi")
    assert set(fast["decode_status"].unique()) <= set(DECODE_STATUSES)
    assert fast.drop("decode_error").equals(ref.drop("decode_error"))
    decoded = fast.filter(pl.col("decode_status") == "decoded")
    assert decoded["commands"].null_count() == 0


# --- the output contract --------------------------------------------------------------------------


def test_output_has_the_contract_schema_and_input_order():
    txs = frame([(USER, "0x"), (USDC, call("transfer(address,uint256)", USER, 1))]).drop("from")
    out = decode_calldata(txs, REG)
    assert out.schema == pl.Schema(OUTPUT_SCHEMA)
    assert out["hash"].to_list() == txs["hash"].to_list()
    empty = decode_calldata(txs.head(0), REG)
    assert empty.height == 0 and empty.schema == pl.Schema(OUTPUT_SCHEMA)
    with pytest.raises(ValueError, match="lacks column"):
        decode_calldata(txs.drop("input"), REG)


# --- real mainnet transactions ----------------------------------------------------------------------


def _receipt_logs(trace_entry: dict) -> list[tuple[str, list[bytes], bytes]]:
    raw = rlp.decode(bytes.fromhex(trace_entry["meta"]["new_receipt_trie_node_byte"][2:]))
    _, _, _, logs = rlp.decode(raw[1:] if raw[0] < 0x7F else raw)
    return [("0x" + a.hex(), topics, data) for a, topics, data in logs]


def test_mainnet_block_19807080_router_swaps_match_their_receipts():
    block = json.loads((FIXTURES / "block-19807080.json").read_text())[0]
    trace = json.loads((FIXTURES / "block-19807080-trace.json").read_text())[0]["block_trace"]["txn_info"]
    timestamp = int(trace[0] and json.loads((FIXTURES / "block-19807080-trace.json").read_text())[0]["other_data"]
                    ["b_data"]["b_meta"]["block_timestamp"], 16)
    txs = pl.DataFrame([{k: t[k] for k in ("hash", "to", "input", "from")} | {"value": str(int(t["value"], 16))}
                        for t in block["transactions"]])
    out = decode_calldata(txs, REG)
    transfer_topic = keccak(text="Transfer(address,address,uint256)")
    swaps = 0
    for tx, row, entry in zip(block["transactions"], out.iter_rows(named=True), trace):
        if tx["input"] == "0x":
            assert row["decode_status"] == "no_calldata"
            continue
        if tx["to"] != V2_ROUTER:
            assert row["decode_status"] == "unknown_selector" and row["protocol"] is None
            continue
        swaps += 1
        assert (row["protocol"], row["method"], row["swap_kind"]) == ("uniswap_v2_router02", "swapETHForExactTokens", "exact_out")
        transfers = [(addr, "0x" + t[1][12:].hex(), "0x" + t[2][12:].hex(), int.from_bytes(d, "big"))
                     for addr, t, d in _receipt_logs(entry) if t[0] == transfer_topic]
        weth_in, token_out = transfers[0], transfers[-1]
        # what the chain did: WETH from the router into the pair, the exact output from the pair to the recipient
        assert weth_in[0] == WETH and weth_in[1] == V2_ROUTER
        assert row["path"] == [WETH, token_out[0]]
        assert row["recipient"] == token_out[2]
        assert row["amount_out"] == str(token_out[3])
        assert row["amount_in_max"] == str(int(tx["value"], 16)) and int(row["amount_in_max"]) >= weth_in[3]
        assert row["deadline"] >= timestamp
    assert swaps == 2


def test_mainnet_block_15537394_transactions():
    block = json.loads((FIXTURES / "block-15537394-transactions.json").read_text())
    txs = pl.DataFrame([{"hash": t["hash"], "to": t["to"], "input": t["input"], "value": str(int(t["value"], 16))}
                        for t in block["transactions"]], schema={"hash": pl.String, "to": pl.String, "input": pl.String,
                                                                 "value": pl.String})
    out = decode_calldata(txs, REG)
    assert out.height == 80
    for tx, row in zip(block["transactions"], out.iter_rows(named=True)):
        if tx["to"] is None:
            assert (row["decode_status"], row["decode_error"]) == ("unknown_selector", "contract creation (no 'to'): init code, not a call")
        elif tx["input"] == "0x":
            assert row["decode_status"] == "no_calldata"
        elif tx["input"][:10] == "0xa9059cbb":  # the block's one ERC-20 transfer (USDC)
            to, amount = abi_decode(["address", "uint256"], bytes.fromhex(tx["input"][10:]))
            assert (row["protocol"], row["method"], row["token_in_symbol"]) == ("erc20", "transfer", "USDC")
            assert (row["recipient"], row["amount_in"], row["amount_in_norm"]) == (to.lower(), str(amount), amount / 1e6)
        else:  # NFT mints and other contracts the registry does not know
            assert row["decode_status"] == "unknown_selector", tx["hash"]
    assert out.filter(pl.col("decode_status") == "decoded").height == 1
