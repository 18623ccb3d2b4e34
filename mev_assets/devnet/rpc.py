"""A small, cheap JSON-RPC client for the devnet (keep-alive HTTP, batches, thread-local connections).

web3.py is not needed for the devnet's hot loops (traffic generator, searcher): a plain
keep-alive connection plus local signing costs a fraction of the CPU, which matters on a
2-core machine shared with anvil, the collector and Dagster.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
from urllib.parse import urlparse

from eth_account import Account
from eth_utils import keccak, to_checksum_address

from mev_assets.devnet.anvil import DEFAULT_MNEMONIC

Account.enable_unaudited_hdwallet_features()


class RpcError(RuntimeError):
    """The node answered with a JSON-RPC error (``code``, ``message``, ``data``)."""

    def __init__(self, method: str, error: dict):
        self.method = method
        self.code = error.get("code")
        self.message = str(error.get("message", ""))
        self.data = error.get("data")
        super().__init__(f"{method}: {self.message} (code {self.code})")


class RpcClient:
    """JSON-RPC over HTTP with one keep-alive connection per thread."""

    def __init__(self, url: str, timeout: float = 30.0):
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https"):
            raise ValueError(f"RpcClient needs an http(s) url, got {url!r}")
        self.url = url
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._https = parsed.scheme == "https"
        self._path = parsed.path or "/"
        self._timeout = timeout
        self._local = threading.local()
        self._ids = itertools.count(1)

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def _post(self, payload) -> object:
        body = json.dumps(payload, separators=(",", ":")).encode()
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.request("POST", self._path, body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    raise OSError(f"HTTP {resp.status} from {self.url}: {data[:200]!r}")
                return json.loads(data)
            except (http.client.HTTPException, ConnectionError, BrokenPipeError):
                # A dropped keep-alive connection: reconnect once.
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def call(self, method: str, params: list | None = None):
        answer = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or []})
        if "error" in answer:
            raise RpcError(method, answer["error"])
        return answer["result"]

    def batch(self, calls: list[tuple[str, list]], chunk: int = 500) -> list:
        """Send many calls in JSON-RPC batches; returns results in order (an RpcError in place
        of a result for calls that failed, never raised)."""
        out: list = []
        for start in range(0, len(calls), chunk):
            part = calls[start:start + chunk]
            ids = [next(self._ids) for _ in part]
            payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in zip(ids, part)]
            answer = self._post(payload)
            if isinstance(answer, dict):  # the whole batch was rejected
                raise RpcError("batch", answer.get("error", {"message": str(answer)}))
            by_id = {item.get("id"): item for item in answer}
            for i, (method, _) in zip(ids, part):
                item = by_id.get(i, {"error": {"message": "missing from batch answer"}})
                out.append(RpcError(method, item["error"]) if "error" in item else item.get("result"))
        return out

    def batch_strict(self, calls: list[tuple[str, list]]) -> list:
        results = self.batch(calls)
        for r in results:
            if isinstance(r, RpcError):
                raise r
        return results

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- conveniences -------------------------------------------------------------------------

    def eth_call(self, to: str, data: bytes | str, block: str | int = "latest", sender: str | None = None) -> bytes:
        tx = {"to": to, "data": data if isinstance(data, str) else "0x" + data.hex()}
        if sender:
            tx["from"] = sender
        return bytes.fromhex(self.call("eth_call", [tx, block_tag(block)])[2:])

    def wait_receipts(self, hashes: list[str], timeout: float = 60.0, mine: bool = False) -> list[dict]:
        """Poll until every hash has a receipt (optionally calling ``evm_mine`` while waiting)."""
        deadline = time.monotonic() + timeout
        receipts: dict[str, dict] = {}
        while True:
            missing = [h for h in hashes if h not in receipts]
            if missing:
                for h, r in zip(missing, self.batch([("eth_getTransactionReceipt", [h]) for h in missing])):
                    if isinstance(r, dict):
                        receipts[h] = r
            if len(receipts) == len(hashes):
                return [receipts[h] for h in hashes]
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(hashes) - len(receipts)} of {len(hashes)} transactions not mined within {timeout} s")
            if mine:
                self.call("evm_mine")
            else:
                time.sleep(0.1)


def block_tag(block: str | int) -> str:
    return hex(block) if isinstance(block, int) else block


def to_int(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    return int(value, 16) if isinstance(value, str) and value.startswith("0x") else int(value)


# --- accounts ---------------------------------------------------------------------------------

class DevAccount:
    """A locally-signing account derived from the devnet mnemonic."""

    __slots__ = ("index", "address", "key", "_signer")

    def __init__(self, index: int, key: bytes):
        self.index = index
        self.key = key
        self._signer = Account.from_key(key)
        self.address = self._signer.address

    def sign(self, tx: dict) -> tuple[str, str]:
        """Sign ``tx``; returns (raw hex, hash hex)."""
        signed = self._signer.sign_transaction(tx)
        return "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()

    def __repr__(self) -> str:
        return f"DevAccount({self.index}, {self.address})"


_derived: dict[tuple[str, int], bytes] = {}
_derive_lock = threading.Lock()


def derive_account(index: int, mnemonic: str = DEFAULT_MNEMONIC) -> DevAccount:
    """Account ``m/44'/60'/0'/0/<index>`` of the mnemonic (index 0..19 are anvil's dev accounts)."""
    with _derive_lock:
        key = _derived.get((mnemonic, index))
        if key is None:
            acct = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")
            key = bytes(acct.key)
            _derived[(mnemonic, index)] = key
    return DevAccount(index, key)


def derive_accounts(start: int, count: int, mnemonic: str = DEFAULT_MNEMONIC) -> list[DevAccount]:
    return [derive_account(i, mnemonic) for i in range(start, start + count)]


# --- small ABI / address helpers ----------------------------------------------------------------

def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def checksum(address: str) -> str:
    return to_checksum_address(address)


def word(value: int) -> str:
    """A 32-byte storage word as 0x-hex."""
    return "0x" + value.to_bytes(32, "big").hex()


def mapping_slot(key_address: str, slot: int) -> int:
    """Storage slot of ``mapping(address => ...)`` at ``slot`` for ``key_address``."""
    return int.from_bytes(keccak(bytes(12) + bytes.fromhex(key_address[2:]) + slot.to_bytes(32, "big")), "big")


def nested_mapping_slot(outer: str, inner: str, slot: int) -> int:
    """Storage slot of ``mapping(address => mapping(address => ...))[outer][inner]`` at ``slot``."""
    first = keccak(bytes(12) + bytes.fromhex(outer[2:]) + slot.to_bytes(32, "big"))
    return int.from_bytes(keccak(bytes(12) + bytes.fromhex(inner[2:]) + first), "big")


def short_string_word(text: str) -> int:
    """Solidity storage encoding of a string shorter than 32 bytes (data left-aligned, 2*len low)."""
    raw = text.encode()
    if len(raw) > 31:
        raise ValueError(f"string too long for short encoding: {text!r}")
    return int.from_bytes(raw.ljust(31, b"\0") + bytes([2 * len(raw)]), "big")
