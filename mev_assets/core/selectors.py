"""Name 4-byte method selectors (summaries, the demo) from the protocol registry."""

from __future__ import annotations

from mev_assets.core.registry import Registry, load_registry, selector_of

__all__ = ["describe_selector", "known_selectors", "selector_of"]


def known_selectors(registry: Registry | None = None) -> dict[str, tuple[str, str]]:
    """selector -> (protocol label, method name), from ``registry`` (default: the shipped one)."""
    return (registry or load_registry()).selector_names()


def describe_selector(selector: str, registry: Registry | None = None) -> str:
    if not selector:
        return "(no calldata: ETH transfer)"
    found = known_selectors(registry).get(selector.lower())
    return f"{found[0]}: {found[1]}" if found else f"unknown {selector}"
