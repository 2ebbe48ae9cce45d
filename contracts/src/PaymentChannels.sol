// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

/// @title OpenChat payment channels
/// @notice Unidirectional ERC-20 payment channels from a payer (the OpenChat hub) to receivers
///         (contributors). The payer signs EIP-712 vouchers over a cumulative amount; the
///         receiver cashes the latest voucher with {claim} at any time, or the payer pushes
///         cumulative amounts to many channels in one transaction with {pushPayments}.
/// @dev There is one channel per (payer, receiver) pair; its id is
///      `keccak256(abi.encode(payer, receiver))`. `deposited` and `paid` are cumulative over the
///      channel's whole life (also across a settle and a re-open), so a voucher's cumulative
///      amount can only ever pay the difference to what was already paid: an old voucher is
///      worth nothing new, and closing a channel never erases what the payer signed for.
///      Invariant: `paid <= deposited` for every channel, and the contract's token balance is
///      the sum over channels of `deposited - paid`.
contract PaymentChannels is EIP712, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Channel state. Slot 0 holds the two amounts, so a payment touches one slot.
    struct Channel {
        uint128 deposited; // slot 0: total ever deposited by the payer
        uint128 paid; // slot 0: total ever paid to the receiver (claims + pushes)
        address payer; // slot 1
        uint64 closesAt; // slot 1: 0 while open; end of the challenge period once closing
        bool settled; // slot 1: true once settled (until re-opened)
        address receiver; // slot 2
    }

    /// @notice One entry of a batched push: pay `receiver`'s channel up to `cumulativeAmount`.
    struct Payment {
        address receiver;
        uint128 cumulativeAmount;
    }

    /// @notice EIP-712 type hash of the voucher the payer signs.
    bytes32 public constant VOUCHER_TYPEHASH =
        keccak256("Voucher(bytes32 channelId,uint256 cumulativeAmount)");

    /// @notice The ERC-20 token every channel of this contract is denominated in.
    IERC20 public immutable token;

    /// @notice Seconds between a payer's {close} and the earliest {settle}.
    uint64 public immutable challengePeriod;

    mapping(bytes32 channelId => Channel) private _channels;

    /// @notice A channel was opened (or re-opened after a settle) with `amount` deposited.
    event ChannelOpened(
        bytes32 indexed channelId,
        address indexed payer,
        address indexed receiver,
        uint256 amount,
        uint256 deposited
    );
    /// @notice The payer added `amount` to the channel's deposit.
    event ChannelToppedUp(bytes32 indexed channelId, uint256 amount, uint256 deposited);
    /// @notice The receiver cashed a voucher and was paid `amount`.
    event ChannelClaimed(bytes32 indexed channelId, uint256 amount, uint256 paid);
    /// @notice The payer pushed `amount` to the receiver in a batched payment.
    event ChannelPushed(bytes32 indexed channelId, uint256 amount, uint256 paid);
    /// @notice The payer started closing the channel; the receiver may claim until `closesAt`.
    event ChannelClosing(bytes32 indexed channelId, uint256 closesAt);
    /// @notice The channel was settled and `refund` went back to the payer.
    event ChannelSettled(bytes32 indexed channelId, uint256 refund);

    /// @notice A constructor argument was the zero address.
    error ZeroAddress();
    /// @notice The challenge period must be at least one second.
    error ZeroChallengePeriod();
    /// @notice A deposit or top-up of zero.
    error ZeroAmount();
    /// @notice The receiver is the zero address or the payer itself.
    error InvalidReceiver(address receiver);
    /// @notice {open} on a channel that exists and is not settled.
    error ChannelExists(bytes32 channelId);
    /// @notice No channel has this id.
    error UnknownChannel(bytes32 channelId);
    /// @notice Only the channel's payer may do this.
    error NotPayer(bytes32 channelId, address caller);
    /// @notice Only the channel's receiver may do this.
    error NotReceiver(bytes32 channelId, address caller);
    /// @notice The channel is closing or settled, and this needs it open.
    error ChannelNotOpen(bytes32 channelId);
    /// @notice The channel is not closing (it is open or already settled).
    error ChannelNotClosing(bytes32 channelId);
    /// @notice The channel is settled; nothing can be claimed from it.
    error ChannelIsSettled(bytes32 channelId);
    /// @notice The challenge period has not ended yet.
    error ChallengePeriodActive(bytes32 channelId, uint256 closesAt);
    /// @notice The voucher signature is malformed, malleable (high s), or not the payer's.
    error InvalidSignature(bytes32 channelId);
    /// @notice The voucher pays nothing beyond what the channel already paid.
    error NothingToClaim(bytes32 channelId, uint256 cumulativeAmount, uint256 paid);
    /// @notice A pushed cumulative amount exceeds what the payer deposited.
    error InsufficientDeposit(bytes32 channelId, uint256 cumulativeAmount, uint256 deposited);
    /// @notice {pushPayments} with no payments.
    error EmptyBatch();

    /// @param token_ The ERC-20 token of every channel.
    /// @param challengePeriod_ Seconds a receiver has to claim after the payer closes.
    constructor(IERC20 token_, uint64 challengePeriod_) EIP712("OpenChat PaymentChannels", "1") {
        if (address(token_) == address(0)) revert ZeroAddress();
        if (challengePeriod_ == 0) revert ZeroChallengePeriod();
        token = token_;
        challengePeriod = challengePeriod_;
    }

    // ---------------------------------------------------------------- payer

    /// @notice Open a channel from the caller to `receiver` with `amount` tokens deposited,
    ///         or re-open a settled one (its cumulative `paid` carries on).
    /// @dev Pulls `amount` from the caller, who must have approved this contract.
    /// @param receiver The contributor paid through the channel.
    /// @param amount The deposit, in token base units.
    /// @return channelId `keccak256(abi.encode(msg.sender, receiver))`.
    function open(address receiver, uint128 amount) external nonReentrant returns (bytes32 channelId) {
        if (receiver == address(0) || receiver == msg.sender) revert InvalidReceiver(receiver);
        if (amount == 0) revert ZeroAmount();
        channelId = channelIdOf(msg.sender, receiver);
        Channel storage ch = _channels[channelId];
        if (ch.payer != address(0)) {
            if (!ch.settled) revert ChannelExists(channelId);
            ch.settled = false;
            ch.closesAt = 0;
        } else {
            ch.payer = msg.sender;
            ch.receiver = receiver;
        }
        uint128 deposited = ch.deposited + amount;
        ch.deposited = deposited;
        emit ChannelOpened(channelId, msg.sender, receiver, amount, deposited);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Add `amount` to an open channel's deposit.
    /// @param channelId The channel.
    /// @param amount Tokens pulled from the payer, in base units.
    function topUp(bytes32 channelId, uint128 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        Channel storage ch = _openChannelOfPayer(channelId);
        uint128 deposited = ch.deposited + amount;
        ch.deposited = deposited;
        emit ChannelToppedUp(channelId, amount, deposited);
        token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @notice Pay many channels of the caller in one transaction, each up to a cumulative
    ///         amount. An entry at or below what its channel already paid is skipped, so a
    ///         retried batch never pays twice. After success, every listed channel has paid
    ///         at least its entry's cumulative amount.
    /// @dev Reverts the whole batch if any entry exceeds its channel's deposit. Works while a
    ///      channel is open or closing; after a settle the deposit equals `paid`, so nothing
    ///      more can be pushed.
    /// @param payments (receiver, cumulativeAmount) pairs; the channel is (msg.sender, receiver).
    function pushPayments(Payment[] calldata payments) external nonReentrant {
        uint256 n = payments.length;
        if (n == 0) revert EmptyBatch();
        for (uint256 i; i < n; ++i) {
            address receiver = payments[i].receiver;
            uint128 cumulative = payments[i].cumulativeAmount;
            bytes32 id = channelIdOf(msg.sender, receiver);
            Channel storage ch = _channels[id];
            uint128 paid = ch.paid;
            if (cumulative <= paid) continue;
            uint128 deposited = ch.deposited;
            if (cumulative > deposited) revert InsufficientDeposit(id, cumulative, deposited);
            ch.paid = cumulative;
            uint128 amount = cumulative - paid;
            emit ChannelPushed(id, amount, cumulative);
            token.safeTransfer(receiver, amount);
        }
    }

    /// @notice Start closing an open channel. The receiver can still claim until
    ///         `block.timestamp + challengePeriod`; then anyone may {settle}.
    /// @param channelId The channel.
    function close(bytes32 channelId) external {
        Channel storage ch = _openChannelOfPayer(channelId);
        uint64 closesAt = uint64(block.timestamp) + challengePeriod;
        ch.closesAt = closesAt;
        emit ChannelClosing(channelId, closesAt);
    }

    /// @notice After the challenge period, refund the unpaid deposit to the payer and mark the
    ///         channel settled. Callable by anyone; the refund only ever goes to the payer.
    /// @param channelId The channel.
    function settle(bytes32 channelId) external nonReentrant {
        Channel storage ch = _channels[channelId];
        address payer = ch.payer;
        if (payer == address(0)) revert UnknownChannel(channelId);
        uint64 closesAt = ch.closesAt;
        if (closesAt == 0 || ch.settled) revert ChannelNotClosing(channelId);
        if (block.timestamp < closesAt) revert ChallengePeriodActive(channelId, closesAt);
        uint128 paid = ch.paid;
        uint128 refund = ch.deposited - paid;
        ch.deposited = paid;
        ch.settled = true;
        emit ChannelSettled(channelId, refund);
        if (refund != 0) token.safeTransfer(payer, refund);
    }

    // ------------------------------------------------------------- receiver

    /// @notice Cash a voucher: pay the caller (the receiver) the voucher's cumulative amount
    ///         minus what the channel already paid, capped at the deposit. The channel stays
    ///         open. Allowed while the channel is open or closing, not once settled.
    /// @param channelId The channel the voucher is for.
    /// @param cumulativeAmount The voucher's cumulative amount, in base units.
    /// @param signature The payer's 65-byte EIP-712 signature over the voucher.
    function claim(
        bytes32 channelId,
        uint256 cumulativeAmount,
        bytes calldata signature
    ) external nonReentrant {
        Channel storage ch = _channels[channelId];
        address payer = ch.payer;
        if (payer == address(0)) revert UnknownChannel(channelId);
        if (msg.sender != ch.receiver) revert NotReceiver(channelId, msg.sender);
        if (ch.settled) revert ChannelIsSettled(channelId);
        (address signer, ECDSA.RecoverError err, ) = ECDSA.tryRecoverCalldata(
            voucherDigest(channelId, cumulativeAmount),
            signature
        );
        if (err != ECDSA.RecoverError.NoError || signer != payer) revert InvalidSignature(channelId);
        uint128 deposited = ch.deposited;
        uint128 paid = ch.paid;
        uint128 payTo = cumulativeAmount < deposited ? uint128(cumulativeAmount) : deposited;
        if (payTo <= paid) revert NothingToClaim(channelId, cumulativeAmount, paid);
        ch.paid = payTo;
        uint128 amount = payTo - paid;
        emit ChannelClaimed(channelId, amount, payTo);
        token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @notice The id of the channel from `payer` to `receiver`.
    /// @param payer The paying account (the hub).
    /// @param receiver The receiving account (a contributor).
    /// @return The channel id.
    function channelIdOf(address payer, address receiver) public pure returns (bytes32) {
        return keccak256(abi.encode(payer, receiver));
    }

    /// @notice The full state of a channel (all zero if it does not exist).
    /// @param channelId The channel.
    /// @return The channel struct.
    function getChannel(bytes32 channelId) external view returns (Channel memory) {
        return _channels[channelId];
    }

    /// @notice The EIP-712 digest the payer signs for a voucher.
    /// @param channelId The channel.
    /// @param cumulativeAmount The cumulative amount.
    /// @return The digest bound to this chain id, this contract and the channel.
    function voucherDigest(bytes32 channelId, uint256 cumulativeAmount) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, cumulativeAmount)));
    }

    /// @notice The EIP-712 domain separator of this contract on this chain.
    /// @return The domain separator.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ------------------------------------------------------------- internal

    function _openChannelOfPayer(bytes32 channelId) private view returns (Channel storage ch) {
        ch = _channels[channelId];
        address payer = ch.payer;
        if (payer == address(0)) revert UnknownChannel(channelId);
        if (payer != msg.sender) revert NotPayer(channelId, msg.sender);
        if (ch.closesAt != 0 || ch.settled) revert ChannelNotOpen(channelId);
    }
}
