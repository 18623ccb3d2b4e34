"""Traffic generator: realistic, Poisson-timed transaction flow into anvil's mempool.

Flow: ETH transfers, token transfers, approvals and Uniswap V2 Router02 swaps (exact-in and
exact-out; ETH->token, token->ETH, token->token incl. two-hop routes through WETH) with a
heavy-tailed spread of sizes and of slippage settings (mostly 0.1-1 %, a tail up to 15 %).
Mostly type-2 transactions, some legacy and type-1 (access list), with realistic tips.

Transactions are signed locally (eth-account) from many accounts derived from the devnet
mnemonic (HD index ``first_account`` ...), funded with devnet cheat codes, and sent with
``eth_sendRawTransaction``. Nonces are managed locally: each account has at most one
transaction in flight (like a real wallet), so a victim's inclusion position depends only on
its own fee -- which is what the searcher's sandwiches rely on. A rejected send re-syncs the
account's nonce from the node; transactions that linger are checked against the node's
pending/latest nonce so failures never pile up.

Determinism: the *intent* sequence -- inter-arrival times, kinds, tokens, routes, USD sizes,
slippage settings, fee draws -- is a pure function of the seed. What depends on the node's state
(which accounts are free, quotes from the current reserves, nonces, base fee, and a mean-reverting
size tilt that stands in for arbitrage so that pool prices stay near reference) is not.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from mev_assets.devnet.anvil import DEFAULT_MNEMONIC, DEVNET_CHAIN_ID
from mev_assets.devnet.contracts import (
    Deployment,
    TokenInfo,
    fund_accounts,
    token_amounts_usd,
)
from mev_assets.devnet.rpc import (
    DevAccount,
    RpcClient,
    RpcError,
    derive_accounts,
    to_int,
)
from mev_assets.devnet.uniswap import (
    MAX_UINT256,
    SEL_APPROVE,
    SEL_GET_RESERVES,
    SEL_TRANSFER,
    Reserves,
    amounts_in,
    amounts_out,
    encode_swap,
    hop_reserves,
)

log = logging.getLogger(__name__)

GWEI = 10**9

# Kinds and their share of the flow (sums to 1).
KIND_WEIGHTS: dict[str, float] = {
    "eth_transfer": 0.14,
    "token_transfer": 0.14,
    "approval": 0.07,
    "swapExactETHForTokens": 0.16,
    "swapETHForExactTokens": 0.07,
    "swapExactTokensForETH": 0.16,
    "swapTokensForExactETH": 0.07,
    "swapExactTokensForTokens": 0.13,
    "swapTokensForExactTokens": 0.06,
}
KINDS = tuple(KIND_WEIGHTS)
SWAP_KINDS = tuple(k for k in KINDS if k.startswith("swap"))

# Gas limits (measured usage on the devnet x ~1.3; unused gas is refunded, but anvil's block
# builder counts the limit against the block gas limit).
GAS_LIMITS = {
    "eth_transfer": 21_000,
    "token_transfer": 70_000,
    "approval": 60_000,
    "swap_hop": 110_000,  # per hop, on top of swap_base
    "swap_base": 80_000,
}

# Well-known mainnet spenders that approvals go to besides Router02.
OTHER_SPENDERS = (
    "0x000000000022D473030F116dDEE9F6B43aC78BA3",  # Permit2
    "0x1111111254EEB25477B68fb85Ed929f73A960582",  # 1inch v5 router
    "0xDef1C0ded9bec7F1a1670819833240f027b25EfF",  # 0x exchange proxy
    "0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD",  # Uniswap universal router
)

# Weights of the tokens in ETH<->token flow.
ETH_PAIR_WEIGHTS = {"USDC": 0.30, "USDT": 0.20, "DAI": 0.15, "WBTC": 0.15, "LINK": 0.10, "UNI": 0.10}


def draw_slippage(rng: random.Random) -> float:
    """Slippage tolerance as a fraction: mostly 0.1-1 %, a tail up to 15 %."""
    u = rng.random()
    if u < 0.12:
        return 0.001
    if u < 0.22:
        return 0.003
    if u < 0.55:
        return 0.005
    if u < 0.80:
        return 0.01
    if u < 0.90:
        return 0.02
    if u < 0.95:
        return 0.03
    if u < 0.985:
        return 0.05
    return rng.uniform(0.05, 0.15)


def draw_usd_size(rng: random.Random, median: float = 400.0, sigma: float = 1.9) -> float:
    """Heavy-tailed trade size in USD (log-normal: median $400, ~3 % above $20k)."""
    return median * math.exp(rng.gauss(0.0, sigma))


def draw_tip(rng: random.Random) -> int:
    """Priority fee in wei: median ~0.1 gwei, a few urgent ones at 1-5 gwei."""
    if rng.random() < 0.04:
        return int(rng.uniform(1.0, 5.0) * GWEI)
    return max(GWEI // 1000, int(0.1 * GWEI * math.exp(rng.gauss(0.0, 1.0))))


@dataclass
class TrafficConfig:
    rate: float = 15.0  # tx/s (Poisson); 0 = as fast as possible
    seed: int = 0
    accounts: int = 200
    first_account: int = 100  # HD index of the first traffic account
    eth_per_account: float = 1000.0
    usd_per_token: float = 2_000_000.0
    topup_interval: float = 60.0  # seconds between balance top-up sweeps
    stale_after_blocks: int = 4  # check an in-flight tx against the node after this many blocks
    type_mix: tuple[float, float, float] = (0.85, 0.10, 0.05)  # type 2, legacy, type 1
    kind_weights: dict[str, float] = field(default_factory=lambda: dict(KIND_WEIGHTS))
    mnemonic: str = DEFAULT_MNEMONIC


@dataclass(frozen=True)
class SentTx:
    hash: str
    kind: str
    sender: str
    nonce: int
    tx_type: int
    sent_at: float  # unix seconds


@dataclass
class TrafficStats:
    counts: Counter = field(default_factory=Counter)  # sent, by kind
    tx_types: Counter = field(default_factory=Counter)
    rejected: Counter = field(default_factory=Counter)  # by reason
    throttled: int = 0  # arrivals with no free account
    dropped: int = 0  # in-flight txs the node no longer had (nonce re-synced)
    topups: int = 0
    started: float = 0.0
    finished: float = 0.0
    txs: list[SentTx] = field(default_factory=list)  # when recording

    @property
    def sent(self) -> int:
        return sum(self.counts.values())

    @property
    def elapsed(self) -> float:
        return max(1e-9, (self.finished or time.monotonic()) - self.started) if self.started else 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.started else 0.0

    @property
    def hashes(self) -> list[str]:
        return [t.hash for t in self.txs]

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {self.counts[k]}" for k in KINDS if self.counts[k])
        extra = f"; rejected {dict(self.rejected)}" if self.rejected else ""
        return (f"sent {self.sent} tx in {self.elapsed:.1f} s ({self.rate:.1f} tx/s): {kinds}; "
                f"types {dict(sorted(self.tx_types.items()))}; throttled {self.throttled}; dropped {self.dropped}{extra}")


class _Wallet:
    __slots__ = ("account", "nonce", "inflight", "sent_block", "sent_time")

    def __init__(self, account: DevAccount):
        self.account = account
        self.nonce = 0
        self.inflight: str | None = None
        self.sent_block = 0
        self.sent_time = 0.0


class TrafficGenerator:
    """Send realistic flow into the devnet. ``setup()`` once, then ``run(...)`` (blocking) or
    ``start(stop_event)`` (background thread)."""

    def __init__(self, rpc_url: str, deployment: Deployment, config: TrafficConfig | None = None, *, record: bool = False):
        self.rpc_url = rpc_url
        self.rpc = RpcClient(rpc_url)
        self.dep = deployment
        self.cfg = config or TrafficConfig()
        self.record = record
        self.stats = TrafficStats()
        self._rng = random.Random(self.cfg.seed)  # intents
        self._rng_time = random.Random(f"time-{self.cfg.seed}")
        self._rng_acct = random.Random(f"accounts-{self.cfg.seed}")
        self._wallets: list[_Wallet] = []
        self._idle: list[int] = []
        self._by_hash: dict[str, int] = {}
        self._block = -1
        self._base_fee = GWEI
        self._timestamp = int(time.time())
        self._reserves: Reserves = {}
        self._last_poll = 0.0
        self._last_topup = 0.0
        self._fresh_counter = 0
        self._thread: threading.Thread | None = None
        self._kinds = list(self.cfg.kind_weights)
        self._kind_cum = list(_cumulative([self.cfg.kind_weights[k] for k in self._kinds]))
        self._eth_tokens = [self.dep.token(s) for s in ETH_PAIR_WEIGHTS if self._has_token(s)]
        self._eth_cum = list(_cumulative([ETH_PAIR_WEIGHTS[t.symbol] for t in self._eth_tokens]))
        weth = self.dep.weth
        self._direct_pools = [(self.dep.token(p.token0), self.dep.token(p.token1)) for p in self.dep.pools
                              if weth not in (p.token0, p.token1)]
        self._erc20s = self.dep.erc20s

    def _has_token(self, symbol: str) -> bool:
        try:
            self.dep.token(symbol)
            return True
        except KeyError:
            return False

    # --- set-up --------------------------------------------------------------------------------

    @property
    def addresses(self) -> list[str]:
        return [w.account.address for w in self._wallets]

    def setup(self) -> "TrafficGenerator":
        """Derive and fund the accounts, sync nonces and chain state."""
        accounts = derive_accounts(self.cfg.first_account, self.cfg.accounts, self.cfg.mnemonic)
        self._wallets = [_Wallet(a) for a in accounts]
        fund_accounts(self.rpc_url, self.dep, self.addresses, eth_wei=int(self.cfg.eth_per_account * 10**18),
                      token_units=token_amounts_usd(self.dep, self.cfg.usd_per_token))
        nonces = self.rpc.batch_strict([("eth_getTransactionCount", [a, "pending"]) for a in self.addresses])
        for w, n in zip(self._wallets, nonces):
            w.nonce = to_int(n)
        self._idle = list(range(len(self._wallets)))
        self._last_topup = time.monotonic()
        self._poll(force=True)
        return self

    # --- running -------------------------------------------------------------------------------

    def run(self, *, duration: float | None = None, count: int | None = None,
            stop: threading.Event | None = None) -> TrafficStats:
        """Send until ``duration`` seconds passed, ``count`` txs were sent, or ``stop`` is set."""
        if not self._wallets:
            self.setup()
        stop = stop or threading.Event()
        st = self.stats
        st.started = time.monotonic()
        st.finished = 0.0
        end = st.started + duration if duration else None
        target = (st.sent + count) if count is not None else None
        next_t = time.monotonic()
        rate = self.cfg.rate
        try:
            while not stop.is_set():
                now = time.monotonic()
                if (end is not None and now >= end) or (target is not None and st.sent >= target):
                    break
                if rate > 0:
                    delay = next_t - now
                    if delay > 0:
                        if stop.wait(delay if end is None else min(delay, max(0.0, end - now))):
                            break
                        continue
                    if delay < -1.0:  # fell behind (slow node): don't burst
                        next_t = now
                    next_t += self._rng_time.expovariate(rate)
                self._poll()
                if time.monotonic() - self._last_topup > self.cfg.topup_interval:
                    self._topup()
                if not self._idle:
                    st.throttled += 1
                    # wait for the next block to free accounts
                    stop.wait(0.05)
                    continue
                self.send_one()
        finally:
            st.finished = time.monotonic()
        return st

    def start(self, stop: threading.Event, duration: float | None = None) -> threading.Thread:
        """Run in a daemon thread until ``stop`` is set (setup() happens in the thread if needed)."""
        def target():
            try:
                self.run(stop=stop, duration=duration)
            except Exception:  # a background thread must say why it died
                log.exception("traffic generator stopped")
        self._thread = threading.Thread(target=target, name="devnet-traffic", daemon=True)
        self._thread.start()
        return self._thread

    # --- chain state ---------------------------------------------------------------------------

    def _poll(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_poll < 0.25:
            return
        self._last_poll = now
        head = to_int(self.rpc.call("eth_blockNumber"))
        if head == self._block and not force:
            return
        first = max(self._block + 1, head - 63, 0)
        calls: list[tuple[str, list]] = [("eth_getBlockByNumber", [hex(n), False]) for n in range(first, head + 1)]
        calls += [("eth_call", [{"to": p.pair, "data": "0x" + SEL_GET_RESERVES.hex()}, hex(head)]) for p in self.dep.pools]
        results = self.rpc.batch(calls)
        blocks, reserves = results[:len(results) - len(self.dep.pools)], results[len(results) - len(self.dep.pools):]
        for b in blocks:
            if not isinstance(b, dict):
                continue
            for h in b.get("transactions", []):
                idx = self._by_hash.pop(h, None)
                if idx is not None:
                    self._release(idx)
        last = next((b for b in reversed(blocks) if isinstance(b, dict)), None)
        if last is not None:
            self._base_fee = to_int(last.get("baseFeePerGas")) or self._base_fee
            self._timestamp = to_int(last["timestamp"])
        for p, r in zip(self.dep.pools, reserves):
            if isinstance(r, str) and len(r) >= 130:
                r0, r1, _ = abi_decode(["uint112", "uint112", "uint32"], bytes.fromhex(r[2:]))
                self._reserves[p.pair] = (r0, r1)
        self._block = head
        self._check_stale()

    def _release(self, idx: int) -> None:
        w = self._wallets[idx]
        if w.inflight is not None:
            w.inflight = None
            self._idle.append(idx)

    def _check_stale(self) -> None:
        stale = [i for i, w in enumerate(self._wallets)
                 if w.inflight is not None and self._block - w.sent_block >= self.cfg.stale_after_blocks
                 and time.monotonic() - w.sent_time > 2.0]
        if not stale:
            return
        calls = []
        for i in stale:
            a = self._wallets[i].account.address
            calls += [("eth_getTransactionCount", [a, "latest"]), ("eth_getTransactionCount", [a, "pending"])]
        res = self.rpc.batch(calls)
        for j, i in enumerate(stale):
            latest, pending = res[2 * j], res[2 * j + 1]
            if isinstance(latest, RpcError) or isinstance(pending, RpcError):
                continue
            w = self._wallets[i]
            latest, pending = to_int(latest), to_int(pending)
            if latest >= w.nonce:  # mined, we just did not see the block
                self._by_hash.pop(w.inflight or "", None)
                self._release(i)
            elif pending < w.nonce:  # the node dropped it: re-sync
                self._by_hash.pop(w.inflight or "", None)
                w.nonce = pending
                self.stats.dropped += 1
                self._release(i)
            else:
                w.sent_block = self._block  # still pending (e.g. fee below base fee): look again later

    def _topup(self) -> None:
        self._last_topup = time.monotonic()
        try:
            n = fund_accounts(self.rpc_url, self.dep, self.addresses, eth_wei=int(self.cfg.eth_per_account * 10**18),
                              token_units=token_amounts_usd(self.dep, self.cfg.usd_per_token),
                              approve_router=False, only_below=0.25)
            self.stats.topups += n
        except (RpcError, OSError) as exc:
            log.warning("traffic top-up failed: %s", exc)

    # --- building transactions -----------------------------------------------------------------

    def _pick_kind(self) -> str:
        u = self._rng.random() * self._kind_cum[-1]
        for kind, c in zip(self._kinds, self._kind_cum):
            if u < c:
                return kind
        return self._kinds[-1]

    def _fresh_address(self) -> str:
        self._fresh_counter += 1
        return to_checksum_address(keccak(f"devnet-recipient-{self.cfg.seed}-{self._fresh_counter}".encode())[12:])

    def _recipient(self, sender_idx: int) -> str:
        if self._rng.random() < 0.75 and len(self._wallets) > 1:
            j = self._rng.randrange(len(self._wallets) - 1)
            j += j >= sender_idx
            return self._wallets[j].account.address
        return self._fresh_address()

    def _fee_fields(self, tx_type: int, tip: int, urgency: float) -> dict:
        base = self._base_fee
        if tx_type == 2:
            mult = 2.0 if urgency < 0.75 else 1.5
            return {"type": 2, "maxPriorityFeePerGas": tip, "maxFeePerGas": int(base * mult) + tip}
        return {"gasPrice": int(base * 1.25) + tip}

    def _draw_type(self) -> int:
        u = self._rng.random()
        t2, legacy, _ = self.cfg.type_mix
        return 2 if u < t2 else (0 if u < t2 + legacy else 1)

    def send_one(self) -> SentTx | None:
        """Draw one intent, build, sign and send it from a free account."""
        kind = self._pick_kind()
        tx_type = self._draw_type()
        tip = draw_tip(self._rng)
        urgency = self._rng.random()
        pos = self._rng_acct.randrange(len(self._idle))
        idx = self._idle[pos]
        w = self._wallets[idx]
        built = self._build(kind, idx)
        if built is None:
            self.stats.rejected["unbuildable"] += 1
            return None
        to, value, data, gas, access = built
        tx = {"chainId": DEVNET_CHAIN_ID, "nonce": w.nonce, "to": to, "value": value, "data": data, "gas": gas,
              **self._fee_fields(tx_type, tip, urgency)}
        if tx_type == 1:
            tx["type"] = 1
            tx["accessList"] = access
        raw, h = w.account.sign(tx)
        try:
            self.rpc.call("eth_sendRawTransaction", [raw])
        except RpcError as exc:
            self._rejected(idx, exc)
            return None
        # take the account out of the idle set (swap-pop)
        self._idle[pos] = self._idle[-1]
        self._idle.pop()
        w.inflight = h
        w.nonce += 1
        w.sent_block = self._block
        w.sent_time = time.monotonic()
        self._by_hash[h] = idx
        self.stats.counts[kind] += 1
        self.stats.tx_types[tx_type] += 1
        sent = SentTx(h, kind, w.account.address, tx["nonce"], tx_type, time.time())
        if self.record:
            self.stats.txs.append(sent)
        return sent

    def _rejected(self, idx: int, exc: RpcError) -> None:
        msg = exc.message.lower()
        reason = ("nonce" if "nonce" in msg else "funds" if "insufficient funds" in msg
                  else "underpriced" if "underpriced" in msg else "fee" if "fee" in msg else "other")
        self.stats.rejected[reason] += 1
        log.debug("send rejected (%s): %s", reason, exc)
        w = self._wallets[idx]
        try:
            w.nonce = to_int(self.rpc.call("eth_getTransactionCount", [w.account.address, "pending"]))
            if reason == "funds":
                fund_accounts(self.rpc_url, self.dep, [w.account.address], eth_wei=int(self.cfg.eth_per_account * 10**18),
                              token_units=token_amounts_usd(self.dep, self.cfg.usd_per_token), approve_router=False, only_below=0.25)
        except (RpcError, OSError):
            pass

    def _build(self, kind: str, idx: int):
        """(to, value, data, gas, access_list) for ``kind`` from wallet ``idx``."""
        sender = self._wallets[idx].account.address
        rng = self._rng
        if kind == "eth_transfer":
            eth = min(50.0, 0.05 * math.exp(rng.gauss(0.0, 1.8)))
            return self._recipient(idx), int(eth * 10**18), b"", GAS_LIMITS["eth_transfer"], []
        if kind == "token_transfer":
            tok = self._erc20s[rng.randrange(len(self._erc20s))]
            usd = min(250_000.0, draw_usd_size(rng, median=200.0, sigma=1.8))
            amount = max(1, tok.units(usd / tok.usd_price))
            data = SEL_TRANSFER + abi_encode(["address", "uint256"], [self._recipient(idx), amount])
            return tok.address, 0, data, GAS_LIMITS["token_transfer"], [{"address": tok.address, "storageKeys": []}]
        if kind == "approval":
            tok = self._erc20s[rng.randrange(len(self._erc20s))]
            u = rng.random()
            spender = self.dep.router if u < 0.5 else OTHER_SPENDERS[rng.randrange(len(OTHER_SPENDERS))]
            # Router02 approvals are always unlimited, so they never break this account's swaps.
            if spender == self.dep.router or rng.random() < 0.7:
                amount = MAX_UINT256
            else:
                amount = tok.units(round(draw_usd_size(rng, 1000.0, 1.5) / tok.usd_price, 0) or 1)
            data = SEL_APPROVE + abi_encode(["address", "uint256"], [spender, amount])
            return tok.address, 0, data, GAS_LIMITS["approval"], [{"address": tok.address, "storageKeys": []}]
        return self._build_swap(kind, sender)

    def _route(self, kind: str) -> list[TokenInfo]:
        rng = self._rng
        weth = self.dep.token(self.dep.weth)
        if kind in ("swapExactETHForTokens", "swapETHForExactTokens", "swapExactTokensForETH", "swapTokensForExactETH"):
            tok = _weighted(self._eth_tokens, self._eth_cum, rng.random())
            return [weth, tok] if "ETHFor" in kind else [tok, weth]
        # token -> token: mostly a direct pool, sometimes two hops through WETH
        u, v = rng.random(), rng.random()
        if self._direct_pools and u < 0.7:
            a, b = self._direct_pools[int(v * len(self._direct_pools)) % len(self._direct_pools)]
            return [a, b] if rng.random() < 0.5 else [b, a]
        i = int(v * len(self._eth_tokens)) % len(self._eth_tokens)
        j = self._rng.randrange(len(self._eth_tokens) - 1)
        j += j >= i
        return [self._eth_tokens[i], weth, self._eth_tokens[j]]

    def _tilt(self, path: list[str]) -> float:
        """Mean-reverting size multiplier: bigger when this swap pushes prices back to reference."""
        d = 0.0
        for a, b in zip(path, path[1:]):
            hop = hop_reserves(self._reserves, a, b)
            if hop is None:
                continue
            ta, tb = self.dep.token_by_address(a), self.dep.token_by_address(b)
            spot = (hop[2] / 10**tb.decimals) / (hop[1] / 10**ta.decimals)  # b per a
            d += math.log(spot / (ta.usd_price / tb.usd_price))
        return math.exp(max(-2.5, min(2.5, 40.0 * d)))

    def _build_swap(self, kind: str, sender: str):
        rng = self._rng
        route = self._route(kind)
        exact_in = kind in ("swapExactETHForTokens", "swapExactTokensForETH", "swapExactTokensForTokens")
        usd = draw_usd_size(rng)
        slippage = draw_slippage(rng)
        deadline_s = rng.choice((300, 600, 1200, 1200, 1800))
        to_self = rng.random() < 0.95
        path = [t.address for t in route]
        usd *= self._tilt(path)
        usd = max(5.0, min(usd, 300_000.0))
        gas = GAS_LIMITS["swap_base"] + GAS_LIMITS["swap_hop"] * (len(path) - 1)
        recipient = sender if to_self else self._fresh_address()
        deadline = self._timestamp + deadline_s
        access = [{"address": self.dep.router, "storageKeys": []}]
        t_in, t_out = route[0], route[-1]
        if exact_in:
            amount_in = t_in.units(usd / t_in.usd_price)
            first = hop_reserves(self._reserves, path[0], path[1])
            if first is None:
                return None
            amount_in = max(1, min(amount_in, first[1] // 20))  # at most 5 % of the pool
            quote = amounts_out(amount_in, path, self._reserves)
            if not quote or quote[-1] <= 0:
                return None
            min_out = int(quote[-1] * (1 - slippage))
            data = encode_swap(kind, path=path, to=recipient, deadline=deadline, amount_in=amount_in, amount_out_min=min_out)
            value = amount_in if kind == "swapExactETHForTokens" else 0
        else:
            amount_out = t_out.units(usd / t_out.usd_price)
            last = hop_reserves(self._reserves, path[-2], path[-1])
            if last is None:
                return None
            amount_out = max(1, min(amount_out, last[2] // 20))
            quote = amounts_in(amount_out, path, self._reserves)
            if not quote:
                return None
            max_in = int(quote[0] * (1 + slippage)) + 1
            data = encode_swap(kind, path=path, to=recipient, deadline=deadline, amount_out=amount_out, amount_in_max=max_in)
            value = max_in if kind == "swapETHForExactTokens" else 0
        return self.dep.router, value, data, gas, access


def _cumulative(weights):
    total = 0.0
    for w in weights:
        total += w
        yield total


def _weighted(items, cum, u):
    x = u * cum[-1]
    for item, c in zip(items, cum):
        if x < c:
            return item
    return items[-1]
