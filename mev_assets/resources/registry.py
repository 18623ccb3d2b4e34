"""The protocol registry as a Dagster resource (the file named by ``MEV_PROTOCOL_REGISTRY``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from dagster import ConfigurableResource

from mev_assets.core.registry import Registry, load_registry


@lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int) -> Registry:  # noqa: ARG001 - mtime_ns keys the cache to the file's version
    return load_registry(path)


class ProtocolRegistryResource(ConfigurableResource):
    """Protocols, method ABIs and tokens used to decode calldata; validated when loaded."""

    path: str

    def load(self) -> Registry:
        return _load(self.path, Path(self.path).stat().st_mtime_ns)
