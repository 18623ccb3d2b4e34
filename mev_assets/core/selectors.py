"""Name 4-byte method selectors from the shipped list of text signatures."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from eth_utils import keccak


def selector_of(signature: str) -> str:
    return "0x" + keccak(text=signature)[:4].hex()


@lru_cache(maxsize=1)
def known_selectors() -> dict[str, tuple[str, str]]:
    """selector -> (group, method name)."""
    data = json.loads(resources.files("mev_assets.configs").joinpath("method_signatures.json").read_text())
    table: dict[str, tuple[str, str]] = {}
    for group, signatures in data["signatures"].items():
        for signature in signatures:
            table.setdefault(selector_of(signature), (group, signature.split("(")[0]))
    return table


def describe_selector(selector: str) -> str:
    if not selector:
        return "(no calldata: ETH transfer)"
    found = known_selectors().get(selector.lower())
    return f"{found[0]}: {found[1]}" if found else f"unknown {selector}"
