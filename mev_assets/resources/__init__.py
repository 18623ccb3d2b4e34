"""Dagster resources: thin ConfigurableResource wrappers over ingest/ and core/."""
