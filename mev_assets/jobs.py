"""Jobs of mev_assets."""

from dagster import AssetSelection, define_asset_job

from mev_assets.assets.transactions import WINDOW_ASSETS
from mev_assets.partitions import mempool_windows

# One window end to end: every per-window asset of the lane.
mempool_window_job = define_asset_job(
    "mempool_window_job",
    selection=AssetSelection.assets(*WINDOW_ASSETS),
    partitions_def=mempool_windows,
    description="Materialise one mempool window end to end.",
)
