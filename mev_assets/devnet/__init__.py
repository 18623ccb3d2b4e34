"""Local chain for the demo and the tests: anvil, contracts at mainnet addresses, traffic, searcher."""
