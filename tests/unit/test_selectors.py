from mev_assets.core.selectors import describe_selector, known_selectors, selector_of


def test_selectors_are_keccak_of_the_signature():
    # ERC-20 transfer and approve selectors as published in EIP-20 tooling
    assert selector_of("transfer(address,uint256)") == "0xa9059cbb"
    assert selector_of("approve(address,uint256)") == "0x095ea7b3"


def test_known_selectors_name_router_and_token_methods():
    table = known_selectors()
    assert table[selector_of("swapExactETHForTokens(uint256,address[],address,uint256)")] == (
        "Uniswap V2 Router02",
        "swapExactETHForTokens",
    )
    assert describe_selector("0xA9059CBB") == "ERC-20: transfer"
    assert describe_selector("").startswith("(no calldata")
    assert describe_selector("0xdeadbeef") == "unknown 0xdeadbeef"
