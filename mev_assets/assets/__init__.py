"""Thin Dagster assets: load inputs, call core/, return frames with metadata."""

from mev_assets.assets.features import tx_features
from mev_assets.assets.transactions import mempool_source_stats, mempool_transactions

# Every asset partitioned by mempool_windows: one run materialises a window end to end.
PER_WINDOW_ASSETS = [mempool_transactions, mempool_source_stats, tx_features]
