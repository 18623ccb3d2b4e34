"""Uniswap V2 at its mainnet addresses: constants, the constant-product maths (integer-exact,
as in UniswapV2Library), CREATE2 pair addresses, and Router02 swap call encoding/decoding."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from mev_assets.devnet.rpc import selector

WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
V2_FACTORY = "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f"
V2_ROUTER02 = "0x7a250d5630B4cF539739dF2C5dAcb4c659F2488D"
# keccak256 of UniswapV2Pair's creation code; hard-coded in Router02's UniswapV2Library.pairFor.
V2_INIT_CODE_HASH = "0x96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f"

MAX_UINT256 = 2**256 - 1

SWAP_EVENT_TOPIC = "0x" + keccak(text="Swap(address,uint256,uint256,uint256,uint256,address)").hex()
TRANSFER_EVENT_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()

# Router02 swap methods the devnet generates and the searcher decodes.
SWAP_SIGNATURES = {
    "swapExactETHForTokens": "swapExactETHForTokens(uint256,address[],address,uint256)",
    "swapETHForExactTokens": "swapETHForExactTokens(uint256,address[],address,uint256)",
    "swapExactTokensForETH": "swapExactTokensForETH(uint256,uint256,address[],address,uint256)",
    "swapTokensForExactETH": "swapTokensForExactETH(uint256,uint256,address[],address,uint256)",
    "swapExactTokensForTokens": "swapExactTokensForTokens(uint256,uint256,address[],address,uint256)",
    "swapTokensForExactTokens": "swapTokensForExactTokens(uint256,uint256,address[],address,uint256)",
}
SWAP_SELECTORS = {selector(sig): name for name, sig in SWAP_SIGNATURES.items()}
SWAP_METHODS = tuple(SWAP_SIGNATURES)
ETH_IN_METHODS = ("swapExactETHForTokens", "swapETHForExactTokens")
EXACT_IN_METHODS = ("swapExactETHForTokens", "swapExactTokensForETH", "swapExactTokensForTokens")

SEL_GET_RESERVES = selector("getReserves()")
SEL_GET_PAIR = selector("getPair(address,address)")
SEL_BALANCE_OF = selector("balanceOf(address)")
SEL_TRANSFER = selector("transfer(address,uint256)")
SEL_APPROVE = selector("approve(address,uint256)")
SEL_DECIMALS = selector("decimals()")
SEL_SYMBOL = selector("symbol()")
SEL_GET_AMOUNTS_OUT = selector("getAmountsOut(uint256,address[])")
SEL_GET_AMOUNTS_IN = selector("getAmountsIn(uint256,address[])")


# --- maths ---------------------------------------------------------------------------------------

def get_amount_out(amount_in: int, reserve_in: int, reserve_out: int) -> int:
    if amount_in <= 0 or reserve_in <= 0 or reserve_out <= 0:
        return 0
    with_fee = amount_in * 997
    return with_fee * reserve_out // (reserve_in * 1000 + with_fee)


def get_amount_in(amount_out: int, reserve_in: int, reserve_out: int) -> int | None:
    """Input needed for ``amount_out``; None if the pool cannot pay it."""
    if amount_out <= 0 or reserve_in <= 0 or amount_out >= reserve_out:
        return None
    return reserve_in * amount_out * 1000 // ((reserve_out - amount_out) * 997) + 1


def sort_tokens(a: str, b: str) -> tuple[str, str]:
    return (a, b) if int(a, 16) < int(b, 16) else (b, a)


@lru_cache(maxsize=4096)
def pair_address(token_a: str, token_b: str, factory: str = V2_FACTORY, init_code_hash: str = V2_INIT_CODE_HASH) -> str:
    """The pair address as UniswapV2Library.pairFor computes it (CREATE2)."""
    t0, t1 = sort_tokens(token_a, token_b)
    salt = keccak(bytes.fromhex(t0[2:]) + bytes.fromhex(t1[2:]))
    digest = keccak(b"\xff" + bytes.fromhex(factory[2:]) + salt + bytes.fromhex(init_code_hash[2:]))
    return to_checksum_address(digest[12:])


Reserves = dict[str, tuple[int, int]]  # pair address (checksummed) -> (reserve0, reserve1)


def hop_reserves(reserves: Reserves, token_in: str, token_out: str) -> tuple[str, int, int] | None:
    """(pair, reserve_in, reserve_out) for one hop, or None if there is no such pool."""
    pair = pair_address(token_in, token_out)
    r = reserves.get(pair)
    if r is None:
        return None
    t0, _ = sort_tokens(token_in, token_out)
    return (pair, r[0], r[1]) if t0 == token_in else (pair, r[1], r[0])


def amounts_out(amount_in: int, path: list[str], reserves: Reserves) -> list[int] | None:
    out = [amount_in]
    for a, b in zip(path, path[1:]):
        hop = hop_reserves(reserves, a, b)
        if hop is None:
            return None
        out.append(get_amount_out(out[-1], hop[1], hop[2]))
    return out


def amounts_in(amount_out: int, path: list[str], reserves: Reserves) -> list[int] | None:
    amounts = [amount_out]
    for a, b in reversed(list(zip(path, path[1:]))):
        hop = hop_reserves(reserves, a, b)
        if hop is None:
            return None
        needed = get_amount_in(amounts[0], hop[1], hop[2])
        if needed is None:
            return None
        amounts.insert(0, needed)
    return amounts


def apply_swap(reserves: Reserves, path: list[str], amounts: list[int]) -> Reserves:
    """Reserves after a swap along ``path`` moving ``amounts`` (as from amounts_out/in)."""
    new = dict(reserves)
    for (a, b), a_in, b_out in zip(zip(path, path[1:]), amounts, amounts[1:]):
        pair = pair_address(a, b)
        r0, r1 = new[pair]
        if sort_tokens(a, b)[0] == a:
            new[pair] = (r0 + a_in, r1 - b_out)
        else:
            new[pair] = (r0 - b_out, r1 + a_in)
    return new


# --- router calls ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RouterSwap:
    """A decoded Router02 swap call."""

    method: str
    path: tuple[str, ...]
    to: str
    deadline: int
    amount_in: int | None  # exact input (ETH value for swapExactETHForTokens)
    amount_out: int | None  # exact output (exact-out methods)
    amount_out_min: int | None  # exact-in methods
    amount_in_max: int | None  # exact-out methods (msg.value for swapETHForExactTokens)

    @property
    def exact_in(self) -> bool:
        return self.method in EXACT_IN_METHODS


def encode_swap(method: str, *, path: list[str], to: str, deadline: int, amount_in: int = 0,
                amount_out: int = 0, amount_out_min: int = 0, amount_in_max: int = 0) -> bytes:
    """Calldata of a Router02 swap. ETH amounts for the ETH-in methods go in the tx value."""
    sel = selector(SWAP_SIGNATURES[method])
    if method == "swapExactETHForTokens":
        args = abi_encode(["uint256", "address[]", "address", "uint256"], [amount_out_min, path, to, deadline])
    elif method == "swapETHForExactTokens":
        args = abi_encode(["uint256", "address[]", "address", "uint256"], [amount_out, path, to, deadline])
    elif method in EXACT_IN_METHODS:
        args = abi_encode(["uint256", "uint256", "address[]", "address", "uint256"],
                          [amount_in, amount_out_min, path, to, deadline])
    else:
        args = abi_encode(["uint256", "uint256", "address[]", "address", "uint256"],
                          [amount_out, amount_in_max, path, to, deadline])
    return sel + args


def decode_swap(data: bytes, value: int = 0) -> RouterSwap | None:
    """Decode a Router02 swap call (None if ``data`` is not one of SWAP_METHODS or is malformed)."""
    method = SWAP_SELECTORS.get(bytes(data[:4]))
    if method is None:
        return None
    try:
        if method in ETH_IN_METHODS:
            first, path, to, deadline = abi_decode(["uint256", "address[]", "address", "uint256"], bytes(data[4:]))
        else:
            a, b, path, to, deadline = abi_decode(["uint256", "uint256", "address[]", "address", "uint256"], bytes(data[4:]))
    except Exception:
        return None
    path = tuple(to_checksum_address(p) for p in path)
    if len(path) < 2:
        return None
    to = to_checksum_address(to)
    if method == "swapExactETHForTokens":
        return RouterSwap(method, path, to, deadline, value, None, first, None)
    if method == "swapETHForExactTokens":
        return RouterSwap(method, path, to, deadline, None, first, None, value)
    if method in EXACT_IN_METHODS:
        return RouterSwap(method, path, to, deadline, a, None, b, None)
    return RouterSwap(method, path, to, deadline, None, a, None, b)


def method_for(token_in: str, token_out: str, exact_in: bool) -> str:
    """The Router02 method for a swap from token_in to token_out (WETH meaning native ETH)."""
    if token_in == WETH:
        return "swapExactETHForTokens" if exact_in else "swapETHForExactTokens"
    if token_out == WETH:
        return "swapExactTokensForETH" if exact_in else "swapTokensForExactETH"
    return "swapExactTokensForTokens" if exact_in else "swapTokensForExactTokens"


def decode_swap_log(log: dict) -> tuple[int, int, int, int] | None:
    """(amount0In, amount1In, amount0Out, amount1Out) of a pair's Swap event log."""
    if not log.get("topics") or log["topics"][0].lower() != SWAP_EVENT_TOPIC:
        return None
    data = bytes.fromhex(log["data"][2:])
    return tuple(int.from_bytes(data[i:i + 32], "big") for i in range(0, 128, 32))  # type: ignore[return-value]
