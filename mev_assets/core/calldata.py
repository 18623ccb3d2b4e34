"""Calldata decoding: what every transaction calls, and the swap it asks for.

:func:`decode_calldata` takes a frame of transactions (``hash, to, value, input`` and optionally
``from``) and a :class:`~mev_assets.core.registry.Registry`, and returns one row per transaction
with the protocol, method, decode status and, for swaps, tokens, amounts, limits, path, fee tiers,
recipient and deadline (columns in :data:`OUTPUT_SCHEMA`; docs/protocol-registry.md explains them).

How it stays fast: rows are grouped by the method they call (matched on ``(to, selector)``, then on
the selector alone for generic protocols such as ERC-20) and each group is decoded in one pass.
ABI decoding is vectorised with polars string slicing of the hex calldata, generated from the ABI
type tree: static words, dynamic offsets, ``bytes``, arrays of static items and (top-level)
``bytes[]``, with the same strictness as eth-abi (padding, bounds, integer widths). Types outside
that set (arrays of dynamic tuples such as Balancer ``batchSwap`` or 0x ``transformERC20``) are
decoded with a prepared eth-abi decoder per group, row by row. ``engine="eth_abi"`` decodes every
group that way; the tests use it as the reference for the vectorised engine.

Router batches are decoded recursively: ``multicall`` inner calls against the same router's
methods, Universal Router ``execute`` commands against the registry's command set; the children's
swaps are folded into the parent row (split routes summed, chained hops joined, unwrap/sweep
payouts resolving the final recipient and minimum).

Bad input never raises: a row that does not decode gets ``decode_status = "error"`` and the reason
in ``decode_error``; the window goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import polars as pl

from mev_assets.core.registry import (
    ETH_SENTINEL,
    AbiType,
    CallSpec,
    FieldRef,
    Param,
    Registry,
    SwapKindSpec,
)

__all__ = ["DECODE_STATUSES", "OUTPUT_SCHEMA", "decode_calldata"]

DECODE_STATUSES = ("decoded", "no_calldata", "unknown_selector", "classified", "error")

OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "hash": pl.String,
    "protocol": pl.String,
    "protocol_kind": pl.String,
    "method": pl.String,
    "decode_status": pl.String,
    "decode_error": pl.String,
    "swap_kind": pl.String,
    "token_in": pl.String,
    "token_out": pl.String,
    "token_in_symbol": pl.String,
    "token_out_symbol": pl.String,
    "amount_in": pl.String,
    "amount_out": pl.String,
    "amount_out_min": pl.String,
    "amount_in_max": pl.String,
    "amount_in_norm": pl.Float64,
    "amount_out_norm": pl.Float64,
    "amount_out_min_norm": pl.Float64,
    "amount_in_max_norm": pl.Float64,
    "path": pl.List(pl.String),
    "fee_tiers": pl.List(pl.Int64),
    "recipient": pl.String,
    "deadline": pl.Int64,
    "commands": pl.List(pl.String),
    "args_json": pl.String,
}

# Columns every decoded call produces (per call, before the top-level assembly).
_SEMANTIC: dict[str, pl.DataType] = {
    "_cid": pl.UInt32,
    "_status": pl.String,
    "_error": pl.String,
    "_method": pl.String,
    "_payout": pl.Boolean,
    "swap_kind": pl.String,
    "token_in": pl.String,
    "token_out": pl.String,
    "amount_in": pl.String,
    "amount_out": pl.String,
    "amount_out_min": pl.String,
    "amount_in_max": pl.String,
    "path": pl.List(pl.String),
    "fee_tiers": pl.List(pl.Int64),
    "recipient": pl.String,
    "deadline": pl.Int64,
    "commands": pl.List(pl.String),
    "args_json": pl.String,
}

_INTEGER_TEXT = ("amount_in", "amount_out", "amount_out_min", "amount_in_max", "args_json")
MAX_NESTING = 4
_ARG = "@"  # prefix of decoded-argument columns (parameters may be called "to" or "value")
_Z = "0" * 64


def decode_calldata(txs: pl.DataFrame, registry: Registry, *, engine: str = "auto") -> pl.DataFrame:
    """Decode the calldata of ``txs`` (columns ``hash, to, value, input``; ``from`` optional, used to
    resolve "the sender" placeholders). One output row per input row, in input order, with the
    columns of :data:`OUTPUT_SCHEMA`. ``engine``: ``"auto"`` (vectorised where the ABI allows,
    eth-abi otherwise) or ``"eth_abi"`` (eth-abi for every group; the reference)."""
    if engine not in ("auto", "eth_abi"):
        raise ValueError(f"engine must be 'auto' or 'eth_abi', got {engine!r}")
    missing = [c for c in ("hash", "to", "value", "input") if c not in txs.columns]
    if missing:
        raise ValueError(f"decode_calldata: input frame lacks column(s) {missing}; it needs hash, to, value, input")
    tables = _tables(registry)
    base = _normalise(txs)
    base = _match(base, tables)

    calls = base.filter(pl.col("_decode")).select("_cid", "_key", "_hex", "to", "value", "from", "_pool_coins")
    sem = _Decoder(registry, tables, engine).calls(calls, depth=0)

    out = _resolve_conventions(base.drop("_hex").join(sem, on="_cid", how="left", maintain_order="left"), tables)
    out = out.with_columns([_expand_markers(out[c]) for c in _INTEGER_TEXT])
    status = pl.coalesce("_status", "_pre_status")
    decoded_only = [c for c in OUTPUT_SCHEMA if c not in ("hash", "protocol", "protocol_kind", "method", "decode_status",
                                                          "decode_error")]
    return _tokens(out, tables).select(
        "hash",
        pl.col("_protocol").alias("protocol"),
        pl.col("_kind").alias("protocol_kind"),
        pl.coalesce("_method", "_spec_method").alias("method"),
        status.alias("decode_status"),
        pl.coalesce("_error", "_pre_error").alias("decode_error"),
        *[pl.when(status == "decoded").then(pl.col(c)).alias(c) for c in decoded_only],
    ).cast(OUTPUT_SCHEMA)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# registry tables (built once per registry)


@dataclass(frozen=True)
class _Tables:
    methods_bound: pl.DataFrame  # to, _sel, _kb
    methods_generic: pl.DataFrame  # _sel, _kg
    protocols_by_address: pl.DataFrame  # to, _addr_protocol, _addr_kind
    specs: pl.DataFrame  # _key, _spec_protocol, _spec_kind, _spec_method, _decodable
    multicall: pl.DataFrame  # _scope, _sel, _key
    commands: pl.DataFrame  # _scope, _code, _key
    pools: pl.DataFrame  # to, _pool_coins
    conventions: pl.DataFrame  # _protocol, _msg_sender, _address_this, _contract_balance(_marker)
    tokens: pl.DataFrame  # address, symbol, decimals
    masks: dict[str, int]
    semantic: dict[tuple[int, str], list[pl.Expr]] = field(default_factory=dict)  # per (spec key, engine), built on first use


def _tables(registry: Registry) -> _Tables:
    cached = registry.__dict__.get("_calldata_tables")
    if cached is not None:
        return cached
    bound, generic, by_addr, specs, multicall, commands, pools, conv = [], [], [], [], [], [], [], []
    for proto in registry.protocols:
        for m in proto.methods:
            specs.append((m.key, proto.name, proto.kind, m.name, m.decodable))
            multicall.append((proto.name, m.selector, m.key))
            if proto.generic:
                generic.append((m.selector, m.key))
            for a in proto.addresses:
                bound.append((a, m.selector, m.key))
        for a in proto.addresses:
            by_addr.append((a, proto.name, proto.kind))
        for pool in proto.pools:
            pools.append((pool.address, list(pool.coins)))
        c = proto.conventions
        marker = c.contract_balance
        if marker is not None and int(marker) >= 1 << 128:  # how the vectorised engine spells it before expansion
            marker = "#" + int(marker).to_bytes(32, "big").hex()
        conv.append((proto.name, c.msg_sender, c.address_this, c.contract_balance, marker))
    for cs in registry.command_sets.values():
        for code, spec in cs.commands.items():
            commands.append((cs.name, code, spec.key))
            specs.append((spec.key, cs.name, None, spec.name, spec.decodable))
    tables = _Tables(
        methods_bound=pl.DataFrame(bound, schema={"to": pl.String, "_sel": pl.String, "_kb": pl.Int64}, orient="row"),
        methods_generic=pl.DataFrame(generic, schema={"_sel": pl.String, "_kg": pl.Int64}, orient="row"),
        protocols_by_address=pl.DataFrame(by_addr, schema={"to": pl.String, "_addr_protocol": pl.String,
                                                           "_addr_kind": pl.String}, orient="row"),
        specs=pl.DataFrame(specs, schema={"_key": pl.Int64, "_spec_protocol": pl.String, "_spec_kind": pl.String,
                                          "_spec_method": pl.String, "_decodable": pl.Boolean}, orient="row"),
        multicall=pl.DataFrame(multicall, schema={"_scope": pl.String, "_sel": pl.String, "_key": pl.Int64}, orient="row"),
        commands=pl.DataFrame(commands, schema={"_scope": pl.String, "_code": pl.Int64, "_key": pl.Int64}, orient="row"),
        pools=pl.DataFrame(pools, schema={"to": pl.String, "_pool_coins": pl.List(pl.String)}, orient="row"),
        conventions=pl.DataFrame(conv, schema={"_protocol": pl.String, "_msg_sender": pl.String, "_address_this": pl.String,
                                               "_contract_balance": pl.String, "_contract_balance_marker": pl.String},
                                 orient="row"),
        tokens=pl.DataFrame([(t.address, t.symbol, t.decimals) for t in registry.tokens.values()],
                            schema={"address": pl.String, "symbol": pl.String, "decimals": pl.Int64}, orient="row"),
        masks={name: cs.mask for name, cs in registry.command_sets.items()},
    )
    object.__setattr__(registry, "_calldata_tables", tables)
    return tables


# --------------------------------------------------------------------------------------
# input normalisation and method matching


def _normalise(txs: pl.DataFrame) -> pl.DataFrame:
    """Typed copies of the input columns; ``_hex`` is the calldata as lowercase ``0x`` hex. Calldata
    is only copied when it needs changing (nodes send lowercase 0x hex; windows hold megabytes)."""
    def text(name: str) -> pl.Expr:
        return pl.col(name).cast(pl.String)

    inputs = txs["input"].cast(pl.String).fill_null("0x")
    if inputs.str.contains("[A-FX]").any():
        inputs = inputs.str.to_lowercase()
    if not inputs.str.starts_with("0x").all():
        inputs = pl.select(pl.when(inputs.str.starts_with("0x")).then(inputs).otherwise("0x" + inputs)).to_series()
    return txs.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_cid"),
        text("hash").alias("hash"),
        text("to").str.to_lowercase().alias("to"),
        text("value").fill_null("0").alias("value"),
        (text("from").str.to_lowercase() if "from" in txs.columns else pl.lit(None, pl.String)).alias("from"),
    ).with_columns(inputs.alias("_hex"))


def _match(frame: pl.DataFrame, t: _Tables) -> pl.DataFrame:
    """Which registered method each row calls, and the status of rows that will not be decoded.
    The joins run on a narrow frame: calldata (megabytes per window) is not copied through them."""
    hexs = pl.col("_hex")
    facts = frame.select(
        "_cid", "to",
        (hexs.str.contains("^0x[0-9a-f]*$") & (hexs.str.len_bytes() % 2 == 0)).alias("_valid"),
        hexs.str.slice(0, 10).alias("_sel"),
        hexs.str.len_bytes().alias("_len"),
    )
    matched = (
        facts
        .join(t.methods_bound, on=["to", "_sel"], how="left", maintain_order="left")
        .join(t.methods_generic, on="_sel", how="left", maintain_order="left")
        .join(t.protocols_by_address, on="to", how="left", maintain_order="left")
        .join(t.pools, on="to", how="left", maintain_order="left")
        .with_columns(pl.coalesce("_kb", "_kg").alias("_key"))
        .join(t.specs, on="_key", how="left", maintain_order="left")
    )
    empty = pl.col("_len") == 2
    short = pl.col("_len") < 10
    unknown = pl.col("_key").is_null()
    pre_status = (
        pl.when(empty).then(pl.lit("no_calldata"))
        .when(~pl.col("_valid")).then(pl.lit("error"))
        .when(short | pl.col("to").is_null() | unknown).then(pl.lit("unknown_selector"))
        .when(~pl.col("_decodable")).then(pl.lit("classified"))
    )
    pre_error = (
        pl.when(empty).then(None)
        .when(~pl.col("_valid")).then(pl.lit("input is not an even-length hex string"))
        .when(pl.col("to").is_null()).then(pl.lit("contract creation (no 'to'): init code, not a call"))
        .when(short).then(pl.format("calldata of {} byte(s) is shorter than a 4-byte selector", (pl.col("_len") - 2) // 2))
        .when(unknown & pl.col("_addr_protocol").is_not_null())
        .then(pl.format("selector {} is not registered for {}", "_sel", "_addr_protocol"))
        .when(unknown).then(pl.format("selector {} is not registered", "_sel"))
    )
    matched = matched.select(
        "_key", "_pool_coins",
        pre_status.alias("_pre_status"),
        pre_error.alias("_pre_error"),
        pre_status.is_null().alias("_decode"),
        pl.coalesce("_spec_protocol", "_addr_protocol").alias("_protocol"),
        pl.coalesce("_spec_kind", "_addr_kind").alias("_kind"),
        pl.when(pre_status.is_null() | (pre_status == "classified")).then(pl.col("_spec_method")).alias("_spec_method"),
    )
    return pl.concat([frame, matched], how="horizontal")


# --------------------------------------------------------------------------------------
# vectorised ABI decoding


class Unsupported(Exception):
    """The vectorised engine does not cover this ABI type; the group goes to eth-abi."""


def _vectorisable(t: AbiType, top: bool) -> bool:
    if t.kind == "string":
        return False
    if t.kind == "tuple":
        return all(_vectorisable(c.type, False) for c in t.components)
    if t.kind == "array":
        assert t.item is not None
        if t.canonical == "bytes[]":
            return top
        if t.item.is_dynamic:
            return False
        return _vectorisable(t.item, False)
    return True


def _concat(*parts: pl.Expr | str) -> pl.Expr:
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in parts])


# Integers are decimal strings. polars parses up to 128 bits natively; a word above that (max
# approvals, router sentinels) or a negative int is first written as a marker, "#" (unsigned) or
# "~" (signed) + the 64 hex digits, and converted with Python ints for those few rows only, once
# per batch (_expand_markers). A Python callback inside the expression costs ~1 ms per column.
_MARKER = "[#~][0-9a-f]{64}"


def _integer_word(w: pl.Expr, marker: str) -> pl.Expr:
    return pl.coalesce(w.str.to_integer(base=16, dtype=pl.UInt128, strict=False).cast(pl.String), _concat(marker, w))


def _marker_value(marker: str) -> str:
    n = int(marker[1:], 16)
    return str(n - (1 << 256) if marker[0] == "~" and n >> 255 else n)


# Markers common enough to replace natively: unlimited approvals (2**256-1, and 2**160-1 for
# Permit2), the Universal Router's CONTRACT_BALANCE (2**255), -1.
_COMMON_MARKERS = {"#" + f"{v:064x}": str(v) for v in ((1 << 256) - 1, (1 << 160) - 1, 1 << 255)}
_COMMON_MARKERS["~" + "f" * 64] = "-1"


def _expand_markers(s: pl.Series) -> pl.Series:
    """Replace integer markers in a string column (whole values, or inside JSON text)."""
    found = s.str.contains(_MARKER).fill_null(False)
    if not found.any():
        return s
    idx = found.arg_true()
    part = s.gather(idx)
    for marker, value in _COMMON_MARKERS.items():
        part = part.str.replace_all(marker, value, literal=True)
    rest = part.str.contains(_MARKER).fill_null(False)
    if rest.any():
        import re

        pattern = re.compile(_MARKER)
        where = rest.arg_true()
        part = part.scatter(where, [pattern.sub(lambda m: _marker_value(m.group(0)), v) for v in part.gather(where).to_list()])
    return s.scatter(idx, part)


def _word_pattern(t: AbiType) -> str:
    """Regex of the valid encodings of a static type (what eth-abi accepts), for the head check."""
    if t.kind == "address":
        return "0{24}[0-9a-f]{40}"
    if t.kind == "bool":
        return "0{63}[01]"
    if t.kind == "fixed_bytes":
        return f"[0-9a-f]{{{2 * t.bits}}}" + (f"0{{{64 - 2 * t.bits}}}" if t.bits < 32 else "")
    if t.kind == "uint":
        pad = (256 - t.bits) // 4
        return f"0{{{pad}}}[0-9a-f]{{{64 - pad}}}" if pad else "[0-9a-f]{64}"
    if t.kind == "int":
        pad = (256 - t.bits) // 4
        if not pad:
            return "[0-9a-f]{64}"
        return f"(?:0{{{pad}}}[0-7][0-9a-f]{{{63 - pad}}}|f{{{pad}}}[89a-f][0-9a-f]{{{63 - pad}}})"
    if t.kind == "tuple":
        return "".join(_word_pattern(c.type) for c in t.components)
    if t.kind == "array" and t.length is not None and t.item is not None:
        return f"(?:{_word_pattern(t.item)}){{{t.length}}}"
    raise Unsupported(t.canonical)


_OFFSET_PATTERN = "0{56}[0-9a-f]{8}"


class _Plan:
    """Builds polars expressions that decode an ABI parameter list from a hex column.

    Positions are in hex characters. ``checks`` collects (condition, message, fast, detail) in the
    order the data is read (bounds before content). The fast pass ORs the ``fast`` conditions over
    every row; the detailed pass (rows that failed only, see _vector_args) reports the first true
    ``detail`` condition. The words of a head (the parameters' own words and offsets) are checked
    in the fast pass by one regex per tuple; their per-word checks are detail-only.
    """

    def __init__(self, hexs: pl.Expr, nchars: pl.Expr | None):
        self.hex = hexs
        self.n = nchars
        self.checks: list[tuple[pl.Expr, pl.Expr | str | None, bool, bool]] = []
        self.byte_arrays: list[str] = []
        # positions and lengths read from the data, materialised once as columns in dependency
        # order (stage i only reads columns of earlier stages) instead of being recomputed in
        # every expression that needs them
        self.stages: list[list[pl.Expr]] = []

    def column(self, expr: pl.Expr, stage: int) -> pl.Expr:
        while len(self.stages) <= stage:
            self.stages.append([])
        name = f"_p{sum(len(s) for s in self.stages)}"
        self.stages[stage].append(expr.alias(name))
        return pl.col(name)

    def word(self, pos: pl.Expr) -> pl.Expr:
        return self.hex.str.slice(pos, 64)

    def bad(self, cond: pl.Expr, message: pl.Expr | str, in_head: bool = False) -> None:
        self.checks.append((cond, message, not in_head, True))

    def detailed_error(self) -> pl.Expr:
        details = [(c, m) for c, m, _, detail in self.checks if detail]
        if not details:
            return pl.lit(None, pl.String)
        return pl.coalesce([pl.when(c).then(m if isinstance(m, pl.Expr) else pl.lit(m)) for c, m in details])

    def fast_bad(self) -> pl.Expr:
        out = pl.lit(False)
        for c, _, fast, _ in self.checks:
            if fast:
                out = out | c.fill_null(True)
        return out

    def params(self, params: tuple[Param, ...], base: pl.Expr, prefix: str, top: bool = False,
               stage: int = 0) -> list[pl.Expr]:
        """Decode ``params`` whose head starts at ``base`` (which only needs columns of stages
        before ``stage``)."""
        out = []
        head = 0
        head_words = sum(p.type.head_words for p in params)
        if not top and self.n is not None:
            self.bad(base + head_words * 64 > self.n, f"{prefix.rstrip('.')}: tuple runs past the end of the calldata")
        if self.n is not None and head_words:
            pattern = "".join(_OFFSET_PATTERN if p.type.is_dynamic else _word_pattern(p.type) for p in params)
            self.checks.append((~self.hex.str.slice(base, head_words * 64).str.contains(f"^{pattern}$"), None, True, False))
        for p in params:
            label = f"{prefix}{p.name}"
            pos = base + head * 64
            if p.type.is_dynamic:
                assert self.n is not None
                w = self.word(pos)
                self.bad(w.str.slice(0, 56) != _Z[:56], f"{label}: offset out of range", in_head=True)
                offset = w.str.slice(56).str.to_integer(base=16, strict=False)
                # like eth-abi: an offset into the head is malformed, even if the bytes there happen to parse
                self.bad(offset < head_words * 32, f"{label}: offset points into the head")
                start = self.column(base + offset * 2, stage)
                self.bad(start + 64 > self.n, f"{label}: offset points past the end of the calldata")
                expr = self.dynamic(p.type, start, label, top, stage + 1)
            else:
                expr = self.static(p.type, pos, label, in_head=self.n is not None)
            out.append(expr.alias(_ARG + p.name if top else p.name))
            head += p.type.head_words
        return out

    def static(self, t: AbiType, pos: pl.Expr, label: str, in_head: bool = False) -> pl.Expr:
        if t.kind == "tuple":
            fields = []
            offset = 0
            for c in t.components:
                fields.append(self.static(c.type, pos + offset * 64, f"{label}.{c.name}", in_head).alias(c.name))
                offset += c.type.head_words
            return pl.struct(fields)
        if t.kind == "array":
            assert t.item is not None and t.length is not None
            size = t.item.head_words * 64
            return pl.concat_list([self.static(t.item, pos + i * size, f"{label}[{i}]", in_head) for i in range(t.length)])
        return self.elementary(t, self.word(pos), label, in_head)

    def elementary(self, t: AbiType, w: pl.Expr, label: str, in_head: bool = False) -> pl.Expr:
        if t.kind == "address":
            self.bad(w.str.slice(0, 24) != _Z[:24], f"{label}: address word has non-zero high bytes", in_head)
            return _concat("0x", w.str.slice(24))
        if t.kind == "bool":
            self.bad(~w.is_in([_Z, _Z[:63] + "1"]), f"{label}: bool word is neither 0 nor 1", in_head)
            return w.str.slice(63) == "1"
        if t.kind == "fixed_bytes":
            size = 2 * t.bits
            if size < 64:
                self.bad(w.str.slice(size) != _Z[size:], f"{label}: bytes{t.bits} has non-zero padding", in_head)
            return _concat("0x", w.str.slice(0, size))
        if t.kind == "uint":
            pad = (256 - t.bits) // 4
            if pad:
                self.bad(w.str.slice(0, pad) != _Z[:pad], f"{label}: value does not fit uint{t.bits}", in_head)
            if t.bits <= 64:
                return w.str.slice(48).str.to_integer(base=16, dtype=pl.UInt64, strict=False).cast(pl.String)
            if t.bits <= 128:
                return w.str.slice(32).str.to_integer(base=16, dtype=pl.UInt128, strict=False).cast(pl.String)
            return _integer_word(w, "#")
        if t.kind == "int":
            pad = (256 - t.bits) // 4
            if pad:
                top, sign = w.str.slice(0, pad), w.str.slice(pad, 1)
                fits = ((top == _Z[:pad]) & (sign < "8")) | ((top == "f" * pad) & (sign >= "8"))
                self.bad(~fits, f"{label}: value does not fit int{t.bits}", in_head)
            # the word is sign-extended to 256 bits: one conversion serves every width; negatives
            # are above 2**128 as unsigned words, so they always take the marker path
            return _integer_word(w, "~")
        raise Unsupported(t.canonical)

    def length(self, start: pl.Expr, label: str) -> pl.Expr:
        # lengths and offsets are read from their low 4 bytes only (calldata is far smaller), so a
        # garbage word can never turn into a negative or overflowing slice bound
        w = self.word(start)
        self.bad(w.str.slice(0, 56) != _Z[:56], f"{label}: length out of range")
        return w.str.slice(56).str.to_integer(base=16, strict=False)

    def dynamic(self, t: AbiType, start: pl.Expr, label: str, top: bool, stage: int) -> pl.Expr:
        assert self.n is not None
        if t.kind == "bytes":
            size = self.column(self.length(start, label), stage)
            data = start + 64
            padded = (size + 31) // 32 * 64
            self.bad(data + padded > self.n, f"{label}: bytes run past the end of the calldata")
            self.bad(self.hex.str.slice(data + size * 2, padded - size * 2).str.contains("[^0]"),
                     f"{label}: bytes have non-zero padding")
            return _concat("0x", self.hex.str.slice(data, size * 2))
        if t.kind == "tuple":
            return pl.struct(self.params(t.components, start, label + ".", stage=stage))
        if t.kind == "array" and t.length is None and t.item is not None and not t.item.is_dynamic:
            count = self.column(self.length(start, label), stage)
            size = t.item.head_words * 64
            self.bad(start + 64 + count * size > self.n, f"{label}: array runs past the end of the calldata")
            region = self.hex.str.slice(start + 64, count * size)
            chunks = region.str.extract_all(f"[0-9a-f]{{{size}}}")
            inner = _Plan(pl.element(), None)
            item = inner.static(t.item, pl.lit(0), f"{label}[]")
            # fast pass: every element matches the item's pattern; detail: which check failed
            self.bad(~region.str.contains(f"^(?:{_word_pattern(t.item)})*$"), pl.coalesce(
                [pl.when(chunks.list.eval(cond).list.any()).then(pl.lit(msg)) for cond, msg, _, _ in inner.checks]
                + [pl.lit(f"{label}: malformed element")]))
            return chunks.list.eval(item)
        if t.canonical == "bytes[]" and top:
            # elements are addressed by per-element offsets: resolved after the select (explode)
            count = self.column(self.length(start, label), stage)
            self.bad(start + 64 + count * 64 > self.n, f"{label}: offsets run past the end of the calldata")
            region = self.hex.str.slice(start + 64, count * 64)
            self.bad(~region.str.contains(f"^(?:{_OFFSET_PATTERN})*$"), f"{label}: element offset out of range")
            self.byte_arrays.append(label)
            return pl.struct(
                (start + 64).alias("region"),
                count.alias("count"),
                region.str.extract_all("[0-9a-f]{64}").list.eval(
                    pl.element().str.slice(56).str.to_integer(base=16, strict=False)).alias("offsets"),
            )
        raise Unsupported(t.canonical)


def _resolve_byte_arrays(frame: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """Replace the placeholder of a top-level bytes[] column with the list of its elements (hex),
    setting ``_bad`` for rows whose elements are malformed (``_item_err`` says why)."""
    col = _ARG + name
    parts = frame.select(
        "_row", "_hex", "_n",
        pl.col(col).struct.field("region").alias("_region"),
        pl.col(col).struct.field("count").alias("_count"),
        pl.col(col).struct.field("offsets").alias("_off"),
    ).filter(pl.col("_off").list.len() > 0).explode("_off")
    hexs = pl.col("_hex")
    start = pl.col("_region") + pl.col("_off") * 2
    w = hexs.str.slice(start, 64)
    size = w.str.slice(56).str.to_integer(base=16, strict=False)
    padded = (size + 31) // 32 * 64
    err = pl.coalesce(
        pl.when(pl.col("_off").is_null() | (start + 64 > pl.col("_n"))).then(pl.lit(f"{name}: element offset points past the end")),
        pl.when(pl.col("_off") < pl.col("_count") * 32).then(pl.lit(f"{name}: element offset points into the offsets")),
        pl.when(w.str.slice(0, 56) != _Z[:56]).then(pl.lit(f"{name}: element length out of range")),
        pl.when(start + 64 + padded > pl.col("_n")).then(pl.lit(f"{name}: element runs past the end of the calldata")),
        pl.when(hexs.str.slice(start + 64 + size * 2, padded - size * 2).str.contains("[^0]"))
        .then(pl.lit(f"{name}: element has non-zero padding")),
    )
    items = parts.select(
        "_row", _concat("0x", hexs.str.slice(start + 64, size * 2)).alias("_item"), err.alias("_item_err"),
    ).group_by("_row", maintain_order=True).agg(pl.col("_item"), pl.col("_item_err").drop_nulls().first())
    frame = frame.join(items, on="_row", how="left", maintain_order="left")
    return frame.with_columns(
        pl.when(pl.col(col).is_not_null()).then(pl.col("_item").fill_null(pl.lit([], pl.List(pl.String)))).alias(col),
        (pl.col("_bad") | pl.col("_item_err").is_not_null()).alias("_bad"),
        pl.coalesce(pl.col("_items_err"), pl.col("_item_err")).alias("_items_err"),
    ).drop("_item", "_item_err")


@dataclass(frozen=True)
class _Compiled:
    stages: list[list[pl.Expr]]  # position columns, in dependency order
    values: list[pl.Expr]  # @name columns
    fast_bad: pl.Expr  # True where any check fails (cheap: the head is one regex)
    detail: pl.Expr  # the first failing check's message (evaluated on failing rows only)
    byte_arrays: tuple[str, ...]


@lru_cache(maxsize=1024)
def _compile(params: tuple[Param, ...], base: int) -> _Compiled:
    """The decoding expressions of a parameter list whose encoding starts at hex character ``base``
    of ``_hex`` (built once per ABI and base)."""
    plan = _Plan(pl.col("_hex"), pl.col("_n"))
    head = sum(p.type.head_words for p in params) * 64
    if head:
        plan.bad(pl.col("_n") - base < head,
                 pl.format("calldata has {} argument byte(s), the parameters need at least {}",
                           (pl.col("_n") - base) // 2, pl.lit(head // 2)))
    values = plan.params(params, pl.lit(base, pl.Int64), "", top=True)
    return _Compiled(plan.stages, values, plan.fast_bad(), plan.detailed_error(), tuple(plan.byte_arrays))


def _vector_args(group: pl.DataFrame, params: tuple[Param, ...], base: int) -> pl.LazyFrame:
    """Decoded arguments (``@name`` columns), ``_bad`` (the row failed a check) and ``_items_err``
    (why a bytes[] element failed) for every row of ``group`` (``_hex``: the ABI encoding starts at
    character ``base``), as one lazy query over ``group``'s columns. Garbage in a bad row's
    arguments is harmless: the caller reports bad rows as errors with null fields."""
    c = _compile(params, base)
    frame = group.lazy().with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"),
                                      pl.col("_hex").str.len_bytes().cast(pl.Int64).alias("_n"))
    for stage in c.stages:
        frame = frame.with_columns(stage)
    frame = frame.with_columns(*c.values, c.fast_bad.alias("_bad"), pl.lit(None, pl.String).alias("_items_err"))
    for name in c.byte_arrays:
        frame = _resolve_byte_arrays(frame, name)
    return frame


def _vector_errors(bad: pl.DataFrame, params: tuple[Param, ...], base: int) -> pl.Series:
    """The reason each row of ``bad`` (rows that failed the fast pass, with ``_hex`` and
    ``_items_err``) is malformed: the first failing check in reading order."""
    c = _compile(params, base)
    frame = bad.lazy().with_columns(pl.col("_hex").str.len_bytes().cast(pl.Int64).alias("_n"))
    for stage in c.stages:
        frame = frame.with_columns(stage)
    return frame.select(pl.coalesce(c.detail, pl.col("_items_err"), pl.lit("malformed calldata"))).collect().to_series()


# --------------------------------------------------------------------------------------
# eth-abi engine (fallback and reference)


def _dtype(t: AbiType) -> pl.DataType:
    if t.kind == "bool":
        return pl.Boolean()
    if t.kind == "array":
        assert t.item is not None
        return pl.List(_dtype(t.item))
    if t.kind == "tuple":
        return pl.Struct({c.name: _dtype(c.type) for c in t.components})
    return pl.String()


def _py(t: AbiType, v: Any) -> Any:
    if t.kind in ("uint", "int"):
        return str(v)
    if t.kind == "address":
        return v.lower()
    if t.kind in ("bytes", "fixed_bytes"):
        return "0x" + bytes(v).hex()
    if t.kind == "array":
        assert t.item is not None
        return [_py(t.item, x) for x in v]
    if t.kind == "tuple":
        return {c.name: _py(c.type, x) for c, x in zip(t.components, v)}
    return v  # bool, string


@lru_cache(maxsize=512)
def _eth_abi_decoder(types: tuple[str, ...]):
    from eth_abi.registry import registry

    return registry.get_tuple_decoder(*types)


def _eth_abi_args(group: pl.DataFrame, params: tuple[Param, ...], base: int) -> pl.LazyFrame:
    from eth_abi.decoding import ContextFramesBytesIO

    decoder = _eth_abi_decoder(tuple(p.type.canonical for p in params))
    columns: list[list[Any]] = [[] for _ in params]
    errors: list[str | None] = []
    for payload in group["_hex"].to_list():
        try:
            values = decoder(ContextFramesBytesIO(bytes.fromhex(payload[base:])))
            converted = [_py(p.type, v) for p, v in zip(params, values)]
        except Exception as exc:  # eth-abi raises many types; the row reports it and the batch goes on
            converted = [None] * len(params)
            errors.append(f"{type(exc).__name__}: {exc}")
        else:
            errors.append(None)
        for col, v in zip(columns, converted):
            col.append(v)
    data = {_ARG + p.name: pl.Series(_ARG + p.name, col, dtype=_dtype(p.type)) for p, col in zip(params, columns)}
    data["_err"] = pl.Series("_err", errors, dtype=pl.String)
    return pl.DataFrame(data).lazy().with_columns(pl.col("_err").is_not_null().alias("_bad"))


# --------------------------------------------------------------------------------------
# field mapping: arguments -> swap columns


def _arg(steps: tuple[str | int, ...]) -> pl.Expr:
    e = pl.col(_ARG + str(steps[0]))
    for s in steps[1:]:
        e = e.list.get(s, null_on_oob=True) if isinstance(s, int) else e.struct.field(s)
    return e


def _ref(r: FieldRef) -> pl.Expr:
    if r.source == "value":
        return pl.col("value")
    if r.source == "to":
        return pl.col("to")
    if r.source == "from":
        return pl.col("from")
    if r.source == "eth":
        return pl.lit(ETH_SENTINEL)
    e = _arg(r.steps)
    if r.source == "pool_coin":  # a negative coin index is invalid (the pool reverts), not "from the end"
        index = e.cast(pl.Int64, strict=False)
        return pl.when(index >= 0).then(pl.col("_pool_coins").list.get(index, null_on_oob=True))
    return e


def _v3_path(packed: pl.Expr, reverse: bool) -> tuple[pl.Expr, pl.Expr]:
    """Tokens and fee tiers of a Uniswap V3 packed path (token 20 bytes, then fee 3 + token 20 ...)."""
    h = packed.str.strip_prefix("0x")
    size = h.str.len_bytes()
    valid = (size >= 86) & ((size - 40) % 46 == 0)
    chunks = h.str.extract_all("[0-9a-f]{46}|[0-9a-f]{40}$")
    tokens = chunks.list.eval(_concat("0x", pl.element().str.slice(0, 40)))
    # the last chunk is the final token alone: its "fee" parses to null and is dropped
    fees = chunks.list.eval(pl.element().str.slice(40, 6).str.to_integer(base=16, strict=False)).list.drop_nulls()
    if reverse:
        tokens, fees = tokens.list.reverse(), fees.list.reverse()
    return pl.when(valid).then(tokens), pl.when(valid).then(fees)


def _swap_exprs(spec: CallSpec) -> dict[str, pl.Expr]:
    f = spec.fields
    none_s, none_l = pl.lit(None, pl.String), pl.lit(None, pl.List(pl.String))
    out: dict[str, pl.Expr] = {}
    kind_spec: SwapKindSpec | None = f.get("swap_kind")
    if kind_spec is None:
        kind = none_s
    elif kind_spec.literal is not None:
        kind = pl.lit(kind_spec.literal)
    else:
        assert kind_spec.arg is not None
        kind = _ref(kind_spec.arg).replace_strict(dict(kind_spec.mapping), default=None, return_dtype=pl.String)
    out["swap_kind"] = kind

    def pick(name: str, otherwise: pl.Expr | None = None) -> pl.Expr | None:
        return _ref(f[name]) if name in f else otherwise

    exact_in, exact_out = kind == "exact_in", kind == "exact_out"
    amount, limit = pick("amount"), pick("limit")
    out["amount_in"] = pick("amount_in", pl.when(exact_in).then(amount) if amount is not None else none_s)
    out["amount_out"] = pick("amount_out", pl.when(exact_out).then(amount) if amount is not None else none_s)
    out["amount_out_min"] = pick("amount_out_min", pl.when(exact_in).then(limit) if limit is not None else none_s)
    out["amount_in_max"] = pick("amount_in_max", pl.when(exact_out).then(limit) if limit is not None else none_s)

    fees = None
    if "path" in f:
        encoding = f.get("path_encoding", "addresses")
        if encoding == "addresses":
            path = _ref(f["path"])
        else:
            path, fees = _v3_path(_ref(f["path"]), reverse=encoding == "v3_reversed")
    else:
        path = None
    token_in = pick("token_in") if "token_in" in f else (path.list.first() if path is not None else none_s)
    token_out = pick("token_out") if "token_out" in f else (path.list.last() if path is not None else none_s)
    if path is None:
        path = (pl.when(kind.is_not_null()).then(pl.concat_list([token_in, token_out]))
                if "token_in" in f and "token_out" in f else none_l)
    out["token_in"], out["token_out"], out["path"] = token_in, token_out, path
    if "fee_tiers" in f:
        ft = _ref(f["fee_tiers"])
        t = f["fee_tiers"].type
        fees = (ft.list.eval(pl.element().cast(pl.Int64, strict=False)) if t is not None and t.kind == "array"
                else pl.concat_list([ft.cast(pl.Int64, strict=False)]))
    out["fee_tiers"] = fees if fees is not None else pl.lit(None, pl.List(pl.Int64))
    out["recipient"] = pick("recipient", none_s)
    out["deadline"] = _ref(f["deadline"]).cast(pl.Int64, strict=False) if "deadline" in f else pl.lit(None, pl.Int64)
    return out


def _json_string(e: pl.Expr) -> pl.Expr:
    """A JSON string literal (quoted, escaped) for a string expression; ``null`` for null."""
    return pl.struct(e.alias("s")).struct.json_encode().str.strip_prefix('{"s":').str.strip_suffix("}")


def _args_json(params: tuple[Param, ...], exclude: set[str]) -> pl.Expr | None:
    kept = [p for p in params if p.name not in exclude]
    if not kept:
        return None
    return pl.struct([pl.col(_ARG + p.name).alias(p.name) for p in kept]).struct.json_encode()


# --------------------------------------------------------------------------------------
# decoding calls (methods, multicall children, router commands)


class _Decoder:
    def __init__(self, registry: Registry, tables: _Tables, engine: str):
        self.registry = registry
        self.tables = tables
        self.engine = engine

    def calls(self, calls: pl.DataFrame, depth: int) -> pl.DataFrame:
        """Semantic columns (:data:`_SEMANTIC`) for calls with a decodable ``_key`` (columns ``_cid,
        _key, _hex, to, value, from, _pool_coins``; ``_hex`` is ``0x`` + selector + arguments for
        methods, ``0x`` + arguments for commands)."""
        frames = [self.group(g, self.registry.specs[key], depth)
                  for (key,), g in calls.partition_by("_key", as_dict=True, maintain_order=True).items()]
        if not frames:
            return pl.DataFrame(schema=_SEMANTIC)
        return pl.concat(frames, how="vertical_relaxed")

    def vectorised(self, params: tuple[Param, ...]) -> bool:
        return self.engine == "auto" and all(_vectorisable(p.type, True) for p in params)

    def group(self, g: pl.DataFrame, spec: CallSpec, depth: int) -> pl.DataFrame:
        """Semantic columns of one method's (or command's) rows: one lazy query from calldata to
        fields; the detailed reason is worked out afterwards for the rows that failed, if any."""
        assert spec.params is not None
        base = 2 if spec.code is not None else 10  # commands carry bare arguments, methods a selector
        vectorised = self.vectorised(spec.params)
        if vectorised:
            frame = _vector_args(g, spec.params, base)
        else:
            frame = pl.concat([g.lazy(), _eth_abi_args(g, spec.params, base)], how="horizontal")
        sem = frame.select(self.semantic(spec)).collect()
        if vectorised and sem["_bad"].any():
            idx = sem["_bad"].arg_true()
            errors = _vector_errors(g[idx].with_columns(sem["_items_err"].gather(idx)), spec.params, base)
            sem = sem.with_columns(sem["_error"].scatter(idx, errors))
        if spec.dispatch is not None:
            return self.dispatch(sem, spec, depth, _args_json(spec.params, self._excluded(spec)) is not None).select(
                list(_SEMANTIC))
        return pl.DataFrame(sem.get_columns()[:len(_SEMANTIC)])  # the semantic columns come first

    @staticmethod
    def _excluded(spec: CallSpec) -> set[str]:
        if spec.dispatch is None:
            return set()
        return {spec.dispatch.calls} if spec.dispatch.type == "multicall" else {spec.dispatch.inputs}

    def semantic(self, spec: CallSpec) -> list[pl.Expr]:
        """The expressions from decoded arguments to the semantic columns (built once per spec).
        Bad rows get status "error"; their fields are cleared in the final assembly."""
        exprs = self.tables.semantic.get((spec.key, self.engine))
        if exprs is None:
            assert spec.params is not None
            ok = ~pl.col("_bad")
            json = _args_json(spec.params, self._excluded(spec))
            vectorised = self.vectorised(spec.params)
            by_name = {
                "_cid": pl.col("_cid"),
                "_status": pl.when(ok).then(pl.lit("decoded")).otherwise(pl.lit("error")),
                # vectorised: the reason is filled in afterwards for the (rare) bad rows
                "_error": pl.lit(None, pl.String) if vectorised else pl.col("_err"),
                "_method": pl.lit(spec.name),
                "_payout": pl.lit(spec.payout),
                **_swap_exprs(spec),
                "commands": pl.lit(None, pl.List(pl.String)),
                "args_json": pl.when(ok).then(json if json is not None else pl.lit("{}")),
            }
            exprs = [by_name[c].cast(dtype).alias(c) for c, dtype in _SEMANTIC.items()]
            exprs += [pl.col("_bad"), pl.col("_items_err") if vectorised else pl.lit(None, pl.String).alias("_items_err")]
            if spec.dispatch is not None:
                exprs += [pl.col(c) for c in ("to", "value", "from", "_pool_coins")] + [pl.col(_ARG + p.name) for p in spec.params]
            self.tables.semantic[(spec.key, self.engine)] = exprs
        return exprs

    # --- batches ----------------------------------------------------------------------------

    def dispatch(self, sem: pl.DataFrame, spec: CallSpec, depth: int, has_own_args: bool) -> pl.DataFrame:
        d = spec.dispatch
        assert d is not None
        context = ["to", "value", "from", "_pool_coins"]
        parents = sem.filter(pl.col("_status") == "decoded")
        if d.type == "multicall":
            kids = parents.select(
                pl.col("_cid").alias("_parent"), *context, pl.col(_ARG + d.calls).alias("_call"),
            ).with_columns(pl.int_ranges(0, pl.col("_call").list.len(), dtype=pl.UInt32).alias("_idx"))
            kids = kids.explode(["_call", "_idx"]).filter(pl.col("_call").is_not_null())
            kids = kids.with_columns(
                pl.col("_call").alias("_hex"), pl.lit(spec.protocol).alias("_scope"),
                pl.col("_call").str.slice(0, 10).alias("_sel"),
            ).join(self.tables.multicall, on=["_scope", "_sel"], how="left", maintain_order="left")
            kids = kids.with_columns(
                pl.coalesce(pl.col("_key").replace_strict(self._names(), default=None, return_dtype=pl.String),
                            pl.col("_sel")).alias("_name"),
                pl.when(pl.col("_hex").str.len_bytes() < 10)
                .then(pl.format("calldata of {} byte(s) is shorter than a selector",
                                (pl.col("_hex").str.len_bytes() - 2) // 2))
                .when(pl.col("_key").is_null()).then(pl.format("selector {} is not a method of {}", "_sel", pl.lit(spec.protocol)))
                .alias("_unknown"),
            )
            mismatch = None
        else:
            mask = self.tables.masks[spec.command_set]
            kids = parents.select(
                pl.col("_cid").alias("_parent"), *context,
                pl.col(_ARG + d.commands).str.slice(2).str.extract_all("[0-9a-f]{2}").alias("_code_hex"),
                pl.col(_ARG + d.inputs).alias("_call"),
            )
            mismatch = kids.filter(pl.col("_code_hex").list.len() != pl.col("_call").list.len()).select(
                "_parent", pl.format("{} has {} command(s) but {} has {} input(s)", pl.lit(d.commands),
                                     pl.col("_code_hex").list.len(), pl.lit(d.inputs), pl.col("_call").list.len()
                                     ).alias("_mismatch"))
            kids = kids.filter(pl.col("_code_hex").list.len() == pl.col("_call").list.len())
            kids = kids.with_columns(pl.int_ranges(0, pl.col("_call").list.len(), dtype=pl.UInt32).alias("_idx"))
            kids = kids.explode(["_code_hex", "_call", "_idx"]).filter(pl.col("_call").is_not_null())
            kids = kids.with_columns(
                (pl.col("_code_hex").str.to_integer(base=16) & mask).alias("_code"),
                pl.lit(spec.command_set).alias("_scope"),
                pl.col("_call").alias("_hex"),
            ).join(self.tables.commands, on=["_scope", "_code"], how="left", maintain_order="left")
            kids = kids.with_columns(
                pl.coalesce(pl.col("_key").replace_strict(self._names(), default=None, return_dtype=pl.String),
                            _concat("0x", pl.col("_code_hex"))).alias("_name"),
                pl.when(pl.col("_key").is_null())
                .then(pl.format("command {} is not in command set {}", _concat("0x", pl.col("_code_hex")),
                                pl.lit(spec.command_set)))
                .alias("_unknown"),
            )
        kids = kids.with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_cid"))
        decodable = self._decodable()
        runnable = pl.col("_unknown").is_null() & pl.col("_key").is_in(decodable)
        if depth + 1 >= MAX_NESTING:
            kid_sem = pl.DataFrame(schema=_SEMANTIC)
            kids = kids.with_columns(
                pl.when(runnable).then(pl.lit(f"nested deeper than {MAX_NESTING} levels: not followed"))
                .otherwise(pl.col("_unknown")).alias("_unknown"))
            runnable = pl.lit(False)
        else:
            kid_sem = self.calls(kids.filter(runnable).select("_cid", "_key", "_hex", *context), depth + 1)
        kids = kids.select("_cid", "_parent", "_idx", "_name", "_unknown", "_key").join(
            kid_sem, on="_cid", how="left", maintain_order="left")
        kids = kids.with_columns(
            pl.when(pl.col("_status").is_not_null()).then(pl.col("_status"))
            .when(pl.col("_unknown").is_not_null() & pl.col("_key").is_null()).then(pl.lit("unknown_selector"))
            .when(pl.col("_unknown").is_not_null()).then(pl.lit("error"))
            .otherwise(pl.lit("classified")).alias("_status"),
            pl.coalesce("_error", "_unknown").alias("_error"),
            pl.col("_name").alias("_method"),
            pl.col("_payout").fill_null(False),
        )
        return self._fold(sem, kids, spec, mismatch, has_own_args)

    def _names(self) -> dict[int, str]:
        cached = self.__dict__.get("_name_map")
        if cached is None:
            cached = {s.key: s.name for s in self.registry.specs}
            self._name_map = cached
        return cached

    def _decodable(self) -> list[int]:
        cached = self.__dict__.get("_decodable_keys")
        if cached is None:
            cached = [s.key for s in self.registry.specs if s.decodable]
            self._decodable_keys = cached
        return cached

    def _fold(self, sem: pl.DataFrame, kids: pl.DataFrame, spec: CallSpec, mismatch: pl.DataFrame | None,
              has_own_args: bool) -> pl.DataFrame:
        """Fold the children's swaps, names, errors and arguments into their parent rows."""
        kids = kids.sort("_parent", "_idx")
        call_json = _concat(
            '{"method":', _json_string(pl.col("_method")), ',"args":', pl.col("args_json").fill_null("null"),
            pl.when(pl.col("_error").is_not_null()).then(_concat(',"error":', _json_string(pl.col("_error"))))
            .otherwise(pl.lit("")),
            "}",
        )
        names = kids.group_by("_parent", maintain_order=True).agg(
            pl.col("_method").alias("_k_commands"),
            call_json.str.join(",").alias("_k_json"),
            pl.when(pl.col("_status") == "error")
            .then(pl.format("{}[{}] {}: {}", pl.lit(spec.dispatch.calls or spec.dispatch.inputs),  # type: ignore[union-attr]
                            "_idx", "_method", "_error"))
            .drop_nulls().first().alias("_k_error"),
        )
        swaps = kids.filter(pl.col("swap_kind").is_not_null() & (pl.col("_status") == "decoded"))
        same = ((pl.col("token_in").eq_missing(pl.col("token_in").first()).all())
                & (pl.col("token_out").eq_missing(pl.col("token_out").first()).all())
                & (pl.col("swap_kind") == pl.col("swap_kind").first()).all())

        def total(c: str) -> pl.Expr:
            as_int = pl.col(c).cast(pl.UInt128, strict=False)
            return (pl.when((as_int.null_count() == 0) & (pl.col(c).cast(pl.Float64, strict=False).sum() < 3.0e38))
                    .then(as_int.sum().cast(pl.String)))

        # most batches hold one swap: those are taken as they are; only the rest are aggregated
        swaps = swaps.with_columns(pl.len().over("_parent").alias("_n"))
        single = swaps.filter(pl.col("_n") == 1).select(
            "_parent",
            pl.lit(False).alias("_k_multi"),
            pl.lit(False).alias("_k_split"),
            pl.col("swap_kind").alias("_k_kind"),
            pl.col("token_in").alias("_k_token_in"),
            pl.col("token_out").alias("_k_token_out"),
            pl.col("amount_in").alias("_k_in_first"),
            pl.col("amount_in_max").alias("_k_in_max_first"),
            pl.col("amount_out").alias("_k_out_last"),
            pl.col("amount_out_min").alias("_k_out_min_last"),
            *[pl.lit(None, pl.String).alias(c) for c in ("_k_in_sum", "_k_in_max_sum", "_k_out_sum", "_k_out_min_sum")],
            pl.col("path").alias("_k_path_first"),
            pl.col("path").alias("_k_path_all"),
            pl.col("fee_tiers").alias("_k_fees_first"),
            pl.col("fee_tiers").alias("_k_fees_all"),
            pl.col("recipient").alias("_k_recipient"),
            pl.col("deadline").alias("_k_deadline"),
        )
        multi = swaps.filter(pl.col("_n") > 1).group_by("_parent", maintain_order=True).agg(
            (pl.len() > 1).alias("_k_multi"),
            same.alias("_k_split"),
            pl.col("swap_kind").first().alias("_k_kind"),
            pl.col("token_in").first().alias("_k_token_in"),
            pl.col("token_out").last().alias("_k_token_out"),
            pl.col("amount_in").first().alias("_k_in_first"),
            pl.col("amount_in_max").first().alias("_k_in_max_first"),
            pl.col("amount_out").last().alias("_k_out_last"),
            pl.col("amount_out_min").last().alias("_k_out_min_last"),
            total("amount_in").alias("_k_in_sum"),
            total("amount_in_max").alias("_k_in_max_sum"),
            total("amount_out").alias("_k_out_sum"),
            total("amount_out_min").alias("_k_out_min_sum"),
            pl.col("path").first().alias("_k_path_first"),
            pl.col("path").list.explode(keep_nulls=False, empty_as_null=False).alias("_k_path_all"),
            pl.col("fee_tiers").first().alias("_k_fees_first"),
            pl.col("fee_tiers").list.explode(keep_nulls=False, empty_as_null=False).alias("_k_fees_all"),
            pl.col("recipient").last().alias("_k_recipient"),
            pl.col("deadline").drop_nulls().first().alias("_k_deadline"),
        )
        agg = pl.concat([single, multi.select(single.columns)], how="vertical_relaxed") if multi.height else single
        payouts = kids.filter(pl.col("_payout") & (pl.col("_status") == "decoded")).group_by(
            "_parent", maintain_order=True).agg(
            pl.col("recipient").last().alias("_k_payout_to"),
            pl.col("amount_out_min").last().alias("_k_payout_min"),
        )
        out = sem.join(names, left_on="_cid", right_on="_parent", how="left", maintain_order="left")
        out = out.join(agg, left_on="_cid", right_on="_parent", how="left", maintain_order="left")
        out = out.join(payouts, left_on="_cid", right_on="_parent", how="left", maintain_order="left")
        if mismatch is not None and mismatch.height:
            out = out.join(mismatch, left_on="_cid", right_on="_parent", how="left", maintain_order="left")
        else:
            out = out.with_columns(pl.lit(None, pl.String).alias("_mismatch"))

        conv = self.registry.protocol(spec.protocol).conventions
        has = pl.col("_k_kind").is_not_null()
        split = has & pl.col("_k_multi") & pl.col("_k_split")
        router_holds = pl.col("_k_recipient") == pl.col("to")
        if conv.address_this:
            router_holds = router_holds | (pl.col("_k_recipient") == conv.address_this)
        recipient = pl.when(router_holds & pl.col("_k_payout_to").is_not_null()).then(pl.col("_k_payout_to")).otherwise(
            pl.col("_k_recipient"))
        out_min = pl.when(split).then(pl.col("_k_out_min_sum")).otherwise(pl.col("_k_out_min_last"))
        out_min = pl.when(out_min.is_null() | (out_min == "0")).then(
            pl.coalesce(pl.col("_k_payout_min"), out_min)).otherwise(out_min)
        chained_path = pl.col("_k_path_all").list.eval(pl.element().filter(pl.element().ne_missing(pl.element().shift(1))))
        own_json = pl.col("args_json").str.strip_suffix("}") + "," if has_own_args else pl.lit("{")
        failed = pl.coalesce("_mismatch", "_k_error")
        return out.with_columns(
            pl.when(has).then(pl.col("_k_kind")).otherwise(pl.col("swap_kind")).alias("swap_kind"),
            pl.when(has).then(pl.col("_k_token_in")).otherwise(pl.col("token_in")).alias("token_in"),
            pl.when(has).then(pl.col("_k_token_out")).otherwise(pl.col("token_out")).alias("token_out"),
            pl.when(split).then(pl.col("_k_in_sum")).when(has).then(pl.col("_k_in_first"))
            .otherwise(pl.col("amount_in")).alias("amount_in"),
            pl.when(split).then(pl.col("_k_in_max_sum")).when(has).then(pl.col("_k_in_max_first"))
            .otherwise(pl.col("amount_in_max")).alias("amount_in_max"),
            pl.when(split).then(pl.col("_k_out_sum")).when(has).then(pl.col("_k_out_last"))
            .otherwise(pl.col("amount_out")).alias("amount_out"),
            pl.when(has).then(out_min).otherwise(pl.col("amount_out_min")).alias("amount_out_min"),
            pl.when(split | (has & ~pl.col("_k_multi"))).then(pl.col("_k_path_first")).when(has).then(chained_path)
            .otherwise(pl.col("path")).alias("path"),
            pl.when(split | (has & ~pl.col("_k_multi"))).then(pl.col("_k_fees_first")).when(has)
            .then(pl.when(pl.col("_k_fees_all").list.len() > 0).then(pl.col("_k_fees_all")))
            .otherwise(pl.col("fee_tiers")).alias("fee_tiers"),
            pl.when(has).then(recipient).otherwise(pl.col("recipient")).alias("recipient"),
            pl.coalesce("deadline", "_k_deadline").alias("deadline"),
            pl.when(pl.col("_status") == "decoded").then(pl.col("_k_commands").fill_null(pl.lit([], pl.List(pl.String))))
            .alias("commands"),
            pl.when(pl.col("_status") == "decoded")
            .then(own_json + '"calls":[' + pl.col("_k_json").fill_null("") + "]}").otherwise(pl.col("args_json"))
            .alias("args_json"),
            pl.when((pl.col("_status") == "decoded") & failed.is_not_null()).then(pl.lit("error"))
            .otherwise(pl.col("_status")).alias("_status"),
            pl.coalesce("_error", failed).alias("_error"),
        )


# --------------------------------------------------------------------------------------
# top-level assembly


def _resolve_conventions(out: pl.DataFrame, t: _Tables) -> pl.DataFrame:
    """Router placeholders: MSG_SENDER -> the sender; CONTRACT_BALANCE -> msg.value when ETH came in.
    (Amounts may still be integer markers here: the sentinel is compared in both spellings.)"""
    out = out.join(t.conventions, on="_protocol", how="left", maintain_order="left")
    sender = pl.col("recipient").is_not_null() & (pl.col("recipient") == pl.col("_msg_sender"))
    balance = pl.col("amount_in").is_not_null() & (
        (pl.col("amount_in") == pl.col("_contract_balance")) | (pl.col("amount_in") == pl.col("_contract_balance_marker")))
    return out.with_columns(
        pl.when(sender & pl.col("from").is_not_null()).then(pl.col("from")).otherwise(pl.col("recipient")).alias("recipient"),
        pl.when(balance).then(pl.when(pl.col("value") != "0").then(pl.col("value"))).otherwise(pl.col("amount_in"))
        .alias("amount_in"),
    )


def _tokens(out: pl.DataFrame, t: _Tables) -> pl.DataFrame:
    tok_in = t.tokens.rename({"address": "token_in", "symbol": "token_in_symbol", "decimals": "_dec_in"})
    tok_out = t.tokens.rename({"address": "token_out", "symbol": "token_out_symbol", "decimals": "_dec_out"})
    out = out.join(tok_in, on="token_in", how="left", maintain_order="left")
    out = out.join(tok_out, on="token_out", how="left", maintain_order="left")

    def norm(amount: str, dec: str) -> pl.Expr:
        return (pl.col(amount).cast(pl.Float64, strict=False) / pl.lit(10.0).pow(pl.col(dec))).alias(amount + "_norm")

    return out.with_columns(
        norm("amount_in", "_dec_in"), norm("amount_in_max", "_dec_in"),
        norm("amount_out", "_dec_out"), norm("amount_out_min", "_dec_out"),
    )
