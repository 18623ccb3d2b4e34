"""The landing zone as a Dagster resource: a local directory or a prefix of an S3 bucket."""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import PrivateAttr

from mev_assets.ingest.landing import WAL, LandingZone
from mev_assets.ingest.storage import S3Store, join_key


class LandingZoneResource(ConfigurableResource):
    """Where the collector writes sealed segments; assets and the sensor read from it.

    ``storage="local"``: the zone is the directory ``root``. ``storage="s3"``: the zone is
    ``s3://<s3_bucket>/<s3_prefix>/landing/``, reached through the ``s3`` resource (dagster-aws);
    ``root`` then only names the local directory of collector WALs.
    """

    root: str
    window_seconds: int = 60
    grace_seconds: int = 30
    storage: str = "local"
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3: S3Resource | None = None

    # the boto3 client is built once per resource instance (the sensor ticks every few seconds)
    _client = PrivateAttr(default=None)

    def zone(self) -> LandingZone:
        if self.storage != "s3":
            return LandingZone(Path(self.root))
        if self.s3 is None or not self.s3_bucket:
            raise ValueError("LandingZoneResource(storage='s3') needs s3_bucket and an s3 resource")
        if self._client is None:
            self._client = self.s3.get_client()
        store = S3Store(self._client, self.s3_bucket, join_key(self.s3_prefix, "landing"))
        return LandingZone(store, wal_root=Path(self.root) / WAL)


def build_landing_zone_resource(settings, s3: S3Resource | None = None) -> LandingZoneResource:
    """The resource for ``settings.storage`` (pass the shared ``S3Resource`` in s3 mode)."""
    return LandingZoneResource(
        root=str(settings.landing_dir),
        window_seconds=settings.window_seconds,
        grace_seconds=settings.grace_seconds,
        storage=settings.storage,
        s3_bucket=settings.s3_bucket,
        s3_prefix=settings.s3_prefix,
        s3=s3 if settings.storage == "s3" else None,
    )
