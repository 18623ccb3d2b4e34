"""The landing zone as a Dagster resource."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from mev_assets.ingest.landing import LandingZone


class LandingZoneResource(ConfigurableResource):
    """Where the collector writes sealed segments; assets and the sensor read from it."""

    root: str
    window_seconds: int = 60
    grace_seconds: int = 30

    def zone(self) -> LandingZone:
        return LandingZone(Path(self.root))
