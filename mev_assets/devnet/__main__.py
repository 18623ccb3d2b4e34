"""`python -m mev_assets.devnet up|deploy|traffic|searcher`."""

from mev_assets.devnet.cli import devnet

devnet()
