// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title OpenChat top-ups
/// @notice Askers fund their OpenChat account on chain: `deposit` moves stablecoin from the
/// caller to the treasury and logs the account's deposit reference. The ledger credits the
/// account from the `Deposited` log once it is final; the contract itself keeps no balances.
contract TopUps is ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice The stablecoin accepted.
    IERC20 public immutable token;
    /// @notice Where deposits go (the hub, which funds the payment channels).
    address public immutable treasury;

    /// @notice `from` deposited `amount` base units for the account whose reference is `account`.
    event Deposited(bytes32 indexed account, address indexed from, uint256 amount);

    /// @notice A zero token or treasury address at deployment.
    error ZeroAddress();
    /// @notice A deposit of nothing.
    error ZeroAmount();
    /// @notice A deposit without an account reference (it could never be credited).
    error ZeroAccount();

    /// @param token_ The stablecoin.
    /// @param treasury_ The address receiving every deposit.
    constructor(IERC20 token_, address treasury_) {
        if (address(token_) == address(0) || treasury_ == address(0)) revert ZeroAddress();
        token = token_;
        treasury = treasury_;
    }

    /// @notice Deposit `amount` base units of the token for the account whose deposit reference
    /// is `account`. The caller must have approved this contract for `amount`.
    /// @param account The account's deposit reference (GET /v1/account shows it).
    /// @param amount Base units, > 0.
    function deposit(bytes32 account, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (account == bytes32(0)) revert ZeroAccount();
        // No state to write: the event is the effect, the transfer the interaction; a failed
        // transfer reverts the event with it.
        emit Deposited(account, msg.sender, amount);
        token.safeTransferFrom(msg.sender, treasury, amount);
    }
}
