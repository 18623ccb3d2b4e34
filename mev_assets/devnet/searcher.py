"""A sandwich searcher for the devnet, so the pipeline has ground truth.

It watches anvil's pending pool over WebSocket (``eth_subscribe ["newPendingTransactions", true]``
gives full transaction objects, ``newHeads`` the blocks), decodes Router02 swaps, and for a share
of the profitable victims really sandwiches them:

* front-run: same direction as the victim on one hop of its path, sized (binary search on the
  exact V2 maths) so that the victim's own ``amountOutMin`` / ``amountInMax`` still holds, with a
  higher fee than the victim; its ``amountOutMin`` is the expected output minus a small tolerance,
  so it reverts instead of buying at a worse price (e.g. if the victim was already mined);
* back-run: sells exactly what the front-run bought, with a lower fee than the victim, and
  ``amountOutMin`` = the front-run's input (never unwinds at a gross loss).

anvil runs with ``--order fees``: within a block, transactions are ordered by fee (respecting
each sender's nonces), so front-run < victim < back-run when the three land in one block. Each
searcher wallet has at most one sandwich in flight and each pair at most one, so sandwiches never
interleave.

After the block is mined, each attempt is written as one JSON line to the labels file (see
``LABEL_FIELDS`` / the docstring of :meth:`Searcher._label`), with the realised amounts from the
pair's Swap events, gas costs from the receipts, the realised profit in the input token's units
and in wei, and the searcher's balance changes read from the node as a cross-check.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from mev_assets.devnet.anvil import DEFAULT_MNEMONIC, DEVNET_CHAIN_ID
from mev_assets.devnet.contracts import (
    DEVTOKEN_SLOT_ALLOWANCES,
    WETH_SLOT_ALLOWANCES,
    Deployment,
    fund_accounts,
    token_amounts_usd,
)
from mev_assets.devnet.rpc import (
    DevAccount,
    RpcClient,
    RpcError,
    derive_accounts,
    nested_mapping_slot,
    to_int,
    word,
)
from mev_assets.devnet.uniswap import (
    MAX_UINT256,
    SEL_BALANCE_OF,
    SEL_GET_RESERVES,
    Reserves,
    RouterSwap,
    amounts_in,
    amounts_out,
    apply_swap,
    decode_swap,
    decode_swap_log,
    encode_swap,
    get_amount_out,
    hop_reserves,
    pair_address,
    sort_tokens,
)

log = logging.getLogger(__name__)

LABEL_SCHEMA = "mev_assets.devnet.sandwich/1"


@dataclass
class SearcherConfig:
    share: float = 0.5  # fraction of profitable victims actually sandwiched
    seed: int = 0
    eth_wallets: int = 2  # wallets holding only ETH (for WETH-input hops)
    wallets_per_token: int = 1  # wallets holding one devnet token each (for token-input hops)
    first_account: int = 1000  # HD index of the first searcher wallet
    eth_per_wallet: float = 5000.0  # ETH wallets
    gas_eth_per_wallet: float = 100.0  # token wallets (gas only)
    usd_per_token_wallet: float = 5_000_000.0
    min_profit_wei: int = 10**15  # expected profit net of gas, in wei
    max_frontrun_usd: float = 2_000_000.0
    safety: float = 0.85  # use at most this fraction of the largest front-run the victim tolerates
    front_tolerance: float = 0.002  # front-run amountOutMin = expected * (1 - this), capped by the victim's impact
    gas_limit: int = 220_000  # per leg
    give_up_blocks: int = 3  # finalise an attempt this many blocks after it should have landed
    mnemonic: str = DEFAULT_MNEMONIC


@dataclass
class _Attempt:
    victim_hash: str
    victim_from: str
    victim_method: str
    victim_path: list[str]
    victim_swap: RouterSwap
    wallet: int
    searcher: str
    pair: str
    token_in: str
    token_out: str
    front_hash: str
    back_hash: str | None
    front_amount_in: int  # planned (at the expected reserves)
    front_amount_out: int  # exact
    front_max_in: int
    back_amount_in: int
    back_min_out: int
    expected_profit_token_in: int
    expected_profit_wei: int
    detected_at_ms: int
    sent_block: int
    fees: dict = field(default_factory=dict)


class Searcher:
    """Run with ``setup()`` then ``run(stop)`` (blocking) or ``start(stop)`` (thread).
    ``ready`` is set once the subscriptions are live; ``stats`` counts what happened."""

    def __init__(self, rpc_url: str, ws_url: str, deployment: Deployment, labels_path: Path | str,
                 config: SearcherConfig | None = None):
        self.rpc_url = rpc_url
        self.ws_url = ws_url
        self.rpc = RpcClient(rpc_url)
        self.dep = deployment
        self.labels_path = Path(labels_path)
        self.cfg = config or SearcherConfig()
        self.ready = threading.Event()
        self.stats: Counter = Counter()
        self._rng = random.Random(f"searcher-{self.cfg.seed}")
        self._wallets: list[DevAccount] = []
        self._inventory: list[str] = []  # per wallet: "WETH" (ETH only) or the one token symbol it holds
        self._nonces: list[int] = []
        self._busy: set[int] = set()
        self._locked_pairs: set[str] = set()
        self._attempts: list[_Attempt] = []
        self._pending: dict[str, tuple[int, int, RouterSwap, int]] = {}  # hash -> (priority, seq, swap, head seen)
        self._seq = itertools.count()
        self._reserves: Reserves = {}
        self._base_fee = 10**9
        self._head = 0
        self._router = deployment.router.lower()
        self._own: set[str] = set()
        self._next_index = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def addresses(self) -> list[str]:
        return [w.address for w in self._wallets]

    def setup(self) -> "Searcher":
        """Derive and fund the wallets. Each wallet holds ETH and at most ONE token, and never the
        token it buys in a front-run: if a front-run reverts, its back-run has nothing to sell and
        reverts too (instead of unwinding inventory)."""
        self._inventory = ["WETH"] * self.cfg.eth_wallets
        for tok in self.dep.erc20s:
            self._inventory += [tok.symbol] * self.cfg.wallets_per_token
        self._wallets = derive_accounts(self.cfg.first_account, len(self._inventory), self.cfg.mnemonic)
        self._next_index = self.cfg.first_account + len(self._wallets)
        self._nonces = [0] * len(self._wallets)
        self._prepare(list(range(len(self._wallets))))
        self.labels_path.parent.mkdir(parents=True, exist_ok=True)
        self.labels_path.touch()
        self._refresh(to_int(self.rpc.call("eth_blockNumber")))
        return self

    def _prepare(self, wallets: list[int]) -> None:
        """Fund fresh wallets, allow the router to take any token from them, sync nonces."""
        self._own.update(self._wallets[i].address.lower() for i in wallets)
        self._fund(only_below=1.0, wallets=wallets)
        # Back-runs sell what the front-run bought (any token, WETH included): unlimited router allowances.
        writes = []
        for i in wallets:
            addr = self._wallets[i].address
            writes.append(("anvil_setStorageAt", [self.dep.weth, word(nested_mapping_slot(addr, self.dep.router, WETH_SLOT_ALLOWANCES)),
                                                  word(MAX_UINT256)]))
            for tok in self.dep.erc20s:
                writes.append(("anvil_setStorageAt", [tok.address, word(nested_mapping_slot(addr, self.dep.router, DEVTOKEN_SLOT_ALLOWANCES)),
                                                      word(MAX_UINT256)]))
        nonces = self.rpc.batch_strict(writes + [("eth_getTransactionCount", [self._wallets[i].address, "pending"]) for i in wallets])
        for i, n in zip(wallets, nonces[len(writes):]):
            self._nonces[i] = to_int(n)

    def _retire(self, wallet: int) -> None:
        """Replace a wallet left holding what a front-run bought (its back-run failed) or with legs
        that never landed, so no later back-run can sell that inventory."""
        self._wallets[wallet] = derive_accounts(self._next_index, 1, self.cfg.mnemonic)[0]
        self._next_index += 1
        self._prepare([wallet])
        self.stats["wallets_retired"] += 1

    def _fund(self, only_below: float, wallets: list[int] | None = None, approve: bool = True) -> None:
        for i in (range(len(self._wallets)) if wallets is None else wallets):
            addr, inv = self._wallets[i].address, self._inventory[i]
            if inv == "WETH":
                fund_accounts(self.rpc_url, self.dep, [addr], eth_wei=int(self.cfg.eth_per_wallet * 10**18),
                              token_units={}, only_below=only_below, approve_router=approve)
            else:
                units = token_amounts_usd(self.dep, self.cfg.usd_per_token_wallet)[inv]
                fund_accounts(self.rpc_url, self.dep, [addr], eth_wei=int(self.cfg.gas_eth_per_wallet * 10**18),
                              token_units={inv: units}, only_below=only_below, approve_router=approve)

    # --- main loop ------------------------------------------------------------------------------

    def start(self, stop: threading.Event) -> threading.Thread:
        def target():
            try:
                self.run(stop)
            except Exception:
                log.exception("searcher stopped")
        self._thread = threading.Thread(target=target, name="devnet-searcher", daemon=True)
        self._thread.start()
        return self._thread

    def run(self, stop: threading.Event) -> Counter:
        if not self._wallets:
            self.setup()
        backoff = 0.5
        while not stop.is_set():
            try:
                self._session(stop)
                backoff = 0.5
            except (ConnectionClosed, OSError, TimeoutError) as exc:
                self.ready.clear()
                if stop.is_set():
                    break
                log.warning("searcher websocket lost (%s); reconnecting", exc)
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
        return self.stats

    def _session(self, stop: threading.Event) -> None:
        with connect(self.ws_url, max_size=2**24, open_timeout=10, close_timeout=2) as ws:
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                "params": ["newPendingTransactions", True]}))
            ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_subscribe", "params": ["newHeads"]}))
            subs: dict[str, str] = {}
            while len(subs) < 2:
                msg = json.loads(ws.recv(timeout=10))
                if msg.get("id") in (1, 2):
                    if "error" in msg:
                        raise OSError(f"eth_subscribe failed: {msg['error']}")
                    subs[msg["result"]] = "pending" if msg["id"] == 1 else "heads"
            self._refresh(to_int(self.rpc.call("eth_blockNumber")))
            self.ready.set()
            while not stop.is_set():
                try:
                    raw = ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                msg = json.loads(raw)
                params = msg.get("params") or {}
                kind = subs.get(params.get("subscription"))
                if kind == "pending":
                    result = params.get("result")
                    if isinstance(result, dict):
                        self._on_pending(result)
                elif kind == "heads":
                    self._on_head(to_int(params["result"]["number"]), params["result"])

    # --- chain state ----------------------------------------------------------------------------

    def _refresh(self, head: int, header: dict | None = None) -> None:
        """Reserves at ``head``; forget pending swaps that ``head`` included (or that are old)."""
        calls = [("eth_call", [{"to": p.pair, "data": "0x" + SEL_GET_RESERVES.hex()}, hex(head)]) for p in self.dep.pools]
        calls.append(("eth_getBlockByNumber", [hex(head), False]))
        res = self.rpc.batch(calls)
        for p, r in zip(self.dep.pools, res):
            if isinstance(r, str) and len(r) >= 130:
                r0, r1, _ = abi_decode(["uint112", "uint112", "uint32"], bytes.fromhex(r[2:]))
                self._reserves[p.pair] = (r0, r1)
        block = res[-1] if isinstance(res[-1], dict) else {}
        for h in block.get("transactions", []):
            self._pending.pop(h, None)
        for h in [h for h, v in self._pending.items() if head - v[3] > 3]:
            del self._pending[h]
        self._base_fee = to_int((header or block).get("baseFeePerGas")) or self._base_fee
        self._head = head

    def _on_head(self, number: int, header: dict) -> None:
        self._refresh(number, header)
        self.stats["blocks"] += 1
        if self._attempts:
            self._resolve()

    # --- detection --------------------------------------------------------------------------------

    def _on_pending(self, tx: dict) -> None:
        if (tx.get("to") or "").lower() != self._router:
            return
        data = bytes.fromhex((tx.get("input") or "0x")[2:])
        swap = decode_swap(data, to_int(tx.get("value")))
        if swap is None:
            return
        # anvil --order fees orders a block by maxFeePerGas (type 2) / gasPrice (legacy, type 1),
        # ties by arrival; that is the order the pending swaps are simulated in.
        priority = to_int(tx.get("maxFeePerGas") or tx.get("gasPrice"))
        seq = next(self._seq)
        own = (tx.get("from") or "").lower() in self._own
        if not own:
            self.stats["router_swaps"] += 1
            opp = self._evaluate(swap, tx, priority, seq)
        self._pending[tx["hash"]] = (priority, seq, swap, self._head)
        if own or opp is None:
            return
        self.stats["profitable"] += 1
        if self._rng.random() >= self.cfg.share:
            self.stats["skipped_share"] += 1
            return
        need = self.dep.token_by_address(opp["a"]).symbol
        wallet = next((i for i, inv in enumerate(self._inventory) if inv == need and i not in self._busy), None)
        if wallet is None or opp["pair"] in self._locked_pairs:
            self.stats["skipped_busy"] += 1
            return
        self._execute(wallet, swap, tx, opp)

    def _victim_hop_amounts(self, swap: RouterSwap, reserves: Reserves) -> list[int] | None:
        """Amounts along the victim's path at ``reserves``, or None if its limit would fail."""
        path = list(swap.path)
        if swap.exact_in:
            amts = amounts_out(swap.amount_in or 0, path, reserves)
            if not amts or amts[-1] < (swap.amount_out_min or 0) or amts[-1] == 0:
                return None
        else:
            amts = amounts_in(swap.amount_out or 0, path, reserves)
            if not amts or amts[0] > (swap.amount_in_max or 0):
                return None
        return amts

    def _to_wei(self, token: str, amount: int, reserves: Reserves | None = None) -> int | None:
        if token == self.dep.weth:
            return amount
        hop = hop_reserves(reserves or self._reserves, token, self.dep.weth)
        if hop is None or hop[1] == 0:
            return None
        return amount * hop[2] // hop[1]

    def _pre_state(self, swap: RouterSwap, priority: int, seq: int) -> Reserves:
        """Reserves the victim will meet: the latest block's, after the pending swaps that are
        ordered before it (higher fee, or equal fee and earlier) and touch one of its pairs."""
        pairs = {pair_address(a, b) for a, b in zip(swap.path, swap.path[1:])}
        ahead = []
        for p, q, other, _ in self._pending.values():
            if (p > priority or (p == priority and q < seq)) and any(
                    pair_address(a, b) in pairs for a, b in zip(other.path, other.path[1:])):
                ahead.append((-p, q, other))
        R = self._reserves
        for _, _, other in sorted(ahead, key=lambda t: (t[0], t[1])):
            amts = self._victim_hop_amounts(other, R)
            if amts is not None:  # a swap whose limit fails reverts: no change
                R = apply_swap(R, list(other.path), amts)
        return R

    def _evaluate(self, swap: RouterSwap, tx: dict, priority: int, seq: int) -> dict | None:
        if any(self.dep.token_by_address(t) is None for t in swap.path):
            return None
        R = self._pre_state(swap, priority, seq)
        if any(self.dep.token_by_address(t) is None for t in swap.path):
            return None
        victim_amts = self._victim_hop_amounts(swap, R)
        if victim_amts is None:
            return None  # it fails on its own
        victim_price = to_int(tx.get("maxFeePerGas") or tx.get("gasPrice"))
        gas_cost_est = 2 * 130_000 * (min(victim_price, self._base_fee + to_int(tx.get("maxPriorityFeePerGas") or tx.get("gasPrice"))) + 10**8)
        best = None
        for i in range(len(swap.path) - 1):
            a, b = swap.path[i], swap.path[i + 1]
            hop = hop_reserves(R, a, b)
            if hop is None:
                continue
            pair, ra, rb = hop
            tok_a = self.dep.token_by_address(a)
            cap = min(ra // 2, tok_a.units(self.cfg.max_frontrun_usd / tok_a.usd_price))
            # The front-run buys exactly y (exact-out, so nothing is left over after the back-run)
            # and pays at most x * (1 + tol): small, and below half of the victim's own price impact,
            # so that a front-run landing after the victim reverts instead of buying high. The
            # back-run must return at least that maximum.
            impact = 2 * victim_amts[i] / ra
            tol = min(self.cfg.front_tolerance, max(0.0002, impact / 2))

            def simulate(x: int):
                y = get_amount_out(x, ra, rb)
                if y <= 0:
                    return None
                r1 = apply_swap(R, [a, b], [x, y])
                amts = self._victim_hop_amounts(swap, r1)
                if amts is None:
                    return None
                r2 = apply_swap(r1, list(swap.path), amts)
                _, ra2, rb2 = hop_reserves(r2, a, b)
                z = get_amount_out(y, rb2, ra2)
                return y, x + int(x * tol) + 1, z

            lo, hi = max(1, ra // 10**6), cap  # the smallest front-run worth trying
            if lo >= hi or simulate(lo) is None:
                continue
            while hi - lo > max(1, lo // 10_000):
                mid = (lo + hi) // 2
                if simulate(mid) is None:
                    hi = mid
                else:
                    lo = mid
            largest = lo
            for frac in (1.0, 0.8, 0.6, 0.4, 0.25):
                x = int(largest * frac * self.cfg.safety)
                sim = simulate(x) if x > 0 else None
                if sim is None:
                    continue
                y, max_in, z = sim
                profit = z - max_in  # conservative: as if the front-run paid its maximum
                profit_wei = self._to_wei(a, profit)
                if profit_wei is None:
                    continue
                net = profit_wei - gas_cost_est
                if net >= self.cfg.min_profit_wei and (best is None or net > best["net_wei"]):
                    best = {"hop": i, "pair": pair, "a": a, "b": b, "x": x, "y": y, "max_in": max_in, "z": z,
                            "profit": profit, "profit_wei": profit_wei, "net_wei": net}
        return best

    # --- execution ------------------------------------------------------------------------------

    def _execute(self, wallet: int, swap: RouterSwap, tx: dict, opp: dict) -> None:
        acct = self._wallets[wallet]
        a, b, x, y, z = opp["a"], opp["b"], opp["x"], opp["y"], opp["z"]
        if to_int(tx.get("type")) == 2:
            v_max, v_tip = to_int(tx["maxFeePerGas"]), to_int(tx["maxPriorityFeePerGas"])
        else:
            v_max = v_tip = to_int(tx["gasPrice"])
        # Just above the victim (a narrow band, so few others land between front-run and victim).
        bump = max(v_tip // 100, 10**6)
        front_fees = {"maxFeePerGas": v_max + bump, "maxPriorityFeePerGas": v_tip + bump}
        back_max = max(v_max - 1, self._base_fee)
        back_fees = {"maxFeePerGas": back_max, "maxPriorityFeePerGas": max(0, min(v_tip, back_max) - 1)}
        max_in = opp["max_in"]
        deadline = int(time.time()) + 600
        # ETH in and out when the hop starts at WETH (ETH wallet); otherwise token -> token, WETH
        # included as the ERC-20. Wallets never hold what they buy, so if the front-run reverts the
        # back-run has nothing to sell and reverts too.
        if a == self.dep.weth:
            front_method, back_method = "swapETHForExactTokens", "swapExactTokensForETH"
        else:
            front_method, back_method = "swapTokensForExactTokens", "swapExactTokensForTokens"
        front_data = encode_swap(front_method, path=[a, b], to=acct.address, deadline=deadline, amount_out=y, amount_in_max=max_in)
        back_data = encode_swap(back_method, path=[b, a], to=acct.address, deadline=deadline, amount_in=y, amount_out_min=max_in)
        nonce = self._nonces[wallet]
        base = {"type": 2, "chainId": DEVNET_CHAIN_ID, "to": self.dep.router, "gas": self.cfg.gas_limit}
        front_raw, front_hash = acct.sign({**base, **front_fees, "nonce": nonce, "data": front_data,
                                           "value": max_in if front_method == "swapETHForExactTokens" else 0})
        back_raw, back_hash = acct.sign({**base, **back_fees, "nonce": nonce + 1, "data": back_data,
                                         "value": 0})
        try:
            self.rpc.call("eth_sendRawTransaction", [front_raw])
        except RpcError as exc:
            self.stats["send_failed"] += 1
            log.info("front-run rejected: %s", exc)
            self._resync(wallet)
            return
        sent_back: str | None = back_hash
        try:
            self.rpc.call("eth_sendRawTransaction", [back_raw])
            self._nonces[wallet] = nonce + 2
        except RpcError as exc:
            self.stats["send_failed"] += 1
            log.warning("back-run rejected after the front-run went out: %s", exc)
            sent_back = None
            self._nonces[wallet] = nonce + 1
        self._busy.add(wallet)
        self._locked_pairs.add(opp["pair"])
        self.stats["attempted"] += 1
        self._attempts.append(_Attempt(
            victim_hash=tx["hash"], victim_from=to_checksum_address(tx["from"]) if tx.get("from") else "", victim_method=swap.method,
            victim_path=list(swap.path), victim_swap=swap, wallet=wallet, searcher=acct.address, pair=opp["pair"], token_in=a, token_out=b,
            front_hash=front_hash, back_hash=sent_back, front_amount_in=x, front_amount_out=y, front_max_in=max_in,
            back_amount_in=y, back_min_out=max_in, expected_profit_token_in=z - x, expected_profit_wei=opp["net_wei"],
            detected_at_ms=int(time.time() * 1000), sent_block=self._head,
            fees={"victim": [v_max, v_tip], "frontrun": [front_fees["maxFeePerGas"], front_fees["maxPriorityFeePerGas"]],
                  "backrun": [back_fees["maxFeePerGas"], back_fees["maxPriorityFeePerGas"]]},
        ))

    def _resync(self, wallet: int) -> None:
        try:
            self._nonces[wallet] = to_int(self.rpc.call("eth_getTransactionCount", [self._wallets[wallet].address, "pending"]))
        except (RpcError, OSError):
            pass

    # --- resolution and labels ---------------------------------------------------------------------

    def _resolve(self) -> None:
        calls = []
        for att in self._attempts:
            for h in (att.victim_hash, att.front_hash, att.back_hash):
                calls.append(("eth_getTransactionReceipt", [h]) if h else ("eth_chainId", []))
        res = self.rpc.batch(calls)
        remaining = []
        for k, att in enumerate(self._attempts):
            rv, rf, rb = (r if isinstance(r, dict) else None for r in res[3 * k:3 * k + 3])
            if att.back_hash is None:
                rb = None
            legs_done = rf is not None and (rb is not None or att.back_hash is None)
            landed = [to_int(r["blockNumber"]) for r in (rv, rf, rb) if r is not None]
            give_up = self._head - att.sent_block > self.cfg.give_up_blocks + 1
            if legs_done and rv is not None:
                pass
            elif legs_done and landed and self._head - max(landed) >= self.cfg.give_up_blocks:
                pass
            elif not give_up:
                remaining.append(att)
                continue
            try:
                label = self._label(att, rv, rf, rb)
                self._write(label)
            except (RpcError, OSError) as exc:
                log.warning("could not label sandwich of %s: %s", att.victim_hash, exc)
            self._busy.discard(att.wallet)
            self._locked_pairs.discard(att.pair)
            front_ok = rf is not None and to_int(rf.get("status")) == 1
            back_ok = rb is not None and to_int(rb.get("status")) == 1
            try:
                if not legs_done or (front_ok and not back_ok):
                    self._retire(att.wallet)
                else:
                    self._fund(only_below=0.5, wallets=[att.wallet], approve=False)
            except (RpcError, OSError) as exc:
                log.warning("could not refresh searcher wallet %d: %s", att.wallet, exc)
        self._attempts = remaining

    def _write(self, label: dict) -> None:
        with self._lock, open(self.labels_path, "a") as f:
            f.write(json.dumps(label, separators=(",", ":")) + "\n")
        self.stats["labelled"] += 1
        if label["success"]:
            self.stats["succeeded"] += 1

    def _swap_amounts(self, receipt: dict | None, pair: str, token_in: str, token_out: str) -> tuple[int, int]:
        """(amount of token_in into the pair, amount of token_out out of it) from the Swap log."""
        if receipt is None or to_int(receipt.get("status")) != 1:
            return 0, 0
        t0, _ = sort_tokens(token_in, token_out)
        total_in = total_out = 0
        for lg in receipt.get("logs", []):
            if lg.get("address", "").lower() != pair.lower():
                continue
            amts = decode_swap_log(lg)
            if amts is None:
                continue
            a0_in, a1_in, a0_out, a1_out = amts
            if t0 == token_in:
                total_in += a0_in
                total_out += a1_out
            else:
                total_in += a1_in
                total_out += a0_out
        return total_in, total_out

    def _label(self, att: _Attempt, rv: dict | None, rf: dict | None, rb: dict | None) -> dict:
        """One ground-truth label (all integer amounts as decimal strings, raw token units).

        Keys: schema, strategy ("sandwich"), success (all three status 1, same block, front < victim
        < back), same_block, ordered, block_number, victim_hash, frontrun_hash, backrun_hash,
        victim_index/frontrun_index/backrun_index (position in block), statuses, searcher,
        victim_from, victim_method, pair, token_path (victim's path, addresses) and
        token_path_symbols, token_in/token_out (the sandwiched hop) with symbols and decimals,
        victim_amount_in/victim_amount_out (declared exact amount) and victim_limit (its
        amountOutMin or amountInMax), victim_realised_in/out (on the pair), frontrun_amount_in,
        frontrun_amount_out, backrun_amount_in, backrun_amount_out (realised, from Swap logs),
        residual_token_out (frontrun_amount_out - backrun_amount_in: token_out left over, usually 0),
        expected_profit_token_in, profit_token_in (gross: backrun_out - frontrun_in, in token_in
        units), gas_cost_wei (both legs), profit_wei (net of gas; exact if token_in is WETH,
        else converted at the WETH pool's price after the block; null without such a pool),
        profit_wei_method, searcher_eth_delta_wei and searcher_token_in_delta (the searcher's
        balance change over the blocks of the two legs, read from the node), balance_consistent,
        fees ([maxFeePerGas, maxPriorityFeePerGas] of victim/frontrun/backrun), detected_at_ms,
        labelled_at_ms.
        """
        dep = self.dep
        a, b = att.token_in, att.token_out
        ta, tb = dep.token_by_address(a), dep.token_by_address(b)

        def blk(r):
            return to_int(r["blockNumber"]) if r else None

        def idx(r):
            return to_int(r["transactionIndex"]) if r else None

        def ok(r):
            return r is not None and to_int(r.get("status")) == 1

        blocks = {blk(r) for r in (rv, rf, rb)}
        same_block = None not in blocks and len(blocks) == 1
        ordered = same_block and idx(rf) < idx(rv) < idx(rb)
        front_in, front_out = self._swap_amounts(rf, att.pair, a, b)
        back_in, back_out = self._swap_amounts(rb, att.pair, b, a)
        victim_in, victim_out = self._swap_amounts(rv, att.pair, a, b)
        gas_cost = sum(to_int(r["gasUsed"]) * to_int(r["effectiveGasPrice"]) for r in (rf, rb) if r)
        profit_token = back_out - front_in
        leg_blocks = [blk(r) for r in (rf, rb) if r]
        searcher = att.searcher
        eth_delta = token_delta = None
        profit_wei = None
        method = None
        if leg_blocks:
            lo, hi = min(leg_blocks) - 1, max(leg_blocks)
            calls = [("eth_getBalance", [searcher, hex(lo)]), ("eth_getBalance", [searcher, hex(hi)])]
            bal_data = "0x" + (SEL_BALANCE_OF + bytes(12) + bytes.fromhex(searcher[2:])).hex()
            if a != dep.weth:
                calls += [("eth_call", [{"to": a, "data": bal_data}, hex(lo)]), ("eth_call", [{"to": a, "data": bal_data}, hex(hi)])]
            calls += [("eth_call", [{"to": p.pair, "data": "0x" + SEL_GET_RESERVES.hex()}, hex(hi)]) for p in dep.pools]
            res = self.rpc.batch_strict(calls)
            eth_delta = to_int(res[1]) - to_int(res[0])
            rest = res[2:]
            if a != dep.weth:
                token_delta = to_int(rest[1]) - to_int(rest[0])
                rest = rest[2:]
            reserves_after: Reserves = {}
            for p, r in zip(dep.pools, rest):
                r0, r1, _ = abi_decode(["uint112", "uint112", "uint32"], bytes.fromhex(r[2:]))
                reserves_after[p.pair] = (r0, r1)
            if a == dep.weth:
                profit_wei, method = profit_token - gas_cost, "exact"
            else:
                conv = self._to_wei(a, profit_token, reserves_after)
                if conv is not None:
                    profit_wei, method = conv - gas_cost, f"spot:{ta.symbol}/WETH@{hi}"
        if a == dep.weth:
            consistent = eth_delta is not None and eth_delta == profit_wei
        else:
            consistent = eth_delta is not None and eth_delta == -gas_cost and token_delta == profit_token
        sw = att.victim_swap
        victim_limit = sw.amount_out_min if sw.exact_in else sw.amount_in_max
        success = bool(ordered and ok(rv) and ok(rf) and ok(rb))

        def s(v):
            return None if v is None else str(v)

        return {
            "schema": LABEL_SCHEMA,
            "strategy": "sandwich",
            "success": success,
            "same_block": same_block,
            "ordered": bool(ordered),
            "block_number": blk(rv) if same_block else None,
            "victim_hash": att.victim_hash,
            "frontrun_hash": att.front_hash,
            "backrun_hash": att.back_hash,
            "victim_block": blk(rv), "frontrun_block": blk(rf), "backrun_block": blk(rb),
            "victim_index": idx(rv), "frontrun_index": idx(rf), "backrun_index": idx(rb),
            "statuses": {"victim": to_int(rv["status"]) if rv else None, "frontrun": to_int(rf["status"]) if rf else None,
                         "backrun": to_int(rb["status"]) if rb else None},
            "searcher": searcher,
            "victim_from": att.victim_from,
            "victim_method": att.victim_method,
            "pair": att.pair,
            "token_path": att.victim_path,
            "token_path_symbols": [dep.token_by_address(t).symbol for t in att.victim_path],
            "token_in": a, "token_in_symbol": ta.symbol, "token_in_decimals": ta.decimals,
            "token_out": b, "token_out_symbol": tb.symbol, "token_out_decimals": tb.decimals,
            "victim_amount_in": s(sw.amount_in), "victim_amount_out": s(sw.amount_out), "victim_limit": s(victim_limit),
            "victim_realised_in": str(victim_in), "victim_realised_out": str(victim_out),
            "frontrun_amount_in": str(front_in), "frontrun_amount_out": str(front_out),
            "backrun_amount_in": str(back_in), "backrun_amount_out": str(back_out),
            "residual_token_out": str(front_out - back_in),
            "frontrun_planned_in": str(att.front_amount_in), "frontrun_max_in": str(att.front_max_in),
            "backrun_min_out": str(att.back_min_out),
            "expected_profit_token_in": str(att.expected_profit_token_in),
            "profit_token_in": str(profit_token),
            "gas_cost_wei": str(gas_cost),
            "profit_wei": s(profit_wei),
            "profit_wei_method": method,
            "searcher_eth_delta_wei": s(eth_delta),
            "searcher_token_in_delta": s(token_delta),
            "balance_consistent": consistent,
            "fees": {k: [str(v) for v in vals] for k, vals in att.fees.items()},
            "detected_at_ms": att.detected_at_ms,
            "labelled_at_ms": int(time.time() * 1000),
        }


def read_labels(path: Path | str) -> list[dict]:
    """All labels in a labels file (JSON lines)."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
