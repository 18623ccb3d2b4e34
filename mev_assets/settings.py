"""Every setting of mev_assets: one name, one default, read from the environment.

Documented in docs/configuration.md. Nothing else in the package reads ``os.environ`` for
configuration; modules take a :class:`Settings` (or plain values derived from it).
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PROTOCOL_REGISTRY = Path(__file__).resolve().parent / "configs" / "protocol_registry.mainnet.json"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


@dataclass(frozen=True)
class Source:
    """One node endpoint the collector subscribes to."""

    name: str
    url: str


def parse_sources(text: str) -> tuple[Source, ...]:
    """Parse ``MEV_SOURCES``: comma-separated ``name=url`` (or bare urls, named ``node<i>``)."""
    sources: list[Source] = []
    for i, item in enumerate(part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, url = item.partition("=")
        if not sep:
            name, url = f"node{i}", item
        name, url = name.strip(), url.strip()
        if not url.startswith(("ws://", "wss://")):
            raise SettingsError(f"MEV_SOURCES: source {name!r} needs a ws:// or wss:// url, got {url!r}")
        if not name.replace("-", "").replace("_", "").isalnum():
            raise SettingsError(f"MEV_SOURCES: source name {name!r} must be alphanumeric (with - or _)")
        sources.append(Source(name, url))
    if len({s.name for s in sources}) != len(sources):
        raise SettingsError(f"MEV_SOURCES: source names must be unique, got {text!r}")
    return tuple(sources)


def _int(env: dict[str, str], name: str, default: int, minimum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def _fraction(env: dict[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if not 0.0 < value <= 1.0:
        raise SettingsError(f"{name} must be a fraction in (0, 1], got {value}")
    return value


STORAGE_MODES = ("local", "s3")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _storage_settings(env: dict[str, str]) -> dict[str, str]:
    """``MEV_STORAGE`` and, for s3, where in which bucket. Credentials stay with the AWS SDKs.

    The region comes from the standard ``AWS_REGION`` / ``AWS_DEFAULT_REGION``: boto3 and
    pyarrow get it passed explicitly so that neither probes EC2 instance metadata for it.
    """
    storage = (env.get("MEV_STORAGE") or "local").strip().lower()
    if storage not in STORAGE_MODES:
        raise SettingsError(f"MEV_STORAGE must be one of {', '.join(STORAGE_MODES)}, got {storage!r}")
    bucket = (env.get("MEV_S3_BUCKET") or "").strip()
    prefix = (env.get("MEV_S3_PREFIX") or "").strip().strip("/")
    endpoint = (env.get("MEV_S3_ENDPOINT_URL") or "").strip().rstrip("/")
    region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1").strip()
    if storage == "s3" and not bucket:
        raise SettingsError("MEV_STORAGE=s3 needs MEV_S3_BUCKET (the bucket that holds the landing zone and the lake)")
    if bucket and not _BUCKET_RE.match(bucket):
        raise SettingsError(f"MEV_S3_BUCKET must be an S3 bucket name (3-63 of a-z 0-9 . -), got {bucket!r}")
    if prefix and any(part in ("", ".", "..") for part in prefix.split("/")):
        raise SettingsError(f"MEV_S3_PREFIX must be a key prefix like 'team/mev' (no empty, . or .. parts), got {prefix!r}")
    if endpoint and not endpoint.startswith(("http://", "https://")):
        raise SettingsError(f"MEV_S3_ENDPOINT_URL must start with http:// or https://, got {endpoint!r}")
    return {"storage": storage, "s3_bucket": bucket, "s3_prefix": prefix, "s3_endpoint_url": endpoint, "s3_region": region}


def default_collector_id() -> str:
    host = "".join(c if c.isalnum() else "-" for c in socket.gethostname()).strip("-") or "host"
    return f"c-{host}"[:48]


@dataclass(frozen=True)
class Settings:
    mev_home: Path
    dagster_home: Path
    window_seconds: int = 60
    chain_id: int = 1
    sources: tuple[Source, ...] = field(default_factory=tuple)
    collector_id: str = "c-local"
    grace_seconds: int = 30
    seal_delay_ms: int = 1500
    metrics_port: int = 9108
    fetch_rate: float = 50.0
    fetch_batch: int = 50
    dedup_ttl_seconds: int = 3600
    sensor_interval_seconds: int = 10
    sensor_lookback_hours: int = 24
    clickhouse_url: str = ""
    retention_days: int = 30
    tools_dir: Path = PROJECT_ROOT / "tools"
    anvil_bin: str = ""
    traffic_rate: float = 15.0
    storage: str = "local"
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    protocol_registry: Path = DEFAULT_PROTOCOL_REGISTRY
    # operational alerts (mev_assets/core/alerts.py, docs/operations.md "What to watch")
    alert_interval_seconds: int = 60
    alert_windows: int = 5
    alert_queue_saturation: float = 0.8
    alert_ingest_lag_seconds: int = 180
    alert_silence_seconds: int = 120
    alert_quarantine_rate: float = 0.05
    alert_coverage_drop: float = 0.5

    @property
    def landing_dir(self) -> Path:
        """The local landing directory: the whole zone in local mode, only ``_wal/`` in s3 mode."""
        return self.mev_home / "landing"

    @property
    def lake_dir(self) -> Path:
        """The Parquet lake in local mode (in s3 mode the lake is ``<prefix>/lake/`` in the bucket)."""
        return self.mev_home / "lake"

    @property
    def duckdb_path(self) -> Path:
        return self.mev_home / "warehouse.duckdb"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        mev_home = Path(env.get("MEV_HOME") or Path.cwd() / ".mev_home").expanduser().resolve()
        dagster_home = Path(env.get("DAGSTER_HOME") or mev_home / "dagster").expanduser().resolve()
        window_seconds = _int(env, "MEV_WINDOW_SECONDS", 60, minimum=1)
        if 86400 % window_seconds:
            raise SettingsError(f"MEV_WINDOW_SECONDS must divide a day (86400 s) evenly, got {window_seconds}")
        collector_id = env.get("MEV_COLLECTOR_ID") or default_collector_id()
        if not collector_id.replace("-", "").replace("_", "").isalnum():
            raise SettingsError(f"MEV_COLLECTOR_ID must be alphanumeric (with - or _), got {collector_id!r}")
        tools_dir = Path(env.get("MEV_TOOLS_DIR") or PROJECT_ROOT / "tools").expanduser().resolve()
        protocol_registry = Path(env.get("MEV_PROTOCOL_REGISTRY") or DEFAULT_PROTOCOL_REGISTRY).expanduser().resolve()
        if not protocol_registry.is_file():
            raise SettingsError(f"MEV_PROTOCOL_REGISTRY: no such file {protocol_registry}")
        storage = _storage_settings(env)
        return cls(
            mev_home=mev_home,
            dagster_home=dagster_home,
            window_seconds=window_seconds,
            chain_id=_int(env, "MEV_CHAIN_ID", 1, minimum=1),
            sources=parse_sources(env.get("MEV_SOURCES") or "local=ws://127.0.0.1:8545"),
            collector_id=collector_id,
            grace_seconds=_int(env, "MEV_GRACE_SECONDS", 30, minimum=0),
            seal_delay_ms=_int(env, "MEV_SEAL_DELAY_MS", 1500, minimum=0),
            metrics_port=_int(env, "MEV_METRICS_PORT", 9108, minimum=0),
            fetch_rate=_float(env, "MEV_FETCH_RATE", 50.0),
            fetch_batch=_int(env, "MEV_FETCH_BATCH", 50, minimum=1),
            dedup_ttl_seconds=_int(env, "MEV_DEDUP_TTL_SECONDS", 3600, minimum=1),
            sensor_interval_seconds=_int(env, "MEV_SENSOR_INTERVAL_SECONDS", 10, minimum=1),
            sensor_lookback_hours=_int(env, "MEV_SENSOR_LOOKBACK_HOURS", 24, minimum=1),
            clickhouse_url=(env.get("MEV_CLICKHOUSE_URL") or "").strip(),
            retention_days=_int(env, "MEV_RETENTION_DAYS", 30, minimum=1),
            tools_dir=tools_dir,
            anvil_bin=env.get("MEV_ANVIL_BIN") or str(tools_dir / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"),
            traffic_rate=_float(env, "MEV_TRAFFIC_RATE", 15.0),
            protocol_registry=protocol_registry,
            alert_interval_seconds=_int(env, "MEV_ALERT_INTERVAL_SECONDS", 60, minimum=1),
            alert_windows=_int(env, "MEV_ALERT_WINDOWS", 5, minimum=1),
            alert_queue_saturation=_fraction(env, "MEV_ALERT_QUEUE_SATURATION", 0.8),
            alert_ingest_lag_seconds=_int(env, "MEV_ALERT_INGEST_LAG_SECONDS", 180, minimum=1),
            alert_silence_seconds=_int(env, "MEV_ALERT_SILENCE_SECONDS", 120, minimum=1),
            alert_quarantine_rate=_fraction(env, "MEV_ALERT_QUARANTINE_RATE", 0.05),
            alert_coverage_drop=_fraction(env, "MEV_ALERT_COVERAGE_DROP", 0.5),
            **storage,
        )


def ensure_dagster_home(settings: Settings) -> Path:
    """Create ``DAGSTER_HOME`` with the project's instance config and export it for Dagster."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        # DuckDB allows one writer: every run that writes the warehouse shares the pool of 1.
        config.write_text(
            "concurrency:\n"
            "  pools:\n"
            "    default_limit: 1\n"
            "telemetry:\n"
            "  enabled: false\n"
        )
    os.environ["DAGSTER_HOME"] = str(home)
    return home
