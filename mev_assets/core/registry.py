"""The protocol registry: which contracts and methods the decoder knows, loaded from JSON.

The shipped file is ``mev_assets/configs/protocol_registry.mainnet.json`` (``MEV_PROTOCOL_REGISTRY``
points at another one). Adding a protocol is an edit of that file, no code change; the format is
described in docs/protocol-registry.md and checked by ``configs/protocol_registry.schema.json``.

Loading validates in two passes and fails with a :class:`RegistryError` whose message names the
file and the field (``protocols[3] (uniswap_v3_router).methods[2].selector: ...``):

1. structure, with the JSON Schema (missing fields, wrong types, malformed addresses/selectors);
2. meaning: EIP-55 checksums of mixed-case addresses, ABI types that parse, selectors given in the
   file equal keccak of the signature, ``fields`` that name existing parameters of the right type,
   references between protocols and command sets, no (address, selector) registered twice.

Selectors are always computed from the signature; a ``selector`` in the file is a cross-check.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_checksum_address

from mev_assets.settings import DEFAULT_PROTOCOL_REGISTRY

__all__ = [
    "AbiType",
    "CallSpec",
    "CommandSet",
    "Conventions",
    "DEFAULT_REGISTRY_PATH",
    "ETH_SENTINEL",
    "FieldRef",
    "Param",
    "Protocol",
    "Registry",
    "RegistryError",
    "Token",
    "load_registry",
    "parse_params",
    "selector_of",
]

DEFAULT_REGISTRY_PATH = DEFAULT_PROTOCOL_REGISTRY  # the shipped file; MEV_PROTOCOL_REGISTRY overrides it
SCHEMA_PATH = DEFAULT_PROTOCOL_REGISTRY.parent / "protocol_registry.schema.json"

# Pseudo-address many routers use for native ETH (1inch, 0x, Curve, Balancer use address(0)).
ETH_SENTINEL = "0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"

PROTOCOL_KINDS = ("dex_router", "dex_pool", "dex_vault", "aggregator", "token", "weth", "permit2", "other")
SWAP_KINDS = ("exact_in", "exact_out")
PATH_ENCODINGS = ("addresses", "v3", "v3_reversed")


class RegistryError(ValueError):
    """The registry file is unusable; the message names the file and the offending field."""


def selector_of(signature: str) -> str:
    """``0x`` + first 4 bytes of keccak256 of a canonical signature such as ``transfer(address,uint256)``."""
    return "0x" + keccak(text=signature)[:4].hex()


# --------------------------------------------------------------------------------------
# ABI types


@dataclass(frozen=True)
class AbiType:
    """One ABI type as a tree: elementary, ``tuple`` (with components) or ``array`` (with item)."""

    kind: str  # uint | int | address | bool | fixed_bytes | bytes | string | tuple | array
    bits: int = 0  # uint/int width, fixed_bytes size in bytes
    item: "AbiType | None" = None  # array element type
    length: int | None = None  # fixed array length; None = dynamic array
    components: tuple["Param", ...] = ()  # tuple members

    @property
    def canonical(self) -> str:
        if self.kind in ("uint", "int"):
            return f"{self.kind}{self.bits}"
        if self.kind == "fixed_bytes":
            return f"bytes{self.bits}"
        if self.kind == "tuple":
            return "(" + ",".join(c.type.canonical for c in self.components) + ")"
        if self.kind == "array":
            assert self.item is not None
            return f"{self.item.canonical}[{'' if self.length is None else self.length}]"
        return self.kind

    @property
    def is_dynamic(self) -> bool:
        if self.kind in ("bytes", "string"):
            return True
        if self.kind == "tuple":
            return any(c.type.is_dynamic for c in self.components)
        if self.kind == "array":
            assert self.item is not None
            return self.length is None or self.item.is_dynamic
        return False

    @property
    def head_words(self) -> int:
        """Words this type takes in its parent's head (1 for dynamic types: the offset)."""
        if self.is_dynamic:
            return 1
        if self.kind == "tuple":
            return sum(c.type.head_words for c in self.components)
        if self.kind == "array":
            assert self.item is not None and self.length is not None
            return self.length * self.item.head_words
        return 1

    @property
    def is_integer(self) -> bool:
        return self.kind in ("uint", "int")


@dataclass(frozen=True)
class Param:
    name: str
    type: AbiType


_ELEMENTARY = re.compile(r"^(uint|int)(\d*)$|^bytes(\d+)$|^(address|bool|bytes|string)$")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_IGNORED_WORDS = {"calldata", "memory", "storage", "payable", "indexed"}


def _elementary(name: str) -> AbiType:
    m = _ELEMENTARY.match(name)
    if not m:
        raise ValueError(f"unknown ABI type {name!r}")
    if m.group(1):
        bits = int(m.group(2) or 256)
        if bits % 8 or not 8 <= bits <= 256:
            raise ValueError(f"{name!r}: integer width must be a multiple of 8 from 8 to 256")
        return AbiType(m.group(1), bits=bits)
    if m.group(3):
        size = int(m.group(3))
        if not 1 <= size <= 32:
            raise ValueError(f"{name!r}: fixed bytes size must be 1..32")
        return AbiType("fixed_bytes", bits=size)
    return AbiType(m.group(4))


class _SignatureParser:
    """Human-readable ABI fragments: ``name(type name, (type name, ...) name, type[] name)``."""

    def __init__(self, text: str):
        self.text = text
        self.i = 0

    def error(self, message: str) -> ValueError:
        return ValueError(f"{message} at character {self.i} of {self.text!r}")

    def skip(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def peek(self) -> str:
        self.skip()
        return self.text[self.i] if self.i < len(self.text) else ""

    def expect(self, ch: str) -> None:
        if self.peek() != ch:
            raise self.error(f"expected {ch!r}")
        self.i += 1

    def ident(self) -> str | None:
        self.skip()
        m = _IDENT.match(self.text, self.i)
        if not m:
            return None
        self.i = m.end()
        return m.group(0)

    def params(self) -> tuple[Param, ...]:
        self.expect("(")
        out: list[Param] = []
        if self.peek() == ")":
            self.i += 1
            return ()
        while True:
            out.append(self.param(len(out)))
            ch = self.peek()
            if ch == ",":
                self.i += 1
                continue
            if ch == ")":
                self.i += 1
                return tuple(out)
            raise self.error("expected ',' or ')'")

    def param(self, index: int) -> Param:
        typ = self.type_()
        name = ""
        while True:
            word = self.ident()
            if word is None or word not in _IGNORED_WORDS:
                name = word or ""
                break
        return Param(name or f"arg{index}", typ)

    def type_(self) -> AbiType:
        if self.peek() == "(":
            typ = AbiType("tuple", components=self.params())
        else:
            word = self.ident()
            if word is None:
                raise self.error("expected a type")
            if word == "tuple" and self.peek() == "(":
                typ = AbiType("tuple", components=self.params())
            else:
                try:
                    typ = _elementary(word)
                except ValueError as exc:
                    raise self.error(str(exc)) from None
        while self.peek() == "[":
            self.i += 1
            self.skip()
            m = re.compile(r"\d+").match(self.text, self.i)
            length = None
            if m:
                length = int(m.group(0))
                self.i = m.end()
                if length == 0:
                    raise self.error("fixed array length must be positive")
            self.expect("]")
            typ = AbiType("array", item=typ, length=length)
        return typ

    def done(self) -> None:
        self.skip()
        if self.i != len(self.text):
            raise self.error("unexpected text")


def parse_params(text: str) -> tuple[Param, ...]:
    """Parameters of a human-readable parameter list such as ``(uint256 amountIn, address[] path)``."""
    p = _SignatureParser(text)
    params = p.params()
    p.done()
    return params


def parse_signature(text: str) -> tuple[str, tuple[Param, ...]]:
    """``name(type name, ...)`` -> (name, params); a leading ``function`` keyword is allowed."""
    p = _SignatureParser(text.strip())
    name = p.ident()
    if name == "function":
        name = p.ident()
    if not name:
        raise p.error("expected a function name")
    params = p.params()
    p.done()
    return name, params


def _abi_json_params(inputs: list[dict]) -> tuple[Param, ...]:
    """Parameters of a JSON ABI fragment's ``inputs`` (as Etherscan or solc emit them)."""
    out = []
    for i, item in enumerate(inputs):
        type_text = item.get("type", "")
        base, suffix = re.match(r"^([^\[]*)(.*)$", type_text).groups()  # type: ignore[union-attr]
        if base == "tuple":
            typ = AbiType("tuple", components=_abi_json_params(item.get("components") or []))
        else:
            try:
                typ = _elementary(base)
            except ValueError as exc:
                raise ValueError(f"inputs[{i}]: {exc}") from None
        for dim in re.findall(r"\[(\d*)\]", suffix):
            typ = AbiType("array", item=typ, length=int(dim) if dim else None)
        if re.sub(r"\[\d*\]", "", suffix):
            raise ValueError(f"inputs[{i}]: malformed type {type_text!r}")
        out.append(Param(item.get("name") or f"arg{i}", typ))
    return tuple(out)


# --------------------------------------------------------------------------------------
# registry model


@dataclass(frozen=True)
class Token:
    address: str  # lowercase
    symbol: str
    decimals: int
    name: str = ""


@dataclass(frozen=True)
class FieldRef:
    """Where an output field comes from: an argument path, a transaction field, or a pool coin.

    ``source``: ``arg`` (``steps`` walk from a top-level parameter through struct members and list
    indices), ``value`` (tx value), ``to`` (tx to), ``from`` (tx sender), ``eth`` (ETH sentinel),
    ``pool_coin`` (the ``to`` pool's coin at the index held by argument ``steps``).
    """

    source: str
    steps: tuple[str | int, ...] = ()
    type: AbiType | None = None
    text: str = ""


@dataclass(frozen=True)
class SwapKindSpec:
    literal: str | None = None  # exact_in | exact_out
    arg: FieldRef | None = None  # ... or read from an argument
    mapping: tuple[tuple[str, str], ...] = ()  # argument value (decimal string) -> kind


@dataclass(frozen=True)
class Dispatch:
    """Inner calls carried in the arguments: ``multicall`` (calls to the same contract: a bytes[]
    of calldata) or ``commands`` (Universal Router: a bytes of command codes + a bytes[] of inputs)."""

    type: str
    calls: str = ""  # bytes[] parameter (multicall)
    commands: str = ""  # bytes parameter with one command code per byte
    inputs: str = ""  # bytes[] parameter with one ABI-encoded input per command


@dataclass(frozen=True)
class CallSpec:
    """A decodable call: a method (selector + parameters) or a router command (code + parameters)."""

    key: int  # index in Registry.specs
    protocol: str
    name: str
    params: tuple[Param, ...] | None  # None: classified only (parameters not decoded)
    selector: str = ""  # methods
    code: int | None = None  # commands
    fields: dict[str, Any] = field(default_factory=dict)  # output field -> FieldRef | SwapKindSpec | str
    dispatch: Dispatch | None = None
    payout: bool = False
    command_set: str = ""  # commands: the set they belong to; methods: the protocol's set

    @property
    def signature(self) -> str:
        if self.params is None:
            return ""
        return self.name + "(" + ",".join(p.type.canonical for p in self.params) + ")"

    @property
    def decodable(self) -> bool:
        return self.params is not None


@dataclass(frozen=True)
class Conventions:
    """Placeholder values a router gives special meaning (Uniswap's MSG_SENDER, ADDRESS_THIS,
    CONTRACT_BALANCE): the decoder resolves them to the sender, the final payout recipient, or
    ``msg.value``."""

    msg_sender: str | None = None
    address_this: str | None = None
    contract_balance: str | None = None  # decimal string


@dataclass(frozen=True)
class Pool:
    address: str
    name: str
    coins: tuple[str, ...]


@dataclass(frozen=True)
class Protocol:
    name: str
    label: str
    kind: str
    addresses: tuple[str, ...]  # lowercase; empty for generic protocols (matched by selector only)
    methods: tuple[CallSpec, ...]
    generic: bool = False
    command_set: str = ""
    conventions: Conventions = Conventions()
    pools: tuple[Pool, ...] = ()


@dataclass(frozen=True)
class CommandSet:
    name: str
    mask: int
    commands: dict[int, CallSpec]


@dataclass(frozen=True)
class Registry:
    path: Path
    chain_id: int
    tokens: dict[str, Token]  # lowercase address -> token
    protocols: tuple[Protocol, ...]
    command_sets: dict[str, CommandSet]
    specs: tuple[CallSpec, ...]  # every method and command; CallSpec.key indexes this

    def protocol(self, name: str) -> Protocol:
        for p in self.protocols:
            if p.name == name:
                return p
        raise KeyError(name)

    def protocol_at(self, address: str) -> Protocol | None:
        return self._by_address().get(address.lower())

    def token(self, address: str) -> Token | None:
        return self.tokens.get(address.lower())

    def method_for(self, to: str | None, selector: str) -> CallSpec | None:
        """The method a call to ``to`` with ``selector`` invokes: address-bound first, then generic."""
        selector = selector.lower()
        if to:
            proto = self.protocol_at(to)
            if proto is not None:
                for m in proto.methods:
                    if m.selector == selector:
                        return m
        for proto in self.protocols:
            if proto.generic:
                for m in proto.methods:
                    if m.selector == selector:
                        return m
        return None

    def describe_selector(self, selector: str) -> str | None:
        """``"<protocol label>: <method>"`` for the first protocol registering ``selector``."""
        found = self.selector_names().get(selector.lower())
        return f"{found[0]}: {found[1]}" if found else None

    def selector_names(self) -> dict[str, tuple[str, str]]:
        """selector -> (protocol label, method name); the first protocol in file order wins."""
        table = self.__dict__.get("_selector_names")
        if table is None:
            table = {}
            for proto in self.protocols:
                for m in proto.methods:
                    table.setdefault(m.selector, (proto.label, m.name))
            object.__setattr__(self, "_selector_names", table)
        return table

    def _by_address(self) -> dict[str, Protocol]:
        cached = self.__dict__.get("_address_index")
        if cached is None:
            cached = {a: p for p in self.protocols for a in p.addresses}
            object.__setattr__(self, "_address_index", cached)
        return cached


# --------------------------------------------------------------------------------------
# loading


def load_registry(path: Path | str | None = None) -> Registry:
    """Load and validate a registry file (default: the shipped mainnet registry). Cached per file
    version (path, size, mtime), so a changed file is re-read."""
    p = Path(path) if path is not None else DEFAULT_REGISTRY_PATH
    try:
        st = p.stat()
    except OSError as exc:
        raise RegistryError(f"{p}: cannot read the protocol registry ({exc.strerror or exc})") from None
    return _load_cached(str(p.resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=8)
def _load_cached(path: str, size: int, mtime_ns: int) -> Registry:
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise RegistryError(f"{p}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except OSError as exc:
        raise RegistryError(f"{p}: cannot read the protocol registry ({exc.strerror or exc})") from None
    return build_registry(doc, p)


@lru_cache(maxsize=1)
def _schema_validator():
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _where(doc: Any, path: list[str | int]) -> str:
    """``protocols[3] (uniswap_v3_router).methods[2]`` for a JSON path."""
    out = ""
    node = doc
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        else:
            out += ("." if out else "") + step
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            node = None
        if isinstance(node, dict) and isinstance(step, int):
            label = node.get("symbol") or node.get("name") or node.get("signature")
            if isinstance(label, str):
                out += f" ({label})"
    return out or "(top level)"


def _schema_errors(doc: Any, file: Path) -> None:
    errors = sorted(_schema_validator().iter_errors(doc), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    messages = []
    for err in errors[:5]:
        # oneOf/anyOf failures: say what the alternatives are when the schema describes them,
        # else report the branch that got furthest (it names the real field)
        while err.context and not (err.validator in ("oneOf", "anyOf") and "description" in err.schema):
            err = max(err.context, key=lambda e: len(e.absolute_path))
        where = _where(doc, list(err.absolute_path))
        if err.validator in ("oneOf", "anyOf") and "description" in err.schema:
            messages.append(f"{where}: {err.schema['description']}")
        elif err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else err.message
            messages.append(f"{where}: missing field '{missing}'")
        elif err.validator == "pattern":
            what = err.schema.get("description", f"a value matching {err.validator_value}")
            messages.append(f"{where}: {err.instance!r} is not {what}")
        elif err.validator == "additionalProperties":
            messages.append(f"{where}: {err.message}")
        else:
            messages.append(f"{where}: {err.message}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    raise RegistryError(f"{file}: " + "; ".join(messages) + more)


def _address(value: str, where: str) -> str:
    """Lowercase address; a mixed-case one must pass its EIP-55 checksum (it catches typos)."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        raise ValueError(f"{where}: {value!r} is not an address (0x followed by 40 hex digits)")
    body = value[2:]
    if body != body.lower() and body != body.upper() and to_checksum_address(value.lower()) != value:
        raise ValueError(f"{where}: address {value} fails its EIP-55 checksum "
                         f"(expected {to_checksum_address(value.lower())}); check every digit")
    return value.lower()


class _Builder:
    def __init__(self, doc: dict, file: Path):
        self.doc = doc
        self.file = file
        self.specs: list[CallSpec] = []

    def fail(self, path: list[str | int], message: str) -> RegistryError:
        return RegistryError(f"{self.file}: {_where(self.doc, path)}: {message}")

    def build(self) -> Registry:
        doc = self.doc
        tokens: dict[str, Token] = {}
        for i, t in enumerate(doc.get("tokens", [])):
            try:
                addr = _address(t["address"], "address")
            except ValueError as exc:
                raise self.fail(["tokens", i], str(exc)) from None
            if addr in tokens:
                raise self.fail(["tokens", i, "address"], f"token {addr} is listed twice")
            tokens[addr] = Token(addr, t["symbol"], int(t["decimals"]), t.get("name", ""))

        command_sets: dict[str, CommandSet] = {}
        raw_sets = {cs["name"]: (i, cs) for i, cs in enumerate(doc.get("command_sets", []))}
        if len(raw_sets) != len(doc.get("command_sets", [])):
            raise self.fail(["command_sets"], "command set names must be unique")
        for name in raw_sets:
            self._command_set(name, raw_sets, command_sets, ())

        protocols: list[Protocol] = []
        raw_protocols = doc.get("protocols", [])
        names = [p["name"] for p in raw_protocols]
        for i, name in enumerate(names):
            if names.index(name) != i:
                raise self.fail(["protocols", i, "name"], f"protocol name {name!r} is used twice")
        by_name = {p["name"]: (i, p) for i, p in enumerate(raw_protocols)}
        built: dict[str, Protocol] = {}
        for name in names:
            self._protocol(name, by_name, built, command_sets, tokens, ())
        protocols = [built[n] for n in names]

        seen: dict[tuple[str, str], str] = {}
        for i, proto in enumerate(protocols):
            for addr in proto.addresses:
                for m in proto.methods:
                    other = seen.setdefault((addr, m.selector), proto.name)
                    if other != proto.name:
                        raise self.fail(["protocols", i], f"address {addr} with selector {m.selector} "
                                        f"({m.name}) is already registered by protocol {other!r}")
            if proto.generic:
                for m in proto.methods:
                    other = seen.setdefault(("*", m.selector), proto.name)
                    if other != proto.name:
                        raise self.fail(["protocols", i], f"generic selector {m.selector} ({m.name}) is "
                                        f"already registered by generic protocol {other!r}")
        addr_owner: dict[str, str] = {}
        for i, proto in enumerate(protocols):
            for addr in proto.addresses:
                other = addr_owner.setdefault(addr, proto.name)
                if other != proto.name:
                    raise self.fail(["protocols", i, "addresses"], f"address {addr} already belongs to protocol {other!r}")
        return Registry(path=self.file, chain_id=int(doc.get("chain_id", 1)), tokens=tokens,
                        protocols=tuple(protocols), command_sets=command_sets, specs=tuple(self.specs))

    # --- command sets ---------------------------------------------------------------------

    def _command_set(self, name: str, raw: dict, done: dict[str, CommandSet], stack: tuple[str, ...]) -> CommandSet:
        if name in done:
            return done[name]
        i, cs = raw[name]
        if name in stack:
            raise self.fail(["command_sets", i, "extends"], f"command sets extend each other in a cycle: {' -> '.join(stack + (name,))}")
        commands: dict[int, CallSpec] = {}
        mask = int(cs.get("mask", "0xff"), 16)
        if "extends" in cs:
            if cs["extends"] not in raw:
                raise self.fail(["command_sets", i, "extends"], f"no command set named {cs['extends']!r}")
            parent = self._command_set(cs["extends"], raw, done, stack + (name,))
            if "mask" not in cs:
                mask = parent.mask
            for code, spec in parent.commands.items():
                commands[code] = self._add(CallSpec(key=0, protocol=spec.protocol, name=spec.name, params=spec.params,
                                                    code=code, fields=spec.fields, dispatch=spec.dispatch,
                                                    payout=spec.payout, command_set=name))
        for j, c in enumerate(cs.get("commands", [])):
            path: list[str | int] = ["command_sets", i, "commands", j]
            code = int(c["code"], 16)
            if code & ~mask:
                raise self.fail(path + ["code"], f"code {c['code']} has bits outside the mask {cs.get('mask', '0xff')}")
            if code in commands and commands[code].command_set == name:
                raise self.fail(path + ["code"], f"command code {c['code']} is listed twice")
            params = None
            if "signature" in c:
                try:
                    params = parse_params(c["signature"])
                except ValueError as exc:
                    raise self.fail(path + ["signature"], str(exc)) from None
            fields = self._fields(c.get("fields"), params, path)
            if c.get("payout") and params is None:
                raise self.fail(path + ["payout"], "a payout command needs a signature")
            commands[code] = self._add(CallSpec(key=0, protocol=name, name=c["name"], params=params, code=code,
                                                fields=fields, payout=bool(c.get("payout")), command_set=name))
        done[name] = CommandSet(name=name, mask=mask, commands=commands)
        return done[name]

    def _add(self, spec: CallSpec) -> CallSpec:
        spec = CallSpec(**{**spec.__dict__, "key": len(self.specs)})
        self.specs.append(spec)
        return spec

    # --- protocols ------------------------------------------------------------------------

    def _protocol(self, name: str, by_name: dict, built: dict[str, Protocol], command_sets: dict[str, CommandSet],
                  tokens: dict[str, Token], stack: tuple[str, ...]) -> Protocol:
        if name in built:
            return built[name]
        i, p = by_name[name]
        path: list[str | int] = ["protocols", i]
        if name in stack:
            raise self.fail(path + ["methods_from"], f"methods_from forms a cycle: {' -> '.join(stack + (name,))}")
        generic = p.get("match", "address") == "selector"
        addresses: list[str] = []
        for j, a in enumerate(p.get("addresses", [])):
            try:
                addresses.append(_address(a, "address"))
            except ValueError as exc:
                raise self.fail(path + ["addresses", j], str(exc)) from None
        pools: list[Pool] = []
        for j, pool in enumerate(p.get("pools", [])):
            try:
                pa = _address(pool["address"], "address")
                coins = tuple(_address(c, f"coins[{k}]") for k, c in enumerate(pool["coins"]))
            except ValueError as exc:
                raise self.fail(path + ["pools", j], str(exc)) from None
            pools.append(Pool(pa, pool.get("name", ""), coins))
            if pa not in addresses:
                addresses.append(pa)
        if generic and addresses:
            raise self.fail(path + ["addresses"], "a protocol matched by selector only (match: selector) takes no addresses")
        if not generic and not addresses:
            raise self.fail(path, "needs 'addresses' (or 'pools'), or \"match\": \"selector\" for a generic protocol")
        if len(set(addresses)) != len(addresses):
            raise self.fail(path + ["addresses"], "an address is listed twice")
        command_set = p.get("command_set", "")
        if command_set and command_set not in command_sets:
            raise self.fail(path + ["command_set"], f"no command set named {command_set!r}")
        conv = p.get("conventions", {})
        try:
            conventions = Conventions(
                msg_sender=_address(conv["msg_sender"], "msg_sender") if "msg_sender" in conv else None,
                address_this=_address(conv["address_this"], "address_this") if "address_this" in conv else None,
                contract_balance=str(int(conv["contract_balance"], 0)) if "contract_balance" in conv else None,
            )
        except ValueError as exc:
            raise self.fail(path + ["conventions"], str(exc)) from None

        methods: list[CallSpec] = []
        if "methods_from" in p:
            src = p["methods_from"]
            if src not in by_name:
                raise self.fail(path + ["methods_from"], f"no protocol named {src!r}")
            parent = self._protocol(src, by_name, built, command_sets, tokens, stack + (name,))
            for m in parent.methods:
                methods.append(self._add(CallSpec(**{**m.__dict__, "protocol": name, "command_set": command_set})))
        selectors = {m.selector: k for k, m in enumerate(methods)}
        for j, m in enumerate(p.get("methods", [])):
            spec = self._method(m, name, command_set, path + ["methods", j])
            if spec.dispatch is not None and spec.dispatch.type == "commands" and not command_set:
                raise self.fail(path + ["methods", j, "dispatch"], "commands dispatch needs the protocol's 'command_set'")
            if spec.selector in selectors:
                if "methods_from" in p and methods[selectors[spec.selector]].key < spec.key:
                    methods[selectors[spec.selector]] = spec  # an own method overrides an inherited one
                    continue
                raise self.fail(path + ["methods", j], f"selector {spec.selector} ({spec.name}) is listed twice")
            selectors[spec.selector] = len(methods)
            methods.append(spec)
        proto = Protocol(name=name, label=p.get("label", name), kind=p["kind"], addresses=tuple(addresses),
                         methods=tuple(methods), generic=generic, command_set=command_set,
                         conventions=conventions, pools=tuple(pools))
        built[name] = proto
        return proto

    def _method(self, m: dict, protocol: str, command_set: str, path: list[str | int]) -> CallSpec:
        params: tuple[Param, ...] | None
        if "signature" in m:
            try:
                name, params = parse_signature(m["signature"])
            except ValueError as exc:
                raise self.fail(path + ["signature"], str(exc)) from None
        elif "abi" in m:
            abi = m["abi"]
            name = abi["name"]
            try:
                params = _abi_json_params(abi.get("inputs", []))
            except ValueError as exc:
                raise self.fail(path + ["abi"], str(exc)) from None
        else:
            name, params = m["name"], None
        if params is not None:
            names = [p.name for p in params]
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise self.fail(path, f"parameter name(s) {sorted(dup)} used twice")
            computed = selector_of(name + "(" + ",".join(p.type.canonical for p in params) + ")")
            given = m.get("selector")
            if given is not None and given.lower() != computed:
                raise self.fail(path + ["selector"], f"selector {given} does not match keccak of "
                                f"{name}({','.join(p.type.canonical for p in params)}) = {computed}")
            selector = computed
        else:
            selector = m["selector"].lower()
        fields = self._fields(m.get("fields"), params, path)
        dispatch = None
        if "dispatch" in m:
            dispatch = self._dispatch(m["dispatch"], params, path + ["dispatch"])
        if m.get("payout") and params is None:
            raise self.fail(path + ["payout"], "a payout method needs a signature")
        return self._add(CallSpec(key=0, protocol=protocol, name=name, params=params, selector=selector,
                                  fields=fields, dispatch=dispatch, payout=bool(m.get("payout")),
                                  command_set=command_set))

    def _dispatch(self, d: dict, params: tuple[Param, ...] | None, path: list[str | int]) -> Dispatch:
        if params is None:
            raise self.fail(path, "dispatch needs a signature")
        by_name = {p.name: p for p in params}

        def need(key: str, canonical: str) -> str:
            arg = d.get(key)
            if arg is None:
                raise self.fail(path, f"missing field '{key}'")
            if arg not in by_name:
                raise self.fail(path + [key], f"no parameter {arg!r} (parameters: {', '.join(by_name)})")
            if by_name[arg].type.canonical != canonical:
                raise self.fail(path + [key], f"parameter {arg!r} is {by_name[arg].type.canonical}, needs {canonical}")
            return arg

        if d["type"] == "multicall":
            return Dispatch("multicall", calls=need("calls", "bytes[]"))
        return Dispatch("commands", commands=need("commands", "bytes"), inputs=need("inputs", "bytes[]"))

    # --- fields ---------------------------------------------------------------------------

    def _fields(self, raw: dict | None, params: tuple[Param, ...] | None, path: list[str | int]) -> dict[str, Any]:
        if not raw:
            return {}
        if params is None:
            raise self.fail(path + ["fields"], "fields need a signature (parameters to read them from)")
        out: dict[str, Any] = {}
        for key, spec in raw.items():
            fpath = path + ["fields", key]
            if key == "swap_kind":
                if isinstance(spec, str):
                    out[key] = SwapKindSpec(literal=spec)
                else:
                    ref = self._ref(spec["arg"], params, fpath + ["arg"], want="integer")
                    out[key] = SwapKindSpec(arg=ref, mapping=tuple(sorted((str(k), v) for k, v in spec["map"].items())))
            elif key == "path_encoding":
                out[key] = spec
            elif key in ("token_in", "token_out", "recipient"):
                out[key] = self._ref(spec, params, fpath, want="address")
            elif key in ("amount_in", "amount_out", "amount_out_min", "amount_in_max", "amount", "limit"):
                out[key] = self._ref(spec, params, fpath, want="amount")
            elif key == "deadline":
                out[key] = self._ref(spec, params, fpath, want="integer")
            elif key == "path":
                out[key] = self._ref(spec, params, fpath, want="path")
            elif key == "fee_tiers":
                out[key] = self._ref(spec, params, fpath, want="fees")
        enc = out.get("path_encoding", "addresses")
        if "path" in out:
            is_bytes = out["path"].type is not None and out["path"].type.kind == "bytes"
            if is_bytes != (enc in ("v3", "v3_reversed")):
                raise self.fail(path + ["fields", "path_encoding"],
                                f"path {out['path'].text!r} is {out['path'].type.canonical}: "
                                f"path_encoding must be {'v3 or v3_reversed' if is_bytes else 'addresses'}")
        if ("amount" in out or "limit" in out) and "swap_kind" not in out:
            raise self.fail(path + ["fields"], "'amount'/'limit' need a 'swap_kind' (they mean in or out by it)")
        return out

    def _ref(self, text: str, params: tuple[Param, ...], path: list[str | int], want: str) -> FieldRef:
        special = {"$value": ("value", "amount"), "$to": ("to", "address"), "$from": ("from", "address"),
                   "$eth": ("eth", "address")}
        if text in special:
            source, kind = special[text]
            if kind != want and not (want == "integer" and kind == "amount"):
                raise self.fail(path, f"{text} is not usable here (it is an {kind}, this field needs {want})")
            return FieldRef(source, text=text)
        m = re.fullmatch(r"\$pool_coin\((.+)\)", text)
        if m:
            if want != "address":
                raise self.fail(path, f"{text} is an address, this field needs {want}")
            idx = self._ref(m.group(1), params, path, want="integer")
            return FieldRef("pool_coin", idx.steps, idx.type, text)
        steps: list[str | int] = []
        for part in text.split("."):
            pm = re.fullmatch(r"([A-Za-z_$][A-Za-z0-9_$]*)((?:\[-?\d+\])*)", part)
            if not pm:
                raise self.fail(path, f"cannot read {text!r}: use parameter names joined by '.', with [i] for list items")
            steps.append(pm.group(1))
            steps.extend(int(x) for x in re.findall(r"\[(-?\d+)\]", pm.group(2)))
        typ: AbiType | None = None
        members = params
        for k, step in enumerate(steps):
            if isinstance(step, int):
                if typ is None or typ.kind != "array":
                    raise self.fail(path, f"{text!r}: [{step}] applied to a non-list")
                typ = typ.item
                members = typ.components if typ and typ.kind == "tuple" else ()
                continue
            found = next((p for p in members if p.name == step), None)
            if found is None:
                names = ", ".join(p.name for p in members) or "none"
                raise self.fail(path, f"{text!r}: no parameter {step!r} (available: {names})")
            typ = found.type
            members = typ.components if typ.kind == "tuple" else ()
        assert typ is not None
        ok = {
            "address": typ.kind == "address",
            "amount": typ.is_integer,
            "integer": typ.is_integer,
            "path": typ.canonical == "address[]" or typ.kind == "bytes",
            "fees": typ.is_integer or (typ.kind == "array" and typ.item is not None and typ.item.is_integer),
        }[want]
        if not ok:
            raise self.fail(path, f"{text!r} is {typ.canonical}, this field needs {want}")
        return FieldRef("arg", tuple(steps), typ, text)


def build_registry(doc: Any, file: Path) -> Registry:
    """Validate a parsed registry document (schema, then meaning) and build the :class:`Registry`."""
    _schema_errors(doc, file)
    try:
        return _Builder(doc, file).build()
    except RegistryError:
        raise
    except (KeyError, TypeError, ValueError) as exc:  # a gap in the schema: still name the file
        raise RegistryError(f"{file}: {type(exc).__name__}: {exc}") from None
