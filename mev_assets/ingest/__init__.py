"""The collector: sources, dedup, write-ahead log, segment sealing, metrics (no Dagster import).

Modules, one concept each:

- ``landing``    landing-zone layout, atomic segment writer, readers
- ``wal``        write-ahead log (framing, group commit, torn-tail replay) - the durability contract
- ``records``    the T/S/B record tuples and their WAL encoding
- ``segments``   sealing a (window, seq) batch into segments (commit protocol, shared with imports)
- ``dedup``      seen-hash set with TTL and per-source bits, rebuilt from sealed segments
- ``quarantine`` append-only per-window quarantine files with reasons
- ``sources``    one asyncio lane per node: subscriptions, hash-mode fetch, reconnect with backoff
- ``metrics``    Prometheus metrics
- ``collector``  the orchestration: ``Collector``, ``run_collector``, ``CollectorThread``,
                 ``python -m mev_assets.ingest.collector``
- ``raw_import`` ``import_raw_lines``: raw-transaction JSON lines through the same segment path
- ``fakenode``   a scripted JSON-RPC WebSocket node on loopback (tests, benchmarks)

Import the submodules directly; this package imports nothing, so Dagster code that only needs
``landing`` does not load websockets or the transaction parser.
"""
