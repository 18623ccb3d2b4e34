"""The collector: sources, dedup, write-ahead log, segment sealing, metrics (no Dagster import)."""
