"""Transaction parsing and validation (hot path of the collector and the raw-tx importer).

Two entry points produce the same immutable :class:`Transaction`:

* :func:`decode_raw_transaction` - signed raw bytes (``eth_sendRawTransaction`` form, the
  RLP-string-wrapped form some tools emit, or a blob transaction in its network form with
  sidecar) -> decoded, sender recovered.
* :func:`transaction_from_rpc` - a node's JSON-RPC transaction object -> validated by
  re-encoding it to its canonical signed bytes, checking that their keccak equals the node's
  ``hash`` and that the signature recovers to the node's ``from``.

Every failure is an :class:`InvalidTransaction` (a ``ValueError``) with a short machine
``code`` and a ``detail`` naming the field and value; no other exception type escapes.

Codes::

    bad_rlp           raw input is not canonical RLP / has the wrong shape (field count,
                      list where a string is expected, integer with leading zero bytes)
    bad_field         a field is malformed or out of range (bad hex, address not 20 bytes,
                      nonce above 2**64-1, inconsistent duplicate fields, bad blob sidecar)
    missing_field     a required JSON-RPC field is absent or null
    unsupported_type  transaction type other than 0-4
    wrong_chain_id    chain id differs from ``expected_chain_id``
    no_chain_id       pre-EIP-155 legacy tx while an ``expected_chain_id`` was required
    bad_signature     v/yParity/r/s out of range (incl. high s, EIP-2), key not recoverable,
                      or the recovered sender differs from the node's ``from``
    hash_mismatch     keccak of the re-encoded transaction differs from the node's ``hash``

What is checked: RLP canonicality and shape per type, integer widths (uint64 nonce/gas,
uint256 elsewhere), address/hash sizes, chain id, signature ranges and low-s (EIP-2, applied
to every transaction type, as go-ethereum's Homestead+ signers do), hash and sender. For blob
network form: sidecar counts/sizes and that each commitment hashes to its versioned hash (KZG
proofs are NOT verified). Not checked (txpool/consensus policy, needs chain state or is a
later pipeline concern): intrinsic gas, tip <= fee cap, non-empty blob/authorization lists,
blob hash version byte, authorization signatures.

Pure Python, no Dagster import. Per transaction the cost is dominated by one secp256k1
public-key recovery (libsecp256k1 via coincurve).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from hashlib import sha256

import coincurve
import rlp

__all__ = [
    "InvalidTransaction",
    "Transaction",
    "decode_raw_transaction",
    "keccak256",
    "recover_sender",
    "transaction_from_rpc",
    "transaction_to_row",
]

# --------------------------------------------------------------------------------------
# errors and result type


class InvalidTransaction(ValueError):
    """A transaction failed parsing or validation. ``str(exc) == f"{code}: {detail}"``."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

    def __reduce__(self):  # keep picklable (multiprocessing, quarantine records)
        return (type(self), (self.code, self.detail))


@dataclass(slots=True, frozen=True)
class Transaction:
    hash: str  # 0x-prefixed lowercase hex of keccak(raw)
    chain_id: int | None  # None only for pre-EIP-155 legacy txs
    tx_type: int  # 0 legacy, 1 access list, 2 dynamic fee, 3 blob, 4 set code
    sender: str  # 0x lowercase address recovered from the signature
    to: str | None  # None for contract creation
    value: int
    nonce: int
    gas: int
    gas_price: int  # type 0/1: gasPrice; type >= 2: maxFeePerGas (as geth tx.GasPrice())
    gas_tip_cap: int  # type 0/1: gasPrice; type >= 2: maxPriorityFeePerGas
    gas_fee_cap: int  # type 0/1: gasPrice; type >= 2: maxFeePerGas
    input: bytes
    raw: bytes  # canonical signed encoding (blob txs without sidecar)


# --------------------------------------------------------------------------------------
# constants

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2
_U64 = (1 << 64) - 1
_U256 = (1 << 256) - 1
_TYPED_FIELD_COUNT = {1: 11, 2: 12, 3: 14, 4: 13}
_BLOB_SIZE = 131072
_KZG_SIZE = 48  # commitments and proofs
_CELLS_PER_EXT_BLOB = 128  # EIP-7594 cell proofs per blob (sidecar version 1)


def _fail(code: str, detail: str) -> InvalidTransaction:
    return InvalidTransaction(code, detail)


# --------------------------------------------------------------------------------------
# keccak-256
#
# eth_hash's pycryptodome backend builds a Python hash object per call (~7 us); we call the
# same pycryptodome C functions directly with a per-thread state (~2.5 us). The result is
# checked against known vectors at import; on any problem we fall back to eth_hash.


def _make_fast_keccak():
    from Crypto.Hash import keccak as _ck
    from Crypto.Util import _raw_api

    if _raw_api.backend != "cffi":
        raise ImportError("pycryptodome is not using cffi")
    lib = _ck._raw_keccak_lib
    ffi = _raw_api.ffi

    class _State(threading.local):
        def __init__(self) -> None:
            pp = ffi.new("void **")
            if lib.keccak_init(pp, 64, 24):
                raise RuntimeError("keccak_init failed")
            self.st = ffi.gc(pp[0], lib.keccak_destroy)
            self.out = ffi.new("uint8_t[32]")
            self.buf = ffi.buffer(self.out)

    tls = _State()

    def keccak(data: bytes) -> bytes:
        s = tls
        st = s.st
        lib.keccak_reset(st)
        lib.keccak_absorb(st, data, len(data))
        lib.keccak_digest(st, s.out, 32, 1)
        return s.buf[:]

    return keccak


def _select_keccak():
    from eth_hash.auto import keccak as reference

    try:
        fast = _make_fast_keccak()
        probes = [b"", b"abc", bytes(range(256)) * 9, b"\x01" * 135, b"\x02" * 136, b"abc"]
        if all(fast(p) == reference(p) for p in probes):
            return fast
    except Exception:  # noqa: BLE001 - any problem: use the library path
        pass
    return lambda data: reference(data)


keccak256 = _select_keccak()


# --------------------------------------------------------------------------------------
# RLP helpers (encoding is a few lines; decoding uses the rlp package in strict mode, which
# rejects non-canonical length prefixes and trailing bytes)

_BYTE = [bytes((i,)) for i in range(256)]
_SMALL_INT_ENC = [b"\x80"] + _BYTE[1:128]


def _enc_int(n: int) -> bytes:
    if n < 128:
        return _SMALL_INT_ENC[n]
    b = n.to_bytes((n.bit_length() + 7) >> 3, "big")
    return _BYTE[0x80 + len(b)] + b  # at most 32 bytes: always the short form


def _enc_bytes(b: bytes) -> bytes:
    n = len(b)
    if n == 1 and b[0] < 0x80:
        return b
    if n < 56:
        return _BYTE[0x80 + n] + b
    lb = n.to_bytes((n.bit_length() + 7) >> 3, "big")
    return _BYTE[0xB7 + len(lb)] + lb + b


def _enc_list(payload: bytes) -> bytes:
    n = len(payload)
    if n < 56:
        return _BYTE[0xC0 + n] + payload
    lb = n.to_bytes((n.bit_length() + 7) >> 3, "big")
    return _BYTE[0xF7 + len(lb)] + lb + payload


def _rlp(item) -> bytes:
    """RLP-encode a nested structure of bytes and lists (as produced by rlp.decode)."""
    if type(item) is bytes:
        return _enc_bytes(item)
    return _enc_list(b"".join([_rlp(x) for x in item]))


def _list_body(encoded_list: bytes) -> bytes:
    """Payload of a canonical RLP list encoding (its header stripped)."""
    p0 = encoded_list[0]
    return encoded_list[1:] if p0 < 0xF8 else encoded_list[1 + p0 - 0xF7 :]


def _rlp_decode(data: bytes, what: str):
    try:
        return rlp.decode(data, strict=True)
    except RecursionError:
        raise _fail("bad_rlp", f"{what}: RLP nesting too deep") from None
    except Exception as exc:  # rlp.DecodingError and anything else from malformed input
        raise _fail("bad_rlp", f"{what}: {exc.args[0] if exc.args else exc}") from None


# --------------------------------------------------------------------------------------
# field checks on decoded RLP items


def _r_int(item, name: str, max_bytes: int) -> int:
    if type(item) is not bytes:
        raise _fail("bad_rlp", f"{name}: expected an RLP string, got a list")
    if item:
        if item[0] == 0:
            raise _fail("bad_rlp", f"{name}: integer 0x{item.hex()} has leading zero bytes")
        if len(item) > max_bytes:
            raise _fail("bad_field", f"{name}: 0x{item.hex()} exceeds {max_bytes * 8} bits")
    return int.from_bytes(item, "big")


def _r_bytes(item, name: str) -> bytes:
    if type(item) is not bytes:
        raise _fail("bad_rlp", f"{name}: expected an RLP string, got a list")
    return item


def _r_sized(item, name: str, size: int) -> bytes:
    if type(item) is not bytes:
        raise _fail("bad_rlp", f"{name}: expected an RLP string, got a list")
    if len(item) != size:
        raise _fail("bad_field", f"{name}: expected {size} bytes, got {len(item)} (0x{item[:64].hex()})")
    return item


def _r_to(item, required: bool) -> str | None:
    if type(item) is not bytes:
        raise _fail("bad_rlp", "to: expected an RLP string, got a list")
    if len(item) == 20:
        return "0x" + item.hex()
    if not item and not required:
        return None
    if not item:
        raise _fail("bad_field", "to: this transaction type cannot create a contract (empty to)")
    raise _fail("bad_field", f"to: expected 20 bytes, got {len(item)} (0x{item.hex()})")


def _r_list(item, name: str) -> list:
    if type(item) is not list:
        raise _fail("bad_rlp", f"{name}: expected an RLP list, got a string")
    return item


def _r_access_list(item) -> None:
    for i, entry in enumerate(_r_list(item, "accessList")):
        if type(entry) is not list or len(entry) != 2:
            raise _fail("bad_rlp", f"accessList[{i}]: expected [address, storageKeys]")
        _r_sized(entry[0], f"accessList[{i}].address", 20)
        for j, key in enumerate(_r_list(entry[1], f"accessList[{i}].storageKeys")):
            _r_sized(key, f"accessList[{i}].storageKeys[{j}]", 32)


def _r_blob_hashes(item) -> list:
    hashes = _r_list(item, "blobVersionedHashes")
    for i, h in enumerate(hashes):
        _r_sized(h, f"blobVersionedHashes[{i}]", 32)
    return hashes


def _r_auth_list(item) -> None:
    for i, auth in enumerate(_r_list(item, "authorizationList")):
        if type(auth) is not list or len(auth) != 6:
            raise _fail("bad_rlp", f"authorizationList[{i}]: expected [chainId, address, nonce, yParity, r, s]")
        _r_int(auth[0], f"authorizationList[{i}].chainId", 32)
        _r_sized(auth[1], f"authorizationList[{i}].address", 20)
        _r_int(auth[2], f"authorizationList[{i}].nonce", 8)
        _r_int(auth[3], f"authorizationList[{i}].yParity", 1)
        _r_int(auth[4], f"authorizationList[{i}].r", 32)
        _r_int(auth[5], f"authorizationList[{i}].s", 32)


def _kzg_to_versioned_hash(commitment: bytes) -> bytes:
    return b"\x01" + sha256(commitment).digest()[1:]


def _strip_blob_sidecar(outer: list) -> list:
    """Network form ``[body, blobs, commitments, proofs]`` (sidecar v0) or
    ``[body, 0x01, blobs, commitments, cell_proofs]`` (v1, EIP-7594) -> body."""
    if len(outer) == 4:
        body, blobs, commitments, proofs = outer
        proofs_per_blob = 1
    elif len(outer) == 5:
        body, version, blobs, commitments, proofs = outer
        if version != b"\x01":
            raise _fail("bad_rlp", f"blob sidecar: unknown wrapper version {version!r}")
        proofs_per_blob = _CELLS_PER_EXT_BLOB
    else:
        raise _fail("bad_rlp", f"blob network form: expected 4 or 5 elements, got {len(outer)}")
    if len(body) != _TYPED_FIELD_COUNT[3]:
        raise _fail("bad_rlp", f"type 3 transaction has {len(body)} fields, expected 14")
    hashes = _r_blob_hashes(body[10])
    blobs = _r_list(blobs, "sidecar.blobs")
    commitments = _r_list(commitments, "sidecar.commitments")
    proofs = _r_list(proofs, "sidecar.proofs")
    n = len(hashes)
    if len(blobs) != n or len(commitments) != n or len(proofs) != n * proofs_per_blob:
        raise _fail(
            "bad_field",
            f"blob sidecar: {n} versioned hashes but {len(blobs)} blobs, "
            f"{len(commitments)} commitments, {len(proofs)} proofs",
        )
    for i in range(n):
        _r_sized(blobs[i], f"sidecar.blobs[{i}]", _BLOB_SIZE)
        _r_sized(commitments[i], f"sidecar.commitments[{i}]", _KZG_SIZE)
        if _kzg_to_versioned_hash(commitments[i]) != hashes[i]:
            raise _fail("bad_field", f"blob sidecar: commitment {i} does not match blobVersionedHashes[{i}]")
    for i, p in enumerate(proofs):
        _r_sized(p, f"sidecar.proofs[{i}]", _KZG_SIZE)
    return body


# --------------------------------------------------------------------------------------
# signatures


def _check_signature_values(parity: int, r: int, s: int) -> None:
    if parity > 1:
        raise _fail("bad_signature", f"yParity {parity} is not 0 or 1")
    if not 0 < r < SECP256K1_N:
        raise _fail("bad_signature", f"r {r:#x} out of range [1, n)")
    if not 0 < s < SECP256K1_N:
        raise _fail("bad_signature", f"s {s:#x} out of range [1, n)")
    if s > SECP256K1_HALF_N:
        raise _fail("bad_signature", f"s {s:#x} is above n/2 (high-s signatures are invalid, EIP-2)")


def _recover(signing_hash: bytes, parity: int, r: int, s: int) -> str:
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + _BYTE[parity]
    try:
        pub = coincurve.PublicKey.from_signature_and_message(sig, signing_hash, hasher=None)
    except Exception as exc:
        raise _fail("bad_signature", f"public key not recoverable from signature ({exc})") from None
    return "0x" + keccak256(pub.format(compressed=False)[1:])[-20:].hex()


def recover_sender(signing_hash: bytes, v_parity: int, r: int, s: int) -> str:
    """Sender address (0x lowercase) of a signature over ``signing_hash``.

    ``v_parity`` is the y parity (0/1). Rejects r/s out of range and high s (EIP-2).
    """
    if type(signing_hash) is not bytes or len(signing_hash) != 32:
        raise _fail("bad_signature", "signing hash must be 32 bytes")
    if not isinstance(v_parity, int) or not isinstance(r, int) or not isinstance(s, int) or v_parity < 0:
        raise _fail("bad_signature", "v_parity, r and s must be non-negative integers")
    _check_signature_values(v_parity, r, s)
    return _recover(signing_hash, v_parity, r, s)


def _legacy_v(v: int) -> tuple[int | None, int]:
    """(chain_id or None, y parity) from a legacy v."""
    if v == 27 or v == 28:
        return None, v - 27
    if v >= 35:
        return (v - 35) >> 1, (v - 35) & 1
    raise _fail("bad_signature", f"legacy v {v} is neither 27/28 nor chainId*2+35/36 (EIP-155)")


def _check_chain(chain_id: int | None, expected: int | None) -> None:
    if expected is None:
        return
    if chain_id is None:
        raise _fail("no_chain_id", f"pre-EIP-155 legacy transaction has no chain id (expected {expected})")
    if chain_id != expected:
        raise _fail("wrong_chain_id", f"chain id {chain_id} != expected {expected}")


# --------------------------------------------------------------------------------------
# raw transactions


def _raw_to_bytes(raw) -> bytes:
    if type(raw) is bytes:
        return raw
    if isinstance(raw, str):
        h = raw[2:] if raw[:2] in ("0x", "0X") else raw
        if not (h.isascii() and h.isalnum()):
            raise _fail("bad_rlp", "raw transaction string is not hex")
        try:
            return bytes.fromhex(h)
        except ValueError:
            raise _fail("bad_rlp", "raw transaction string is not valid hex (odd length or bad digit)") from None
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw)
    raise _fail("bad_rlp", f"raw transaction must be bytes or a hex string, got {type(raw).__name__}")


def decode_raw_transaction(raw: bytes | str, *, expected_chain_id: int | None = None) -> Transaction:
    """Decode and verify a signed raw transaction (bytes or 0x-hex).

    Accepts the canonical form (legacy RLP list or typed envelope ``type || rlp(...)``), the
    RLP-string-wrapped typed form (``0xb8..``), and blob transactions with their sidecar
    (network form); ``Transaction.raw`` is always the canonical form.
    """
    try:
        return _decode_raw(_raw_to_bytes(raw), expected_chain_id)
    except InvalidTransaction:
        raise
    except Exception as exc:  # safety net: never leak another exception type
        raise _fail("bad_rlp", f"unexpected {type(exc).__name__} while decoding: {exc}") from None


def _decode_raw(b: bytes, expected_chain_id: int | None) -> Transaction:
    if not b:
        raise _fail("bad_rlp", "empty input")
    b0 = b[0]
    if 0x80 <= b0 < 0xC0:  # RLP string wrapping a typed envelope
        b = _rlp_decode(b, "wrapped transaction")
        if not b or b[0] >= 0x80:
            raise _fail("bad_rlp", "RLP string wrapper does not contain a typed transaction envelope")
        b0 = b[0]
    if b0 >= 0xC0:
        return _decode_legacy(b, expected_chain_id)
    if b0 not in _TYPED_FIELD_COUNT:
        raise _fail("unsupported_type", f"transaction type {b0:#04x} is not supported (0-4)")
    items = _rlp_decode(b[1:], f"type {b0} payload")
    if type(items) is not list:
        raise _fail("bad_rlp", f"type {b0} payload is an RLP string, expected a list")
    if b0 == 3 and items and type(items[0]) is list:  # network form with blob sidecar
        items = _strip_blob_sidecar(items)
        b = b"\x03" + _rlp(items)
    n = _TYPED_FIELD_COUNT[b0]
    if len(items) != n:
        raise _fail("bad_rlp", f"type {b0} transaction has {len(items)} fields, expected {n}")

    chain_id = _r_int(items[0], "chainId", 32)
    nonce = _r_int(items[1], "nonce", 8)
    if b0 == 1:
        gas_price = tip = fee_cap = _r_int(items[2], "gasPrice", 32)
        i = 3
    else:
        tip = _r_int(items[2], "maxPriorityFeePerGas", 32)
        gas_price = fee_cap = _r_int(items[3], "maxFeePerGas", 32)
        i = 4
    gas = _r_int(items[i], "gas", 8)
    to = _r_to(items[i + 1], required=b0 >= 3)
    value = _r_int(items[i + 2], "value", 32)
    data = _r_bytes(items[i + 3], "data")
    _r_access_list(items[i + 4])
    if b0 == 3:
        _r_int(items[9], "maxFeePerBlobGas", 32)
        _r_blob_hashes(items[10])
    elif b0 == 4:
        _r_auth_list(items[9])
    parity = _r_int(items[-3], "yParity", 32)
    r = _r_int(items[-2], "r", 32)
    s = _r_int(items[-1], "s", 32)

    _check_chain(chain_id, expected_chain_id)
    _check_signature_values(parity, r, s)
    sig_len = len(_enc_bytes(items[-3])) + len(_enc_bytes(items[-2])) + len(_enc_bytes(items[-1]))
    body = _list_body(b[1:])
    signing_hash = keccak256(_BYTE[b0] + _enc_list(body[: len(body) - sig_len]))
    sender = _recover(signing_hash, parity, r, s)
    return Transaction(
        "0x" + keccak256(b).hex(), chain_id, b0, sender, to, value, nonce, gas,
        gas_price, tip, fee_cap, data, b,
    )  # fmt: skip


def _decode_legacy(b: bytes, expected_chain_id: int | None) -> Transaction:
    items = _rlp_decode(b, "legacy transaction")
    if len(items) != 9:
        raise _fail("bad_rlp", f"legacy transaction has {len(items)} fields, expected 9")
    nonce = _r_int(items[0], "nonce", 8)
    gas_price = _r_int(items[1], "gasPrice", 32)
    gas = _r_int(items[2], "gas", 8)
    to = _r_to(items[3], required=False)
    value = _r_int(items[4], "value", 32)
    data = _r_bytes(items[5], "data")
    v = _r_int(items[6], "v", 32)
    r = _r_int(items[7], "r", 32)
    s = _r_int(items[8], "s", 32)
    chain_id, parity = _legacy_v(v)

    _check_chain(chain_id, expected_chain_id)
    _check_signature_values(parity, r, s)
    sig_len = len(_enc_bytes(items[6])) + len(_enc_bytes(items[7])) + len(_enc_bytes(items[8]))
    body = _list_body(b)
    unsigned = body[: len(body) - sig_len]
    if chain_id is not None:
        unsigned += _enc_int(chain_id) + b"\x80\x80"
    sender = _recover(keccak256(_enc_list(unsigned)), parity, r, s)
    return Transaction(
        "0x" + keccak256(b).hex(), chain_id, 0, sender, to, value, nonce, gas,
        gas_price, gas_price, gas_price, data, b,
    )  # fmt: skip


# --------------------------------------------------------------------------------------
# JSON-RPC transaction objects


def _q(v, name: str, limit: int) -> int:
    """JSON-RPC quantity ("0x..."; leading zeros tolerated) or a non-negative int."""
    if type(v) is str:
        h = v[2:]
        if v[:2] not in ("0x", "0X") or not h or not (h.isascii() and h.isalnum()):
            raise _fail("bad_field", f"{name}: {v[:80]!r} is not a 0x-hex quantity")
        try:
            n = int(h, 16)
        except ValueError:
            raise _fail("bad_field", f"{name}: {v[:80]!r} is not a 0x-hex quantity") from None
    elif type(v) is int:
        n = v
        if n < 0:
            raise _fail("bad_field", f"{name}: negative value {n}")
    elif v is None:
        raise _fail("missing_field", f"{name} is null")
    else:
        raise _fail("bad_field", f"{name}: expected a hex quantity, got {type(v).__name__}")
    if n > limit:
        raise _fail("bad_field", f"{name}: {n:#x} exceeds {limit.bit_length()} bits")
    return n


def _d(v, name: str, size: int = -1) -> bytes:
    """JSON-RPC data ("0x" + even number of hex digits), optionally of a fixed size."""
    if type(v) is str:
        h = v[2:]
        if v[:2] not in ("0x", "0X") or not (h.isascii() and (not h or h.isalnum())):
            raise _fail("bad_field", f"{name}: {v[:80]!r} is not 0x-hex data")
        try:
            b = bytes.fromhex(h)
        except ValueError:
            raise _fail("bad_field", f"{name}: {v[:80]!r} is not 0x-hex data (odd length or bad digit)") from None
    elif isinstance(v, (bytes, bytearray)):
        b = bytes(v)
    elif v is None:
        raise _fail("missing_field", f"{name} is null")
    else:
        raise _fail("bad_field", f"{name}: expected 0x-hex data, got {type(v).__name__}")
    if size >= 0 and len(b) != size:
        raise _fail("bad_field", f"{name}: expected {size} bytes, got {len(b)}")
    return b


def _req(obj: Mapping, name: str, alt: str | None = None):
    v = obj.get(name)
    if v is None and alt is not None:
        v = obj.get(alt)
    if v is None:
        raise _fail("missing_field", f"{name} is missing" if alt is None else f"{name} (or {alt}) is missing")
    return v


def _rpc_access_list(v) -> bytes:
    if v is None:
        return b"\xc0"  # absent: empty (a non-empty list left out shows up as hash_mismatch)
    if not isinstance(v, (list, tuple)):
        raise _fail("bad_field", f"accessList: expected a list, got {type(v).__name__}")
    out = []
    for i, entry in enumerate(v):
        if not isinstance(entry, Mapping):
            raise _fail("bad_field", f"accessList[{i}]: expected an object")
        addr = _d(_req(entry, "address"), f"accessList[{i}].address", 20)
        keys = entry.get("storageKeys")
        if keys is None:
            keys = []
        if not isinstance(keys, (list, tuple)):
            raise _fail("bad_field", f"accessList[{i}].storageKeys: expected a list")
        enc_keys = b"".join([_BYTE[0xA0] + _d(k, f"accessList[{i}].storageKeys[{j}]", 32) for j, k in enumerate(keys)])
        out.append(_enc_list(_BYTE[0x94] + addr + _enc_list(enc_keys)))
    return _enc_list(b"".join(out))


def _rpc_blob_hashes(v) -> bytes:
    if not isinstance(v, (list, tuple)):
        raise _fail("bad_field", f"blobVersionedHashes: expected a list, got {type(v).__name__}")
    return _enc_list(b"".join([_BYTE[0xA0] + _d(h, f"blobVersionedHashes[{i}]", 32) for i, h in enumerate(v)]))


def _rpc_auth_list(v) -> bytes:
    if not isinstance(v, (list, tuple)):
        raise _fail("bad_field", f"authorizationList: expected a list, got {type(v).__name__}")
    out = []
    for i, a in enumerate(v):
        if not isinstance(a, Mapping):
            raise _fail("bad_field", f"authorizationList[{i}]: expected an object")
        p = f"authorizationList[{i}]."
        out.append(
            _enc_list(
                _enc_int(_q(_req(a, "chainId"), p + "chainId", _U256))
                + _BYTE[0x94] + _d(_req(a, "address"), p + "address", 20)
                + _enc_int(_q(_req(a, "nonce"), p + "nonce", _U64))
                + _enc_int(_q(_req(a, "yParity", "v"), p + "yParity", 255))
                + _enc_int(_q(_req(a, "r"), p + "r", _U256))
                + _enc_int(_q(_req(a, "s"), p + "s", _U256))
            )
        )  # fmt: skip
    return _enc_list(b"".join(out))


def transaction_from_rpc(obj: dict, expected_chain_id: int | None = None) -> Transaction:
    """Validate a node's JSON-RPC transaction object and return it as a :class:`Transaction`.

    The object is re-encoded to its canonical signed bytes; their keccak must equal
    ``obj["hash"]`` and the signature must recover to ``obj["from"]``. ``gasPrice`` of
    type >= 2 objects is ignored (for mined txs it is the effective price).
    """
    try:
        return _from_rpc(obj, expected_chain_id)
    except InvalidTransaction:
        raise
    except Exception as exc:  # safety net: never leak another exception type
        raise _fail("bad_field", f"unexpected {type(exc).__name__} while validating: {exc}") from None


def _from_rpc(obj, expected_chain_id: int | None) -> Transaction:
    if not isinstance(obj, Mapping):
        raise _fail("bad_field", f"transaction must be a JSON object, got {type(obj).__name__}")
    get = obj.get
    t = get("type")
    tx_type = 0 if t is None else _q(t, "type", _U64)
    if tx_type > 4:
        raise _fail("unsupported_type", f"transaction type {tx_type:#x} is not supported (0-4)")

    claimed_hash = _d(_req(obj, "hash"), "hash", 32)
    claimed_from = "0x" + _d(_req(obj, "from"), "from", 20).hex()
    nonce = _q(_req(obj, "nonce"), "nonce", _U64)
    gas = _q(_req(obj, "gas", "gasLimit"), "gas", _U64)
    value = _q(_req(obj, "value"), "value", _U256)
    data = _d(_req(obj, "input", "data"), "input")
    to_raw = get("to")
    if to_raw is None or to_raw == "0x":
        to_b = b""
        to = None
    else:
        to_b = _d(to_raw, "to", 20)
        to = "0x" + to_b.hex()
    r = _q(_req(obj, "r"), "r", _U256)
    s = _q(_req(obj, "s"), "s", _U256)

    if tx_type == 0:
        gas_price = tip = fee_cap = _q(_req(obj, "gasPrice"), "gasPrice", _U256)
        v = _q(_req(obj, "v"), "v", _U256)
        chain_id, parity = _legacy_v(v)
        if chain_id is not None:
            claimed_chain = get("chainId")
            if claimed_chain is not None and _q(claimed_chain, "chainId", _U256) != chain_id:
                raise _fail("bad_field", f"chainId {claimed_chain} disagrees with v {v} (chain {chain_id})")
        y = get("yParity")
        if y is not None and _q(y, "yParity", _U256) != parity:
            raise _fail("bad_field", f"yParity {y} disagrees with v {v}")
        fields = (
            _enc_int(nonce) + _enc_int(gas_price) + _enc_int(gas) + _enc_bytes(to_b)
            + _enc_int(value) + _enc_bytes(data)
        )  # fmt: skip
        sig = _enc_int(v) + _enc_int(r) + _enc_int(s)
        _check_chain(chain_id, expected_chain_id)
        _check_signature_values(parity, r, s)
        raw = _enc_list(fields + sig)
        if chain_id is not None:
            fields += _enc_int(chain_id) + b"\x80\x80"
        signing_payload = _enc_list(fields)
    else:
        chain_id = _q(_req(obj, "chainId"), "chainId", _U256)
        y = get("yParity")
        v = get("v")
        if y is not None:
            parity = _q(y, "yParity", _U256)
            if v is not None and _q(v, "v", _U256) != parity:
                raise _fail("bad_field", f"v {v} disagrees with yParity {y}")
        elif v is not None:
            parity = _q(v, "v", _U256)
        else:
            raise _fail("missing_field", "yParity (or v) is missing")
        if tx_type == 1:
            gas_price = tip = fee_cap = _q(_req(obj, "gasPrice"), "gasPrice", _U256)
            fees = _enc_int(gas_price)
        else:
            tip = _q(_req(obj, "maxPriorityFeePerGas"), "maxPriorityFeePerGas", _U256)
            gas_price = fee_cap = _q(_req(obj, "maxFeePerGas"), "maxFeePerGas", _U256)
            fees = _enc_int(tip) + _enc_int(fee_cap)
        if tx_type >= 3 and to is None:
            raise _fail("bad_field", f"to: a type {tx_type} transaction cannot create a contract (to is null)")
        fields = (
            _enc_int(chain_id) + _enc_int(nonce) + fees + _enc_int(gas) + _enc_bytes(to_b)
            + _enc_int(value) + _enc_bytes(data) + _rpc_access_list(get("accessList"))
        )  # fmt: skip
        if tx_type == 3:
            fields += _enc_int(_q(_req(obj, "maxFeePerBlobGas"), "maxFeePerBlobGas", _U256))
            fields += _rpc_blob_hashes(_req(obj, "blobVersionedHashes"))
        elif tx_type == 4:
            fields += _rpc_auth_list(_req(obj, "authorizationList"))
        _check_chain(chain_id, expected_chain_id)
        _check_signature_values(parity, r, s)
        tb = _BYTE[tx_type]
        raw = tb + _enc_list(fields + _enc_int(parity) + _enc_int(r) + _enc_int(s))
        signing_payload = tb + _enc_list(fields)

    tx_hash = keccak256(raw)
    if tx_hash != claimed_hash:
        raise _fail(
            "hash_mismatch",
            f"re-encoded transaction hashes to 0x{tx_hash.hex()}, node reported 0x{claimed_hash.hex()}",
        )
    sender = _recover(keccak256(signing_payload), parity, r, s)
    if sender != claimed_from:
        raise _fail("bad_signature", f"signature recovers to {sender}, node reported from {claimed_from}")
    return Transaction(
        "0x" + tx_hash.hex(), chain_id, tx_type, sender, to, value, nonce, gas,
        gas_price, tip, fee_cap, data, raw,
    )  # fmt: skip


# --------------------------------------------------------------------------------------
# rows


def transaction_to_row(tx: Transaction) -> dict:
    """Landing-segment / table columns (mempool-dumpster summary names), JSON-serialisable."""
    inp = tx.input
    return {
        "hash": tx.hash,
        "chain_id": tx.chain_id,
        "tx_type": tx.tx_type,
        "from": tx.sender,
        "to": tx.to,
        "value": str(tx.value),
        "nonce": tx.nonce,
        "gas": tx.gas,
        "gas_price": str(tx.gas_price),
        "gas_tip_cap": str(tx.gas_tip_cap),
        "gas_fee_cap": str(tx.gas_fee_cap),
        "data_size": len(inp),
        "data_4bytes": "0x" + inp[:4].hex() if len(inp) >= 4 else "",
        "input": "0x" + inp.hex(),
        "raw_tx": "0x" + tx.raw.hex(),
    }
