"""The protocol registry: the shipped file, and clear errors for broken ones."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import polars as pl
import pytest
from eth_abi import encode

from mev_assets.core.calldata import decode_calldata
from mev_assets.core.registry import DEFAULT_REGISTRY_PATH, RegistryError, load_registry
from mev_assets.settings import SettingsError

SHIPPED = json.loads(DEFAULT_REGISTRY_PATH.read_text())

# Selectors as published (Etherscan, 4byte.directory, the protocols' own sources).
PUBLISHED = {
    ("erc20", "0xa9059cbb"): "transfer",
    ("erc20", "0x095ea7b3"): "approve",
    ("uniswap_v2_router02", "0x7ff36ab5"): "swapExactETHForTokens",
    ("uniswap_v2_router02", "0x38ed1739"): "swapExactTokensForTokens",
    ("uniswap_v3_swap_router", "0x414bf389"): "exactInputSingle",
    ("uniswap_v3_swap_router02", "0x5ae401dc"): "multicall",
    ("uniswap_universal_router", "0x3593564c"): "execute",
    ("balancer_v2_vault", "0x52bbbe29"): "swap",
    ("curve_pools", "0x3df02124"): "exchange",
    ("oneinch_v5_router", "0x12aa3caf"): "swap",
    ("oneinch_v6_router", "0x07ed2379"): "swap",
    ("zeroex_exchange_proxy", "0x415565b0"): "transformERC20",
    ("weth", "0xd0e30db0"): "deposit",
    ("weth", "0x2e1a7d4d"): "withdraw",
}


def write(tmp_path: Path, doc: dict, name: str = "registry.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def edited(**changes) -> dict:
    doc = copy.deepcopy(SHIPPED)
    for key, value in changes.items():
        doc[key] = value
    return doc


def protocol_index(doc: dict, name: str) -> int:
    return next(i for i, p in enumerate(doc["protocols"]) if p["name"] == name)


# --- the shipped registry ---------------------------------------------------------------------


def test_shipped_registry_covers_the_protocols_with_published_selectors():
    reg = load_registry()
    for (proto, selector), method in PUBLISHED.items():
        names = {m.selector: m.name for m in reg.protocol(proto).methods}
        assert names.get(selector) == method, (proto, selector)
    kinds = {p.name: p.kind for p in reg.protocols}
    assert kinds["uniswap_v2_router02"] == "dex_router"
    assert kinds["sushiswap_router"] == "dex_router"
    assert kinds["erc20"] == "token"
    assert kinds["permit2"] == "permit2"
    assert kinds["oneinch_v5_router"] == kinds["zeroex_exchange_proxy"] == "aggregator"
    # Universal Router commands that the issue names are decoded, not just named
    core = reg.command_sets["uniswap_universal_router_core"].commands
    for code, name in [(0x00, "V3_SWAP_EXACT_IN"), (0x01, "V3_SWAP_EXACT_OUT"), (0x08, "V2_SWAP_EXACT_IN"),
                       (0x09, "V2_SWAP_EXACT_OUT"), (0x0A, "PERMIT2_PERMIT"), (0x0B, "WRAP_ETH"),
                       (0x0C, "UNWRAP_WETH"), (0x04, "SWEEP")]:
        assert core[code].name == name and core[code].decodable


def test_shipped_tokens_have_their_mainnet_decimals():
    reg = load_registry()
    by_symbol = {t.symbol: t for t in reg.tokens.values()}
    assert by_symbol["USDC"].decimals == 6 and by_symbol["USDT"].decimals == 6
    assert by_symbol["WBTC"].decimals == 8
    assert by_symbol["WETH"].decimals == by_symbol["DAI"].decimals == 18
    assert by_symbol["WETH"].address == "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    assert {"LINK", "UNI", "stETH", "wstETH", "MKR", "AAVE", "PEPE", "SHIB"} <= set(by_symbol)


def test_describe_selector_names_the_protocol():
    reg = load_registry()
    assert reg.describe_selector("0x7FF36AB5") == "Uniswap V2 Router02: swapExactETHForTokens"
    assert reg.describe_selector("0x12345678") is None


def test_a_json_abi_fragment_is_the_same_method_as_its_signature(tmp_path):
    doc = edited(protocols=[{
        "name": "router_a", "kind": "dex_router", "addresses": ["0x" + "11" * 20],
        "methods": [{"abi": {"type": "function", "name": "swapExactTokensForTokens", "inputs": [
            {"name": "amountIn", "type": "uint256"}, {"name": "amountOutMin", "type": "uint256"},
            {"name": "path", "type": "address[]"}, {"name": "to", "type": "address"},
            {"name": "deadline", "type": "uint256"}]},
            "fields": {"swap_kind": "exact_in", "amount_in": "amountIn", "path": "path"}}],
    }], command_sets=[])
    reg = load_registry(write(tmp_path, doc))
    method = reg.protocol("router_a").methods[0]
    assert method.selector == "0x38ed1739"
    assert method.signature == "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)"


def test_a_new_protocol_is_an_edit_of_the_file(tmp_path):
    """No code change: a protocol added to a copy of the file decodes."""
    doc = copy.deepcopy(SHIPPED)
    router = "0x" + "42" * 20
    doc["protocols"].append({
        "name": "toy_dex", "label": "Toy DEX", "kind": "dex_router", "addresses": [router],
        "methods": [{"signature": "swap(address tokenIn, address tokenOut, uint256 amountIn, uint256 minOut, address to)",
                     "fields": {"swap_kind": "exact_in", "token_in": "tokenIn", "token_out": "tokenOut",
                                "amount_in": "amountIn", "amount_out_min": "minOut", "recipient": "to"}}],
    })
    reg = load_registry(write(tmp_path, doc))
    usdc, weth = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    data = bytes.fromhex("3a1ad7a0")  # not the selector: the decoder computes it from the signature
    selector = next(m.selector for m in reg.protocol("toy_dex").methods)
    data = bytes.fromhex(selector[2:]) + encode(["address", "address", "uint256", "uint256", "address"],
                                                [usdc, weth, 2_500_000, 10**15, "0x" + "ab" * 20])
    out = decode_calldata(pl.DataFrame({"hash": ["0x01"], "to": [router], "value": ["0"], "input": ["0x" + data.hex()]}), reg)
    row = out.row(0, named=True)
    assert (row["protocol"], row["method"], row["decode_status"]) == ("toy_dex", "swap", "decoded")
    assert (row["token_in_symbol"], row["token_out_symbol"], row["amount_in"], row["amount_in_norm"]) == ("USDC", "WETH", "2500000", 2.5)


# --- broken files fail with a message naming the field ----------------------------------------


def test_missing_field_is_named(tmp_path):
    doc = copy.deepcopy(SHIPPED)
    i = protocol_index(doc, "uniswap_v3_swap_router")
    del doc["protocols"][i]["kind"]
    with pytest.raises(RegistryError, match=rf"protocols\[{i}\] \(uniswap_v3_swap_router\): missing field 'kind'"):
        load_registry(write(tmp_path, doc))
    doc = copy.deepcopy(SHIPPED)
    del doc["tokens"][3]["decimals"]
    with pytest.raises(RegistryError, match=r"tokens\[3\] \(USDC\): missing field 'decimals'"):
        load_registry(write(tmp_path, doc))


def test_bad_address_is_named(tmp_path):
    doc = copy.deepcopy(SHIPPED)
    i = protocol_index(doc, "sushiswap_router")
    doc["protocols"][i]["addresses"] = ["0xd9e1cE17f2641f24aE83637ab66a2cca9C378B9"]  # one digit short
    with pytest.raises(RegistryError, match=rf"protocols\[{i}\] \(sushiswap_router\)\.addresses\[0\]: "
                                            r"'0xd9e1cE17f2641f24aE83637ab66a2cca9C378B9' is not an address"):
        load_registry(write(tmp_path, doc))
    doc = copy.deepcopy(SHIPPED)
    doc["protocols"][i]["addresses"] = ["0xd9e1cE17f2641f24aE83637ab66a2cca9C378B9E"]  # last digit changed: checksum fails
    with pytest.raises(RegistryError, match=rf"protocols\[{i}\] \(sushiswap_router\)\.addresses\[0\]: .*EIP-55 checksum"):
        load_registry(write(tmp_path, doc))


def test_bad_selector_is_named(tmp_path):
    doc = copy.deepcopy(SHIPPED)
    i = protocol_index(doc, "uniswap_v2_router02")
    doc["protocols"][i]["methods"][0]["selector"] = "0x38ed1738"
    with pytest.raises(RegistryError, match=rf"protocols\[{i}\] \(uniswap_v2_router02\)\.methods\[0\] "
                                            r"\(swapExactTokensForTokens\(.*\)\.selector: selector 0x38ed1738 does not "
                                            r"match keccak of swapExactTokensForTokens\(uint256,uint256,address\[\],address,uint256\) = 0x38ed1739"):
        load_registry(write(tmp_path, doc))
    doc = copy.deepcopy(SHIPPED)
    doc["protocols"][i]["methods"][0]["selector"] = "0x38ed17"
    with pytest.raises(RegistryError, match=r"methods\[0\] .*\.selector: '0x38ed17' is not a 4-byte selector"):
        load_registry(write(tmp_path, doc))


def test_field_naming_an_unknown_parameter_is_named(tmp_path):
    doc = copy.deepcopy(SHIPPED)
    i = protocol_index(doc, "uniswap_v2_router02")
    doc["protocols"][i]["methods"][0]["fields"]["amount_in"] = "amountInn"
    with pytest.raises(RegistryError, match=r"methods\[0\] .*\.fields\.amount_in: 'amountInn': no parameter 'amountInn' "
                                            r"\(available: amountIn, amountOutMin, path, to, deadline\)"):
        load_registry(write(tmp_path, doc))


def test_wrong_types_and_bad_abi_are_named(tmp_path):
    doc = copy.deepcopy(SHIPPED)
    i = protocol_index(doc, "weth")
    doc["protocols"][i]["methods"][1]["signature"] = "withdraw(uint257 wad)"
    with pytest.raises(RegistryError, match=r"\(weth\)\.methods\[1\] .*\.signature: .*uint257"):
        load_registry(write(tmp_path, doc))
    doc = copy.deepcopy(SHIPPED)
    doc["tokens"][2]["decimals"] = "18"
    with pytest.raises(RegistryError, match=r"tokens\[2\] \(WETH\)\.decimals: '18' is not of type 'integer'"):
        load_registry(write(tmp_path, doc))
    doc = copy.deepcopy(SHIPPED)
    i = protocol_index(doc, "erc20")
    doc["protocols"][i]["methods"][0]["fields"]["recipient"] = "amount"  # a uint256, not an address
    with pytest.raises(RegistryError, match=r"fields\.recipient: 'amount' is uint256, this field needs address"):
        load_registry(write(tmp_path, doc))


def test_conflicts_and_bad_references_are_named(tmp_path):
    doc = copy.deepcopy(SHIPPED)
    doc["protocols"].append({"name": "copy_of_v2", "kind": "dex_router",
                             "addresses": ["0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"], "methods_from": "uniswap_v2_router02"})
    with pytest.raises(RegistryError, match="already registered by protocol 'uniswap_v2_router02'"):
        load_registry(write(tmp_path, doc))
    doc = copy.deepcopy(SHIPPED)
    i = protocol_index(doc, "uniswap_universal_router")
    doc["protocols"][i]["command_set"] = "no_such_set"
    with pytest.raises(RegistryError, match=rf"protocols\[{i}\] \(uniswap_universal_router\)\.command_set: no command set named 'no_such_set'"):
        load_registry(write(tmp_path, doc))


def test_not_json_and_missing_file_name_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"schema_version": 1,')
    with pytest.raises(RegistryError, match=r"broken\.json: not valid JSON"):
        load_registry(path)
    with pytest.raises(RegistryError, match=r"nope\.json: cannot read the protocol registry"):
        load_registry(tmp_path / "nope.json")


def test_a_changed_file_is_reloaded(tmp_path):
    path = write(tmp_path, SHIPPED)
    assert load_registry(path).protocol_at("0x" + "42" * 20) is None
    doc = copy.deepcopy(SHIPPED)
    doc["protocols"].append({"name": "late", "kind": "other", "addresses": ["0x" + "42" * 20],
                             "methods": [{"name": "poke", "selector": "0x01020304"}]})
    path.write_text(json.dumps(doc, indent=1))  # different size: a new version of the file
    assert load_registry(path).protocol_at("0x" + "42" * 20).name == "late"


# --- the setting --------------------------------------------------------------------------------


def test_setting_points_at_another_registry(settings_factory, tmp_path):
    assert settings_factory().protocol_registry == DEFAULT_REGISTRY_PATH
    path = write(tmp_path, SHIPPED, "mine.json")
    assert settings_factory(MEV_PROTOCOL_REGISTRY=str(path)).protocol_registry == path
    with pytest.raises(SettingsError, match="MEV_PROTOCOL_REGISTRY: no such file"):
        settings_factory(MEV_PROTOCOL_REGISTRY=str(tmp_path / "missing.json"))
