"""Local chain for the demo and the tests: anvil, contracts at mainnet addresses, traffic, searcher.

Public API (imported lazily so that `import mev_assets.devnet` stays cheap):
``start_devnet``, ``DevnetHandle``, ``Deployment``, ``deploy``, ``read_deployment``,
``TrafficGenerator``, ``TrafficConfig``, ``Searcher``, ``SearcherConfig``, ``read_labels``,
``AnvilNode``.
"""

from __future__ import annotations

_EXPORTS = {
    "start_devnet": "mev_assets.devnet.runner",
    "DevnetHandle": "mev_assets.devnet.runner",
    "Deployment": "mev_assets.devnet.contracts",
    "deploy": "mev_assets.devnet.contracts",
    "read_deployment": "mev_assets.devnet.contracts",
    "TrafficGenerator": "mev_assets.devnet.traffic",
    "TrafficConfig": "mev_assets.devnet.traffic",
    "TrafficStats": "mev_assets.devnet.traffic",
    "Searcher": "mev_assets.devnet.searcher",
    "SearcherConfig": "mev_assets.devnet.searcher",
    "read_labels": "mev_assets.devnet.searcher",
    "AnvilNode": "mev_assets.devnet.anvil",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mev_assets.devnet' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
