// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title DevToken: a small standard ERC-20 for the local chain (devnet only).
/// @notice Placed with anvil_setCode at the mainnet address of a real token (USDC, WBTC, ...)
///         and then initialised once, so name/symbol/decimals live in storage, not in
///         constructor-written immutables. The minter (set at initialisation) can mint.
/// Storage layout (relied on by mev_assets.devnet for funding with anvil_setStorageAt):
///   slot 0 name, slot 1 symbol, slot 2 decimals, slot 3 totalSupply,
///   slot 4 balanceOf[address], slot 5 allowance[owner][spender], slot 6 minter + initialized.
contract DevToken {
    string public name;
    string public symbol;
    uint8 public decimals;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;
    address public minter;
    bool public initialized;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function initialize(string calldata name_, string calldata symbol_, uint8 decimals_, address minter_) external {
        require(!initialized, "DevToken: already initialized");
        initialized = true;
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        minter = minter_;
    }

    function mint(address to, uint256 amount) external {
        require(msg.sender == minter, "DevToken: not minter");
        require(to != address(0), "DevToken: mint to zero");
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        _transfer(msg.sender, to, amount);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= amount, "DevToken: insufficient allowance");
            allowance[from][msg.sender] = allowed - amount;
        }
        _transfer(from, to, amount);
        return true;
    }

    function _transfer(address from, address to, uint256 amount) internal {
        require(to != address(0), "DevToken: transfer to zero");
        uint256 balance = balanceOf[from];
        require(balance >= amount, "DevToken: insufficient balance");
        unchecked {
            balanceOf[from] = balance - amount;
        }
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
