"""Pure logic of mev_assets: no Dagster import anywhere in this package."""
