"""Deploy WETH9, Uniswap V2 (factory + Router02) and devnet ERC-20s at their MAINNET addresses.

Code is placed with ``anvil_setCode`` and constructor-written storage with ``anvil_setStorageAt``,
so the mainnet protocol registry applies unchanged to the local chain:

* WETH9 runtime code from ``@uniswap/v2-periphery`` + name/symbol/decimals in slots 0/1/2;
* UniswapV2Factory runtime code from ``@uniswap/v2-core`` + feeToSetter in slot 1 (pairs are then
  created by the factory itself with CREATE2, so their init-code hash is mainnet's);
* Router02: its constructor writes immutables (factory, WETH) into the runtime code, so the
  runtime code is obtained by executing the creation code with the mainnet constructor args
  (``eth_call`` without ``to``) and then placed at the mainnet address;
* tokens: ``contracts/DevToken.sol`` (compiled with the bundled solc-js, cached under the tools
  folder), placed at the mainnet addresses of USDC, USDT, WBTC, DAI, LINK, UNI and initialised
  with their real name/symbol/decimals.

Pools are then created and seeded through Router02 ``addLiquidity``/``addLiquidityETH`` from the
deployer (anvil dev account 0), at realistic reference prices.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from mev_assets.devnet.anvil import DEVNET_CHAIN_ID
from mev_assets.devnet.rpc import (
    DevAccount,
    RpcClient,
    RpcError,
    checksum,
    derive_account,
    mapping_slot,
    nested_mapping_slot,
    selector,
    short_string_word,
    to_int,
    word,
)
from mev_assets.devnet.uniswap import (
    MAX_UINT256,
    SEL_BALANCE_OF,
    SEL_GET_AMOUNTS_OUT,
    SEL_GET_PAIR,
    SEL_GET_RESERVES,
    V2_FACTORY,
    V2_INIT_CODE_HASH,
    V2_ROUTER02,
    WETH,
    pair_address,
    sort_tokens,
)

CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"
DEVTOKEN_SOURCE = CONTRACTS_DIR / "DevToken.sol"

# DevToken storage layout (see DevToken.sol).
DEVTOKEN_SLOT_TOTAL_SUPPLY = 3
DEVTOKEN_SLOT_BALANCES = 4
DEVTOKEN_SLOT_ALLOWANCES = 5
# WETH9 storage layout: name 0, symbol 1, decimals 2, balanceOf 3, allowance 4.
WETH_SLOT_BALANCES = 3
WETH_SLOT_ALLOWANCES = 4


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class TokenSpec:
    symbol: str
    name: str
    address: str
    decimals: int
    usd_price: float  # reference price used to seed pools and size traffic


TOKEN_SPECS: tuple[TokenSpec, ...] = (
    TokenSpec("USDC", "USD Coin", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", 6, 1.0),
    TokenSpec("USDT", "Tether USD", "0xdAC17F958D2ee523a2206206994597C13D831ec7", 6, 1.0),
    TokenSpec("WBTC", "Wrapped BTC", "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599", 8, 60_000.0),
    TokenSpec("DAI", "Dai Stablecoin", "0x6B175474E89094C44Da98b954EedeAC495271d0F", 18, 1.0),
    TokenSpec("LINK", "ChainLink Token", "0x514910771AF9Ca656af840dff83E8264EcF986CA", 18, 15.0),
    TokenSpec("UNI", "Uniswap", "0x1f9840a85d5aF5bf1D1762F925BDADdC4201F984", 18, 8.0),
)
WETH_SPEC = TokenSpec("WETH", "Wrapped Ether", WETH, 18, 3_000.0)

# (symbol A, symbol B, amount A, amount B) in whole tokens: deep and shallow pools, so that
# only large swaps are worth sandwiching on the deep ones.
POOL_SPECS: tuple[tuple[str, str, str, str], ...] = (
    ("WETH", "USDC", "3000", "9000000"),
    ("WETH", "USDT", "1500", "4500000"),
    ("WETH", "DAI", "600", "1800000"),
    ("WETH", "WBTC", "800", "40"),
    ("WETH", "LINK", "300", "60000"),
    ("WETH", "UNI", "200", "75000"),
    ("USDC", "USDT", "2000000", "2000000"),
    ("DAI", "USDC", "1000000", "1000000"),
    ("WBTC", "USDC", "20", "1200000"),
)


@dataclass(frozen=True)
class TokenInfo:
    symbol: str
    name: str
    address: str
    decimals: int
    usd_price: float

    def units(self, amount: float | str | Decimal) -> int:
        """Whole-token amount -> raw units."""
        return int(Decimal(str(amount)) * (10 ** self.decimals))


@dataclass(frozen=True)
class PoolInfo:
    pair: str
    token0: str
    token1: str
    symbol0: str
    symbol1: str
    reserve0: int  # reserves right after seeding
    reserve1: int


@dataclass
class Deployment:
    """Where everything is on the devnet. Saved as JSON (integers as decimal strings)."""

    chain_id: int
    weth: str
    factory: str
    router: str
    init_code_hash: str
    deployer: str
    block_number: int
    tokens: list[TokenInfo] = field(default_factory=list)  # WETH first
    pools: list[PoolInfo] = field(default_factory=list)

    def token(self, symbol_or_address: str) -> TokenInfo:
        key = symbol_or_address.lower()
        for t in self.tokens:
            if t.symbol.lower() == key or t.address.lower() == key:
                return t
        raise KeyError(symbol_or_address)

    def token_by_address(self, address: str) -> TokenInfo | None:
        key = address.lower()
        return next((t for t in self.tokens if t.address.lower() == key), None)

    @property
    def erc20s(self) -> list[TokenInfo]:
        """The devnet tokens (everything but WETH)."""
        return [t for t in self.tokens if t.address != self.weth]

    def pool(self, a: str, b: str) -> PoolInfo | None:
        ta, tb = self.token(a).address, self.token(b).address
        t0, t1 = sort_tokens(ta, tb)
        return next((p for p in self.pools if p.token0 == t0 and p.token1 == t1), None)

    def to_dict(self) -> dict:
        d = asdict(self)
        for p in d["pools"]:
            p["reserve0"], p["reserve1"] = str(p["reserve0"]), str(p["reserve1"])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Deployment":
        d = dict(d)
        tokens = [TokenInfo(**t) for t in d.pop("tokens")]
        pools = [PoolInfo(**{**p, "reserve0": int(p["reserve0"]), "reserve1": int(p["reserve1"])}) for p in d.pop("pools")]
        return cls(**d, tokens=tokens, pools=pools)

    def save(self, path: Path | str) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path | str) -> "Deployment":
        return cls.from_dict(json.loads(Path(path).read_text()))


# --- artifacts -------------------------------------------------------------------------------

def _node_modules(tools_dir: Path) -> Path:
    nm = Path(tools_dir) / "node_modules"
    if not (nm / "@uniswap/v2-core/build/UniswapV2Factory.json").is_file():
        raise DeployError(f"Uniswap artifacts not found under {nm}; run `make setup`")
    return nm


def uniswap_artifact(tools_dir: Path, package: str, name: str) -> dict:
    return json.loads((_node_modules(tools_dir) / "@uniswap" / package / "build" / f"{name}.json").read_text())


def _hex(s: str) -> str:
    return s if s.startswith("0x") else "0x" + s


def compile_devtoken(tools_dir: Path, force: bool = False) -> dict:
    """DevToken's ABI and bytecodes, compiled with the bundled solc-js (never downloads a
    compiler) and cached under ``<tools>/cache/``. Returns {abi, bytecode, deployedBytecode, ...}."""
    source = DEVTOKEN_SOURCE.read_text()
    solc_dir = Path(tools_dir) / "node_modules" / "solc"
    solc_js = solc_dir / "solc.js"
    if not solc_js.is_file() or not (solc_dir / "soljson.js").is_file():
        raise DeployError(f"solc-js not found at {solc_dir}; run `make setup`")
    solc_version = json.loads((solc_dir / "package.json").read_text()).get("version", "?")
    settings = {
        "optimizer": {"enabled": True, "runs": 200},
        "evmVersion": "cancun",
        "outputSelection": {"*": {"DevToken": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
    }
    key = hashlib.sha256(json.dumps([source, solc_version, settings], sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(tools_dir) / "cache" / f"DevToken-{key}.json"
    if cache.is_file() and not force:
        return json.loads(cache.read_text())
    node = shutil.which("node")
    if node is None:
        raise DeployError("node not found on PATH (needed to run the bundled solc-js)")
    std_input = {"language": "Solidity", "sources": {"DevToken.sol": {"content": source}}, "settings": settings}
    proc = subprocess.run([node, str(solc_js), "--standard-json"], input=json.dumps(std_input),
                          capture_output=True, text=True, timeout=300, cwd=solc_dir)
    start = proc.stdout.find("{")
    if proc.returncode != 0 or start < 0:
        raise DeployError(f"solc-js failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout[:500]}")
    out = json.loads(proc.stdout[start:])
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise DeployError("DevToken.sol does not compile: " + "; ".join(e.get("formattedMessage", e.get("message", "")) for e in errors))
    c = out["contracts"]["DevToken.sol"]["DevToken"]
    artifact = {
        "contractName": "DevToken",
        "compiler": f"solc-js {solc_version}",
        "settings": settings,
        "abi": c["abi"],
        "bytecode": _hex(c["evm"]["bytecode"]["object"]),
        "deployedBytecode": _hex(c["evm"]["deployedBytecode"]["object"]),
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(artifact))
    tmp.replace(cache)
    return artifact


# --- deployment ------------------------------------------------------------------------------

def _fees(rpc: RpcClient) -> tuple[int, int]:
    base = to_int(rpc.call("eth_getBlockByNumber", ["latest", False])["baseFeePerGas"])
    tip = 10**9
    return 2 * base + tip, tip


def send_and_mine(rpc: RpcClient, account: DevAccount, txs: list[dict], timeout: float = 120.0) -> list[dict]:
    """Sign ``txs`` (to/data/value/gas) from ``account`` with consecutive nonces, send them and
    mine (``evm_mine``) until all are included. Raises DeployError if any reverted."""
    nonce = to_int(rpc.call("eth_getTransactionCount", [account.address, "pending"]))
    max_fee, tip = _fees(rpc)
    raws = []
    for i, tx in enumerate(txs):
        full = {"type": 2, "chainId": DEVNET_CHAIN_ID, "nonce": nonce + i, "maxFeePerGas": max_fee,
                "maxPriorityFeePerGas": tip, "value": 0, "data": b"", **tx}
        raws.append(account.sign(full)[0])
    hashes = rpc.batch_strict([("eth_sendRawTransaction", [raw]) for raw in raws])
    receipts = rpc.wait_receipts(hashes, timeout=timeout, mine=True)
    failed = [(i, r["transactionHash"]) for i, r in enumerate(receipts) if to_int(r["status"]) != 1]
    if failed:
        raise DeployError(f"deployment transactions reverted: {failed}")
    return receipts


def _runtime_code_via_call(rpc: RpcClient, creation_code: str, ctor_args: bytes, sender: str) -> str:
    """Run creation code (with constructor args) in an eth_call; the return data is the runtime code
    including the immutables the constructor wrote."""
    data = _hex(creation_code) + ctor_args.hex()
    code = rpc.call("eth_call", [{"from": sender, "data": data, "gas": hex(10_000_000)}, "latest"])
    if len(code) <= 2:
        raise DeployError("constructor eth_call returned no code")
    return code


def _call_uint(rpc: RpcClient, to: str, data: bytes, block="latest") -> int:
    return int.from_bytes(rpc.eth_call(to, data, block)[:32], "big")


def is_deployed(rpc: RpcClient) -> bool:
    return len(rpc.call("eth_getCode", [V2_FACTORY, "latest"])) > 2


def deploy(rpc_url: str, tools_dir: Path, out_path: Path | str | None = None, *,
           deployer: DevAccount | None = None) -> Deployment:
    """Deploy everything onto the anvil at ``rpc_url`` and seed the pools; save JSON to ``out_path``.

    Idempotent: if the factory already has code, the existing deployment is read back from the
    chain (``read_deployment``) instead.
    """
    rpc = RpcClient(rpc_url)
    chain_id = to_int(rpc.call("eth_chainId"))
    if chain_id != DEVNET_CHAIN_ID:
        raise DeployError(f"refusing to deploy onto chain id {chain_id}: the devnet is chain {DEVNET_CHAIN_ID}")
    if is_deployed(rpc):
        dep = read_deployment(rpc_url)
        if out_path is not None:
            dep.save(out_path)
        return dep
    deployer = deployer or derive_account(0)
    tools_dir = Path(tools_dir)

    weth_art = uniswap_artifact(tools_dir, "v2-periphery", "WETH9")
    factory_art = uniswap_artifact(tools_dir, "v2-core", "UniswapV2Factory")
    router_art = uniswap_artifact(tools_dir, "v2-periphery", "UniswapV2Router02")
    token_art = compile_devtoken(tools_dir)

    router_code = _runtime_code_via_call(rpc, router_art["bytecode"], abi_encode(["address", "address"], [V2_FACTORY, WETH]),
                                         deployer.address)
    if V2_INIT_CODE_HASH[2:] not in router_code:
        raise DeployError("Router02 artifact does not carry the mainnet pair init-code hash")

    calls: list[tuple[str, list]] = [
        ("anvil_setCode", [WETH, _hex(weth_art["evm"]["deployedBytecode"]["object"])]),
        ("anvil_setStorageAt", [WETH, word(0), word(short_string_word("Wrapped Ether"))]),
        ("anvil_setStorageAt", [WETH, word(1), word(short_string_word("WETH"))]),
        ("anvil_setStorageAt", [WETH, word(2), word(18)]),
        ("anvil_setCode", [V2_FACTORY, _hex(factory_art["evm"]["deployedBytecode"]["object"])]),
        # UniswapV2Factory(address _feeToSetter): slot 0 feeTo (zero), slot 1 feeToSetter.
        ("anvil_setStorageAt", [V2_FACTORY, word(1), word(int(deployer.address, 16))]),
        ("anvil_setCode", [V2_ROUTER02, router_code]),
    ]
    for spec in TOKEN_SPECS:
        calls.append(("anvil_setCode", [spec.address, token_art["deployedBytecode"]]))
    # Enough ETH for the deployer to seed the WETH pools, whatever the node's --balance.
    calls.append(("anvil_setBalance", [deployer.address, hex(10**6 * 10**18)]))
    rpc.batch_strict(calls)

    specs = {s.symbol: s for s in (WETH_SPEC, *TOKEN_SPECS)}
    infos = {s: TokenInfo(sp.symbol, sp.name, sp.address, sp.decimals, sp.usd_price) for s, sp in specs.items()}
    need: dict[str, int] = {}
    for a, b, amt_a, amt_b in POOL_SPECS:
        for sym, amt in ((a, amt_a), (b, amt_b)):
            if sym != "WETH":
                need[sym] = need.get(sym, 0) + infos[sym].units(amt)

    init_abi = ["string", "string", "uint8", "address"]
    sel_init = selector("initialize(string,string,uint8,address)")
    sel_mint = selector("mint(address,uint256)")
    sel_approve = selector("approve(address,uint256)")
    setup_txs = []
    for spec in TOKEN_SPECS:
        setup_txs.append({"to": spec.address, "gas": 200_000,
                          "data": sel_init + abi_encode(init_abi, [spec.name, spec.symbol, spec.decimals, deployer.address])})
        setup_txs.append({"to": spec.address, "gas": 100_000,
                          "data": sel_mint + abi_encode(["address", "uint256"], [deployer.address, need.get(spec.symbol, 0) * 2 + 1])})
        setup_txs.append({"to": spec.address, "gas": 60_000,
                          "data": sel_approve + abi_encode(["address", "uint256"], [V2_ROUTER02, MAX_UINT256])})
    send_and_mine(rpc, deployer, setup_txs)

    deadline = 2**40
    sel_add = selector("addLiquidity(address,address,uint256,uint256,uint256,uint256,address,uint256)")
    sel_add_eth = selector("addLiquidityETH(address,uint256,uint256,uint256,address,uint256)")
    liq_txs = []
    for a, b, amt_a, amt_b in POOL_SPECS:
        ua, ub = infos[a].units(amt_a), infos[b].units(amt_b)
        if a == "WETH" or b == "WETH":
            token, amount_token, amount_eth = (infos[b], ub, ua) if a == "WETH" else (infos[a], ua, ub)
            data = sel_add_eth + abi_encode(["address", "uint256", "uint256", "uint256", "address", "uint256"],
                                            [token.address, amount_token, amount_token, amount_eth, deployer.address, deadline])
            liq_txs.append({"to": V2_ROUTER02, "value": amount_eth, "gas": 4_000_000, "data": data})
        else:
            data = sel_add + abi_encode(["address", "address", "uint256", "uint256", "uint256", "uint256", "address", "uint256"],
                                        [infos[a].address, infos[b].address, ua, ub, ua, ub, deployer.address, deadline])
            liq_txs.append({"to": V2_ROUTER02, "gas": 4_000_000, "data": data})
    send_and_mine(rpc, deployer, liq_txs)

    dep = read_deployment(rpc_url, deployer=deployer.address)
    verify_deployment(rpc_url, dep)
    if out_path is not None:
        dep.save(out_path)
    return dep


def read_deployment(rpc_url: str, deployer: str | None = None) -> Deployment:
    """Rebuild the Deployment of an already deployed devnet from the chain (fixed addresses)."""
    rpc = RpcClient(rpc_url)
    if not is_deployed(rpc):
        raise DeployError(f"no Uniswap V2 factory at {V2_FACTORY} on {rpc_url}; run `mev-assets devnet deploy` first")
    block = to_int(rpc.call("eth_blockNumber"))
    tokens = [TokenInfo(WETH_SPEC.symbol, WETH_SPEC.name, WETH, 18, WETH_SPEC.usd_price)]
    for spec in TOKEN_SPECS:
        dec = _call_uint(rpc, spec.address, selector("decimals()"), block)
        if dec != spec.decimals:
            raise DeployError(f"{spec.symbol} at {spec.address} reports {dec} decimals, expected {spec.decimals}")
        tokens.append(TokenInfo(spec.symbol, spec.name, spec.address, spec.decimals, spec.usd_price))
    by_symbol = {t.symbol: t for t in tokens}
    pools = []
    for a, b, _, _ in POOL_SPECS:
        ta, tb = by_symbol[a].address, by_symbol[b].address
        raw = rpc.eth_call(V2_FACTORY, SEL_GET_PAIR + abi_encode(["address", "address"], [ta, tb]), block)
        pair = checksum("0x" + raw[12:32].hex())
        if int(pair, 16) == 0:
            raise DeployError(f"pool {a}/{b} does not exist on {rpc_url}")
        r0, r1, _ = abi_decode(["uint112", "uint112", "uint32"], rpc.eth_call(pair, SEL_GET_RESERVES, block))
        t0, t1 = sort_tokens(ta, tb)
        s0, s1 = (a, b) if t0 == ta else (b, a)
        pools.append(PoolInfo(pair, t0, t1, s0, s1, r0, r1))
    setter = rpc.call("eth_getStorageAt", [V2_FACTORY, word(1), hex(block)])
    return Deployment(
        chain_id=DEVNET_CHAIN_ID, weth=WETH, factory=V2_FACTORY, router=V2_ROUTER02,
        init_code_hash=V2_INIT_CODE_HASH, deployer=deployer or checksum("0x" + setter[-40:]),
        block_number=block, tokens=tokens, pools=pools,
    )


def verify_deployment(rpc_url: str, dep: Deployment) -> None:
    """Check the invariants the rest of the project relies on; raises DeployError."""
    rpc = RpcClient(rpc_url)
    for pool in dep.pools:
        expected = pair_address(pool.token0, pool.token1, dep.factory, dep.init_code_hash)
        if expected != pool.pair:
            raise DeployError(f"pair {pool.symbol0}/{pool.symbol1}: factory.getPair {pool.pair} != CREATE2 {expected}")
        # Router02 finds the pair through UniswapV2Library.pairFor (the same CREATE2 with its
        # hard-coded init-code hash): a quote through the router proves it reaches this pair.
        amount = 10 ** dep.token_by_address(pool.token0).decimals
        raw = rpc.eth_call(dep.router, SEL_GET_AMOUNTS_OUT + abi_encode(["uint256", "address[]"], [amount, [pool.token0, pool.token1]]))
        quoted = abi_decode(["uint256[]"], raw)[0][-1]
        r0, r1, _ = abi_decode(["uint112", "uint112", "uint32"], rpc.eth_call(pool.pair, SEL_GET_RESERVES))
        if quoted != amount * 997 * r1 // (r0 * 1000 + amount * 997):
            raise DeployError(f"router quote on {pool.symbol0}/{pool.symbol1} does not match the pair's reserves")


# --- funding (devnet cheat codes) -------------------------------------------------------------

def fund_accounts(rpc_url: str, dep: Deployment, addresses: list[str], *, eth_wei: int,
                  token_units: dict[str, int], approve_router: bool = True, only_below: float = 1.0) -> int:
    """Give ``addresses`` ETH (``anvil_setBalance``) and devnet tokens (DevToken balance slots,
    keeping ``totalSupply`` consistent), plus an unlimited Router02 allowance.

    A balance below ``only_below * target`` is raised to the target; others are left alone (so
    ``only_below=0.25`` is a top-up). Invisible in the mempool: this is devnet set-up, not
    traffic. Returns the number of balances written.
    """
    rpc = RpcClient(rpc_url)
    tokens = [dep.token(sym) for sym in token_units]
    if any(t.address == dep.weth for t in tokens):
        raise ValueError("fund WETH positions with ETH, not storage writes")
    reads: list[tuple[str, list]] = []
    for addr in addresses:
        reads.append(("eth_getBalance", [addr, "latest"]))
        for tok in tokens:
            data = "0x" + (SEL_BALANCE_OF + bytes(12) + bytes.fromhex(addr[2:])).hex()
            reads.append(("eth_call", [{"to": tok.address, "data": data}, "latest"]))
    current = iter(rpc.batch_strict(reads))
    writes: list[tuple[str, list]] = []
    supply_delta: dict[str, int] = {}
    n_written = 0
    for addr in addresses:
        cur_eth = to_int(next(current))
        if cur_eth < only_below * eth_wei:
            writes.append(("anvil_setBalance", [addr, hex(eth_wei)]))
            n_written += 1
        for tok in tokens:
            target = token_units[tok.symbol]
            cur = to_int(next(current))
            if cur < only_below * target:
                supply_delta[tok.address] = supply_delta.get(tok.address, 0) + target - cur
                writes.append(("anvil_setStorageAt", [tok.address, word(mapping_slot(addr, DEVTOKEN_SLOT_BALANCES)), word(target)]))
                n_written += 1
            if approve_router:
                slot = nested_mapping_slot(addr, dep.router, DEVTOKEN_SLOT_ALLOWANCES)
                writes.append(("anvil_setStorageAt", [tok.address, word(slot), word(MAX_UINT256)]))
    for token, delta in supply_delta.items():
        supply = to_int(rpc.call("eth_getStorageAt", [token, word(DEVTOKEN_SLOT_TOTAL_SUPPLY), "latest"]))
        writes.append(("anvil_setStorageAt", [token, word(DEVTOKEN_SLOT_TOTAL_SUPPLY), word(supply + delta)]))
    if writes:
        rpc.batch_strict(writes)
    return n_written


def token_amounts_usd(dep: Deployment, usd: float) -> dict[str, int]:
    """Raw units worth ``usd`` of every devnet token at reference prices."""
    return {t.symbol: t.units(Decimal(str(usd)) / Decimal(str(t.usd_price))) for t in dep.erc20s}


__all__ = [
    "Deployment", "DeployError", "PoolInfo", "TokenInfo", "TokenSpec", "TOKEN_SPECS", "POOL_SPECS", "WETH_SPEC",
    "compile_devtoken", "deploy", "read_deployment", "verify_deployment", "fund_accounts", "token_amounts_usd",
    "is_deployed", "send_and_mine", "RpcError",
]
