"""Jobs of mev_assets."""

from dagster import AssetSelection, define_asset_job

from mev_assets.assets import PER_WINDOW_ASSETS
from mev_assets.assets.dbt import DBT_ASSETS
from mev_assets.partitions import mempool_windows

# One window end to end: every per-window asset of the lane.
mempool_window_job = define_asset_job(
    "mempool_window_job",
    selection=AssetSelection.assets(*PER_WINDOW_ASSETS),
    partitions_def=mempool_windows,
    description="Materialise one mempool window end to end.",
)

# The dbt daily rollups (incremental by date) over the per-window tables.
daily_rollups_job = define_asset_job(
    "daily_rollups_job",
    selection=AssetSelection.assets(*DBT_ASSETS),
    description="dbt build of the daily rollups and their tests (asset checks).",
)
