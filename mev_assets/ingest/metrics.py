"""Prometheus metrics of the collector (prometheus_client).

Each :class:`CollectorMetrics` has its own registry, so several collectors (e.g. in tests) can
live in one process. :meth:`CollectorMetrics.serve` exposes it over HTTP (``/metrics``) on
``metrics_port`` (0 disables), bound to 127.0.0.1 unless told otherwise.

Names (all prefixed ``mev_collector_``):

=====================================  =========  ==============================================
``received_total{source}``              counter    tx messages (objects or hashes) from a source
``accepted_total{source}``              counter    txs accepted (validated, new, durable in WAL)
``duplicates_total{source}``            counter    tx messages for an already accepted hash
``sightings_total{source}``             counter    first sighting of an accepted hash per source
``quarantined_total{source,reason}``    counter    records quarantined, by reason code
``reconnects_total{source}``            counter    reconnect attempts after a lost connection
``connected{source}``                   gauge      1 while the source's subscription is live
``subscription_mode{source}``           gauge      1 = full objects, 0 = hashes + fetch
``fetch_requests_total{source}``        counter    batched eth_getTransactionByHash requests
``fetch_missing_total{source}``         counter    fetched hashes the node no longer knew
``fetch_dropped_total{source}``         counter    hashes dropped because the fetch queue was full
``queue_depth{source}``                 gauge      hashes waiting for the rate-limited fetch
``blocks_total{source}``                counter    heads recorded (first source per block)
``wal_bytes``                           gauge      bytes in unsealed write-ahead logs
``wal_sync_errors_total``               counter    failed fsyncs of the WAL
``seal_latency_seconds``                histogram  window end -> window marker written
``segments_sealed_total``               counter    (window, seq) batches sealed
``windows_sealed_total``                counter    window markers written (incl. empty windows)
``ingest_lag_seconds``                  histogram  message receipt -> durable in the WAL (per batch, oldest record)
``open_windows``                        gauge      windows with buffered, unsealed records
``dedup_entries``                       gauge      hashes in the dedup set
``last_message_timestamp_seconds{source}``  gauge  wall clock of the last message from a source
=====================================  =========  ==============================================
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

PREFIX = "mev_collector"


class SourceMetrics:
    """The per-source children, resolved once (label lookups are not free on the hot path)."""

    __slots__ = (
        "received", "accepted", "duplicates", "sightings", "reconnects", "connected", "mode",
        "fetch_requests", "fetch_missing", "fetch_dropped", "queue_depth", "blocks", "last_message",
        "_quarantined", "_source",
    )

    def __init__(self, m: "CollectorMetrics", source: str):
        self._source = source
        self._quarantined = m.quarantined
        self.received = m.received.labels(source)
        self.accepted = m.accepted.labels(source)
        self.duplicates = m.duplicates.labels(source)
        self.sightings = m.sightings.labels(source)
        self.reconnects = m.reconnects.labels(source)
        self.connected = m.connected.labels(source)
        self.mode = m.mode.labels(source)
        self.fetch_requests = m.fetch_requests.labels(source)
        self.fetch_missing = m.fetch_missing.labels(source)
        self.fetch_dropped = m.fetch_dropped.labels(source)
        self.queue_depth = m.queue_depth.labels(source)
        self.blocks = m.blocks.labels(source)
        self.last_message = m.last_message.labels(source)

    def quarantined(self, reason_code: str) -> None:
        self._quarantined.labels(self._source, reason_code).inc()


class CollectorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        p = PREFIX
        self.received = Counter(f"{p}_received", "Transaction messages (objects or hashes) received", ["source"], registry=r)
        self.accepted = Counter(f"{p}_accepted", "Transactions accepted (validated, new, in the WAL)", ["source"], registry=r)
        self.duplicates = Counter(f"{p}_duplicates", "Transaction messages for an already accepted hash", ["source"], registry=r)
        self.sightings = Counter(f"{p}_sightings", "First sighting of an accepted hash per source", ["source"], registry=r)
        self.quarantined = Counter(f"{p}_quarantined", "Records quarantined, by reason code", ["source", "reason"], registry=r)
        self.reconnects = Counter(f"{p}_reconnects", "Reconnect attempts after a lost connection", ["source"], registry=r)
        self.connected = Gauge(f"{p}_connected", "1 while the source subscription is live", ["source"], registry=r)
        self.mode = Gauge(f"{p}_subscription_mode", "1 = full transaction objects, 0 = hashes + fetch", ["source"], registry=r)
        self.fetch_requests = Counter(f"{p}_fetch_requests", "Batched eth_getTransactionByHash requests", ["source"], registry=r)
        self.fetch_missing = Counter(f"{p}_fetch_missing", "Fetched hashes the node no longer knew", ["source"], registry=r)
        self.fetch_dropped = Counter(f"{p}_fetch_dropped", "Hashes dropped because the fetch queue was full", ["source"], registry=r)
        self.queue_depth = Gauge(f"{p}_queue_depth", "Hashes waiting for the rate-limited fetch", ["source"], registry=r)
        self.blocks = Counter(f"{p}_blocks", "Heads recorded (first source per block)", ["source"], registry=r)
        self.last_message = Gauge(f"{p}_last_message_timestamp_seconds", "Wall clock of the last message from a source", ["source"], registry=r)
        self.wal_bytes = Gauge(f"{p}_wal_bytes", "Bytes in unsealed write-ahead logs", registry=r)
        self.wal_sync_errors = Counter(f"{p}_wal_sync_errors", "Failed fsyncs of the WAL", registry=r)
        self.seal_latency = Histogram(
            f"{p}_seal_latency_seconds", "Window end to window marker written", registry=r,
            buckets=(0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 120),
        )
        self.segments_sealed = Counter(f"{p}_segments_sealed", "(window, seq) batches sealed into segments", registry=r)
        self.windows_sealed = Counter(f"{p}_windows_sealed", "Window markers written (including empty windows)", registry=r)
        self.ingest_lag = Histogram(
            f"{p}_ingest_lag_seconds", "Message receipt to durable in the WAL (oldest record of each batch)", registry=r,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.open_windows = Gauge(f"{p}_open_windows", "Windows with buffered, unsealed records", registry=r)
        self.dedup_entries = Gauge(f"{p}_dedup_entries", "Hashes in the dedup set", registry=r)
        self._sources: dict[str, SourceMetrics] = {}
        self._server = None

    def source(self, name: str) -> SourceMetrics:
        sm = self._sources.get(name)
        if sm is None:
            sm = self._sources[name] = SourceMetrics(self, name)
        return sm

    def serve(self, port: int, addr: str = "127.0.0.1"):
        """Expose ``/metrics`` on ``addr:port`` (a daemon thread); returns the bound port."""
        if port <= 0:
            return None
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self._server = server
        return server.server_address[1]

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def value(self, name: str, labels: dict | None = None) -> float:
        """A sample's current value (for tests and the heartbeat); 0 when absent."""
        v = self.registry.get_sample_value(name, labels or {})
        return v or 0.0
