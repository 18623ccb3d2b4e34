"""Jobs of mev_assets."""

from dagster import AssetSelection, define_asset_job

from mev_assets.alerts import ALERT_CHECK_KEYS
from mev_assets.assets import PER_WINDOW_ASSETS
from mev_assets.assets.dbt import DBT_ASSETS
from mev_assets.assets.transactions import mempool_transactions
from mev_assets.partitions import mempool_windows

# One window end to end: every per-window asset of the lane and its data-quality checks (the
# pipeline alerts, also checks on mempool_transactions, are evaluated by their own sensor instead).
mempool_window_job = define_asset_job(
    "mempool_window_job",
    selection=AssetSelection.assets(*PER_WINDOW_ASSETS) - AssetSelection.checks(*ALERT_CHECK_KEYS),
    partitions_def=mempool_windows,
    description="Materialise one mempool window end to end.",
)

# Everything computed from the mempool_transactions table, re-run after a registry or scoring change
# (the previous-day backfill schedule, `mev-assets materialize --select`); the table itself and its
# landing zone stay as they are.
DERIVED_WINDOW_ASSETS = AssetSelection.assets(*PER_WINDOW_ASSETS) - AssetSelection.assets(mempool_transactions)
derived_windows_job = define_asset_job(
    "derived_windows_job",
    selection=DERIVED_WINDOW_ASSETS,
    partitions_def=mempool_windows,
    description="Re-materialise the assets derived from mempool_transactions for a range of windows.",
)

# The dbt daily rollups (incremental by date) over the per-window tables.
daily_rollups_job = define_asset_job(
    "daily_rollups_job",
    selection=AssetSelection.assets(*DBT_ASSETS),
    description="dbt build of the daily rollups and their tests (asset checks).",
)
