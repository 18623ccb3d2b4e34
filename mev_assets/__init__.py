"""mev_assets: an Ethereum mempool and MEV research pipeline built as a Dagster project."""

__version__ = "0.1.0"
