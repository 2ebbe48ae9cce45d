// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title OpenChat dev stablecoin
/// @notice A 6-decimal ERC-20 for dev chains, mintable by its owner. Not for production.
contract MockStablecoin is ERC20, Ownable {
    /// @param initialOwner The account allowed to mint.
    constructor(address initialOwner) ERC20("OpenChat Dev USD", "ocUSD") Ownable(initialOwner) {}

    /// @notice Six decimals, like USDC.
    /// @return 6.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mint `amount` base units to `to`.
    /// @param to The recipient.
    /// @param amount Base units.
    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
