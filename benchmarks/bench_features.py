"""Throughput of calldata decoding (``mev_assets.core.calldata.decode_calldata``, the core of
``tx_features``) against a per-transaction web3.py loop, measured in the same run.

    .venv/bin/python benchmarks/bench_features.py [--rows 100000] [--baseline-rows 4000] [--seed 7]

Workload: a mainnet-like mix built here with eth-abi from realistic parameters (registry tokens,
log-normal amounts, 2-3 hop paths, live-looking deadlines): ~35 % plain ETH transfers, ~25 %
ERC-20 transfer/approve/transferFrom, ~25 % router swaps (Uniswap V2 Router02 all six swap
methods, V3 SwapRouter and SwapRouter02 incl. multicall with unwrapWETH9, Universal Router
execute with WRAP_ETH / PERMIT2_PERMIT / V2 and V3 swaps / UNWRAP_WETH / SWEEP and split routes),
~15 % other (WETH deposit/withdraw, Permit2 approve, 1inch, 0x transformERC20, Balancer swap,
Curve exchange, and calls to unknown selectors).

Baseline (the way most scripts do it): for each transaction, skip empty calldata, pick the web3
``Contract`` for ``to`` (ABI from the registry; ERC-20 ABI for other addresses) and call
``contract.decode_function_input(input)``. It decodes the outer call only (no Universal Router
commands, no multicall children, no token lookups), so it does less work than the decoder.

Figures: decode_calldata on --rows transactions (vectorised engine and, for reference, the
eth-abi engine on the same rows), on a 10k-row window, and the baseline on --baseline-rows rows
(its per-transaction cost does not depend on the batch size). Single thread: polars is pinned to
one thread so the figure is per core.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("POLARS_MAX_THREADS", "1")  # one core: must be set before polars is imported

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402
from eth_abi import encode  # noqa: E402
from eth_utils import keccak  # noqa: E402

from mev_assets.core.calldata import decode_calldata  # noqa: E402
from mev_assets.core.registry import AbiType, Registry, load_registry  # noqa: E402

WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
V2_ROUTER = "0x7a250d5630b4cf539739df2c5dacb4c659f2488d"
V3_ROUTER = "0xe592427a0aece92de3edee1f18e0157c05861564"
SWAP_ROUTER02 = "0x68b3465833fb72a70ecdf485e0e4c7bd8665fc45"
UNIVERSAL_ROUTER = "0x3fc91a3afd70395cd496c647d5a6cc9d4b2b7fad"
PERMIT2 = "0x000000000022d473030f116ddee9f6b43ac78ba3"
ONEINCH_V5 = "0x1111111254eeb25477b68fb85ed929f73a960582"
ZEROEX = "0xdef1c0ded9bec7f1a1670819833240f027b25eff"
BALANCER = "0xba12222222228d8ba445958a75a0704d566bf2c8"
CURVE_3POOL = "0xbebc44782c7db0a1a60cb6fe97d0b483032ff1c7"
MSG_SENDER = "0x" + "00" * 19 + "01"
ADDRESS_THIS = "0x" + "00" * 19 + "02"
CONTRACT_BALANCE = 1 << 255
MAX_UINT = (1 << 256) - 1


def sel(signature: str) -> bytes:
    return keccak(text=signature)[:4]


class Mix:
    """Builds mainnet-like transactions; each ``make_*`` returns (to, value, calldata bytes)."""

    def __init__(self, registry: Registry, seed: int):
        self.rng = random.Random(seed)
        self.tokens = [t for t in registry.tokens.values() if not t.address.startswith(("0xeeee", "0x0000"))]
        self.now = 1_714_000_000

    def addr(self) -> str:
        return "0x" + self.rng.getrandbits(160).to_bytes(20, "big").hex()

    def token(self):
        return self.rng.choice(self.tokens)

    def amount(self, token) -> int:
        usd = 300 * math.exp(self.rng.gauss(0, 1.8))
        return max(1, int(usd * 10 ** token.decimals / (3000 if token.symbol in ("WETH", "stETH") else 1)))

    def path(self, hops: int) -> list[str]:
        toks = [self.token().address for _ in range(hops + 1)]
        return toks

    def v3_path(self, tokens: list[str]) -> bytes:
        out = bytes.fromhex(tokens[0][2:])
        for t in tokens[1:]:
            out += self.rng.choice((100, 500, 3000, 10000)).to_bytes(3, "big") + bytes.fromhex(t[2:])
        return out

    def deadline(self) -> int:
        return self.now + self.rng.choice((300, 1200, 1800))

    # --- kinds ------------------------------------------------------------------------------

    def eth_transfer(self):
        return self.addr(), str(int(0.05e18 * math.exp(self.rng.gauss(0, 1.5)))), b""

    def erc20(self):
        tok = self.token()
        u = self.rng.random()
        if u < 0.68:
            return tok.address, "0", sel("transfer(address,uint256)") + encode(["address", "uint256"], [self.addr(), self.amount(tok)])
        if u < 0.92:
            amt = MAX_UINT if self.rng.random() < 0.5 else self.amount(tok)
            return tok.address, "0", sel("approve(address,uint256)") + encode(["address", "uint256"], [self.addr(), amt])
        return tok.address, "0", sel("transferFrom(address,address,uint256)") + encode(
            ["address", "address", "uint256"], [self.addr(), self.addr(), self.amount(tok)])

    def v2_router(self):
        hops = 1 if self.rng.random() < 0.8 else 2
        path = self.path(hops)
        tok = self.token()
        amt, lim, to, dl = self.amount(tok), self.amount(tok), self.addr(), self.deadline()
        method = self.rng.choice(("swapExactETHForTokens", "swapETHForExactTokens", "swapExactTokensForETH",
                                  "swapTokensForExactETH", "swapExactTokensForTokens", "swapTokensForExactTokens"))
        if method in ("swapExactETHForTokens", "swapETHForExactTokens"):
            path[0] = WETH
            data = sel(f"{method}(uint256,address[],address,uint256)") + encode(
                ["uint256", "address[]", "address", "uint256"], [lim, path, to, dl])
            return V2_ROUTER, str(amt), data
        if method.endswith("ETH"):
            path[-1] = WETH
        data = sel(f"{method}(uint256,uint256,address[],address,uint256)") + encode(
            ["uint256", "uint256", "address[]", "address", "uint256"], [amt, lim, path, to, dl])
        return V2_ROUTER, "0", data

    def v3_router(self):
        a, b = self.token(), self.token()
        if self.rng.random() < 0.6:
            data = sel("exactInputSingle((address,address,uint24,address,uint256,uint256,uint256,uint160))") + encode(
                ["(address,address,uint24,address,uint256,uint256,uint256,uint160)"],
                [(a.address, b.address, 3000, self.addr(), self.deadline(), self.amount(a), self.amount(b), 0)])
        else:
            data = sel("exactInput((bytes,address,uint256,uint256,uint256))") + encode(
                ["(bytes,address,uint256,uint256,uint256)"],
                [(self.v3_path(self.path(2)), self.addr(), self.deadline(), self.amount(a), self.amount(b))])
        return V3_ROUTER, "0", data

    def swap_router02(self):
        a = self.token()
        eth_out = self.rng.random() < 0.5
        inner = [sel("exactInputSingle((address,address,uint24,address,uint256,uint256,uint160))") + encode(
            ["(address,address,uint24,address,uint256,uint256,uint160)"],
            [(a.address, WETH if eth_out else self.token().address, 500, ADDRESS_THIS if eth_out else MSG_SENDER,
              self.amount(a), self.amount(a), 0)])]
        if eth_out:
            inner.append(sel("unwrapWETH9(uint256,address)") + encode(["uint256", "address"], [self.amount(a), self.addr()]))
        data = sel("multicall(uint256,bytes[])") + encode(["uint256", "bytes[]"], [self.deadline(), inner])
        return SWAP_ROUTER02, "0", data

    def universal_router(self):
        a, b = self.token(), self.token()
        u = self.rng.random()
        cmds: list[int] = []
        inputs: list[bytes] = []
        value = "0"
        if u < 0.35:  # ETH in: WRAP_ETH + V3 or V2 exact in
            amt = self.amount(self.tokens[0])
            value = str(amt)
            cmds += [0x0b]
            inputs.append(encode(["address", "uint256"], [ADDRESS_THIS, amt]))
            if self.rng.random() < 0.5:
                cmds.append(0x00)
                inputs.append(encode(["address", "uint256", "uint256", "bytes", "bool"],
                                     [MSG_SENDER, CONTRACT_BALANCE, self.amount(b), self.v3_path([WETH, b.address]), False]))
            else:
                cmds.append(0x08)
                inputs.append(encode(["address", "uint256", "uint256", "address[]", "bool"],
                                     [MSG_SENDER, CONTRACT_BALANCE, self.amount(b), [WETH, b.address], False]))
        elif u < 0.65:  # permit + token -> token V3
            cmds += [0x0a, 0x00]
            inputs.append(encode(["((address,uint160,uint48,uint48),address,uint256)", "bytes"],
                                 [((a.address, MAX_UINT >> 96, self.now + 2_592_000, 0), UNIVERSAL_ROUTER, self.now + 1800),
                                  self.rng.randbytes(65)]))
            inputs.append(encode(["address", "uint256", "uint256", "bytes", "bool"],
                                 [MSG_SENDER, self.amount(a), self.amount(b), self.v3_path([a.address, b.address]), True]))
        elif u < 0.85:  # token -> ETH: V3 exact in to the router, UNWRAP_WETH to the user
            cmds += [0x00, 0x0c]
            inputs.append(encode(["address", "uint256", "uint256", "bytes", "bool"],
                                 [ADDRESS_THIS, self.amount(a), 0, self.v3_path([a.address, WETH]), True]))
            inputs.append(encode(["address", "uint256"], [MSG_SENDER, self.amount(self.tokens[0])]))
        else:  # split route V3 + V2, then SWEEP
            amt1, amt2 = self.amount(a), self.amount(a)
            cmds += [0x00, 0x08, 0x04]
            inputs.append(encode(["address", "uint256", "uint256", "bytes", "bool"],
                                 [ADDRESS_THIS, amt1, self.amount(b), self.v3_path([a.address, b.address]), True]))
            inputs.append(encode(["address", "uint256", "uint256", "address[]", "bool"],
                                 [ADDRESS_THIS, amt2, self.amount(b), [a.address, b.address], True]))
            inputs.append(encode(["address", "address", "uint256"], [b.address, MSG_SENDER, self.amount(b)]))
        data = sel("execute(bytes,bytes[],uint256)") + encode(["bytes", "bytes[]", "uint256"], [bytes(cmds), inputs, self.deadline()])
        return UNIVERSAL_ROUTER, value, data

    def misc(self):
        u = self.rng.random()
        a, b = self.token(), self.token()
        if u < 0.12:
            return WETH, str(self.amount(self.tokens[0])), sel("deposit()")
        if u < 0.20:
            return WETH, "0", sel("withdraw(uint256)") + encode(["uint256"], [self.amount(self.tokens[0])])
        if u < 0.27:
            return PERMIT2, "0", sel("approve(address,address,uint160,uint48)") + encode(
                ["address", "address", "uint160", "uint48"], [a.address, UNIVERSAL_ROUTER, MAX_UINT >> 96, self.now + 86400])
        if u < 0.37:
            return ONEINCH_V5, "0", sel("swap(address,(address,address,address,address,uint256,uint256,uint256),bytes,bytes)") + encode(
                ["address", "(address,address,address,address,uint256,uint256,uint256)", "bytes", "bytes"],
                [self.addr(), (a.address, b.address, self.addr(), self.addr(), self.amount(a), self.amount(b), 4), b"",
                 self.rng.randbytes(self.rng.randrange(200, 900))])
        if u < 0.40:
            return ZEROEX, "0", sel("transformERC20(address,address,uint256,uint256,(uint32,bytes)[])") + encode(
                ["address", "address", "uint256", "uint256", "(uint32,bytes)[]"],
                [a.address, b.address, self.amount(a), self.amount(b), [(7, self.rng.randbytes(200)), (3, self.rng.randbytes(96))]])
        if u < 0.43:
            return BALANCER, "0", sel("swap((bytes32,uint8,address,address,uint256,bytes),(address,bool,address,bool),uint256,uint256)") + encode(
                ["(bytes32,uint8,address,address,uint256,bytes)", "(address,bool,address,bool)", "uint256", "uint256"],
                [(self.rng.randbytes(32), self.rng.randrange(2), a.address, b.address, self.amount(a), b""),
                 (self.addr(), False, self.addr(), False), self.amount(b), self.deadline()])
        if u < 0.50:
            return CURVE_3POOL, "0", sel("exchange(int128,int128,uint256,uint256)") + encode(
                ["int128", "int128", "uint256", "uint256"], [self.rng.randrange(3), self.rng.randrange(3), 10**21, 10**9])
        # unknown contracts and selectors (mints, NFT markets, games ...)
        return self.addr(), "0", self.rng.randbytes(4) + self.rng.randbytes(32 * self.rng.randrange(0, 6))

    def build(self, n: int) -> pl.DataFrame:
        kinds = [(0.35, self.eth_transfer), (0.25, self.erc20), (0.08, self.v2_router), (0.02, self.v3_router),
                 (0.04, self.swap_router02), (0.11, self.universal_router), (0.15, self.misc)]
        cum, acc = [], 0.0
        for w, f in kinds:
            acc += w
            cum.append((acc, f))
        rows = []
        for i in range(n):
            u = self.rng.random() * acc
            f = next(f for c, f in cum if u < c)
            to, value, data = f()
            rows.append(("0x" + keccak(i.to_bytes(8, "big")).hex(), to, value, "0x" + data.hex(), self.addr()))
        return pl.DataFrame(rows, schema=["hash", "to", "value", "input", "from"], orient="row")


# --- baseline: web3.py per transaction -------------------------------------------------------


def _abi_json_type(t: AbiType) -> dict:
    if t.kind == "tuple":
        return {"type": "tuple", "components": [{"name": c.name, **_abi_json_type(c.type)} for c in t.components]}
    if t.kind == "array":
        inner = _abi_json_type(t.item)  # type: ignore[arg-type]
        suffix = f"[{'' if t.length is None else t.length}]"
        return {**inner, "type": inner["type"] + suffix}
    return {"type": t.canonical}


def web3_contracts(registry: Registry):
    """web3 Contract objects per address (ABI built from the registry) and one for ERC-20."""
    from web3 import Web3

    w3 = Web3()

    def abi(methods) -> list[dict]:
        return [{"type": "function", "name": m.name, "stateMutability": "payable", "outputs": [],
                 "inputs": [{"name": p.name, **_abi_json_type(p.type)} for p in m.params]}
                for m in methods if m.params is not None]

    by_address = {}
    for proto in registry.protocols:
        if proto.generic:
            continue
        contract = w3.eth.contract(abi=abi(proto.methods))
        for a in proto.addresses:
            by_address[a] = contract
    erc20 = w3.eth.contract(abi=abi(registry.protocol("erc20").methods))
    return by_address, erc20


def baseline(txs: pl.DataFrame, registry: Registry) -> tuple[float, float, int]:
    """(wall s, CPU s, rows decoded) of the per-transaction web3 loop (contract set-up excluded)."""
    by_address, erc20 = web3_contracts(registry)
    rows = list(zip(txs["to"].to_list(), txs["input"].to_list()))
    decoded = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for to, data in rows:
        if not data or data == "0x":
            continue
        contract = by_address.get(to, erc20)
        try:
            contract.decode_function_input(data)
            decoded += 1
        except Exception:
            pass
    return time.perf_counter() - t0, time.process_time() - c0, decoded


def timed(fn, repeat: int) -> tuple[float, float]:
    """Best wall time and best CPU time of this process (the machine may be shared: CPU time is
    what one core spent on the work)."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--baseline-rows", type=int, default=4_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    registry = load_registry()
    txs = Mix(registry, args.seed).build(args.rows)
    window = txs.head(10_000)
    sample = txs.head(args.baseline_rows)

    out = decode_calldata(txs, registry)  # warm-up (also builds the registry tables)
    status = out["decode_status"].value_counts(sort=True)
    wall_full, cpu_full = timed(lambda: decode_calldata(txs, registry), args.repeat)
    wall_window, cpu_window = timed(lambda: decode_calldata(window, registry), args.repeat)
    wall_eth_abi, cpu_eth_abi = timed(lambda: decode_calldata(txs, registry, engine="eth_abi"), 1)
    wall_base, cpu_base, base_decoded = baseline(sample, registry)

    def rates(n: int, wall: float, cpu: float) -> str:
        return f"{n / wall:,.0f} tx/s wall, {n / cpu:,.0f} tx/s CPU ({wall:.3f} s wall, {cpu:.3f} s CPU)"

    swaps = out.filter(pl.col("swap_kind").is_not_null()).height
    print(f"mix: {args.rows} txs (seed {args.seed}); decode_status {dict(status.iter_rows())}; swaps {swaps}")
    print(f"decode_calldata, {args.rows} rows: {rates(args.rows, wall_full, cpu_full)}; best of {args.repeat}, 1 thread")
    print(f"decode_calldata, 10k-row window: {rates(window.height, wall_window, cpu_window)}")
    print(f"decode_calldata engine=eth_abi (per-row eth-abi), {args.rows} rows: {rates(args.rows, wall_eth_abi, cpu_eth_abi)}")
    print(f"baseline web3 Contract.decode_function_input loop, {sample.height} rows ({base_decoded} decoded): "
          f"{rates(sample.height, wall_base, cpu_base)}")
    ratio = (args.rows / cpu_full) / (sample.height / cpu_base)
    ratio_window = (window.height / cpu_window) / (sample.height / cpu_base)
    ratio_eth_abi = (args.rows / cpu_eth_abi) / (sample.height / cpu_base)
    print(f"ratio to the baseline (CPU): {ratio:.1f}x  (10k window: {ratio_window:.1f}x; eth_abi engine: {ratio_eth_abi:.1f}x)")
    rate = args.rows / cpu_full
    ok = rate >= 50_000 and ratio >= 20
    print(f"targets (>= 50,000 tx/s and >= 20x baseline): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
