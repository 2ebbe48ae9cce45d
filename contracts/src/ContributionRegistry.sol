// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title OpenChat contribution registry
/// @notice The operator anchors, per batch, the Merkle root of the contributions accepted in
///         that batch; anyone can then prove a contribution's origin (who contributed which
///         content, under which contribution id) against the anchored root.
/// @dev Leaves follow OpenZeppelin's StandardMerkleTree conventions:
///      `keccak256(bytes.concat(keccak256(abi.encode(contributor, contentHash, contributionId))))`
///      with sorted-pair hashing. Double hashing keeps a 64-byte inner node from passing as a leaf.
contract ContributionRegistry is Ownable {
    struct Batch {
        bytes32 root;
        uint64 leafCount;
        uint64 anchoredAt;
    }

    Batch[] private _batches;
    mapping(bytes32 root => uint256 batchIdPlusOne) private _batchOfRoot;

    /// @notice A batch's Merkle root was anchored.
    event RootAnchored(uint256 indexed batchId, bytes32 indexed root, uint256 leafCount);

    /// @notice The root is zero.
    error EmptyRoot();
    /// @notice The batch has no leaves.
    error EmptyBatch();
    /// @notice This root was already anchored as `batchId`.
    error DuplicateRoot(bytes32 root, uint256 batchId);
    /// @notice No batch has this id.
    error UnknownBatch(uint256 batchId);

    /// @param initialOwner The operator allowed to anchor roots.
    constructor(address initialOwner) Ownable(initialOwner) {}

    /// @notice Anchor the Merkle root of a batch of contributions.
    /// @param root The StandardMerkleTree root over (address, bytes32, uint256) leaves.
    /// @param leafCount How many contributions the tree holds.
    /// @return batchId The new batch's id (0, 1, 2, …).
    function anchor(bytes32 root, uint64 leafCount) external onlyOwner returns (uint256 batchId) {
        if (root == bytes32(0)) revert EmptyRoot();
        if (leafCount == 0) revert EmptyBatch();
        uint256 existing = _batchOfRoot[root];
        if (existing != 0) revert DuplicateRoot(root, existing - 1);
        batchId = _batches.length;
        _batches.push(Batch({root: root, leafCount: leafCount, anchoredAt: uint64(block.timestamp)}));
        _batchOfRoot[root] = batchId + 1;
        emit RootAnchored(batchId, root, leafCount);
    }

    /// @notice Whether a contribution is a leaf of an anchored batch.
    /// @param batchId The batch.
    /// @param proof The Merkle proof (sibling hashes, leaf to root).
    /// @param contributor The contributor's payout address.
    /// @param contentHash The content hash (sha256 of the normalised text).
    /// @param contributionId The contribution's id in the ledger.
    /// @return True if the leaf is in the batch's tree.
    function verify(
        uint256 batchId,
        bytes32[] calldata proof,
        address contributor,
        bytes32 contentHash,
        uint256 contributionId
    ) external view returns (bool) {
        if (batchId >= _batches.length) revert UnknownBatch(batchId);
        return
            MerkleProof.verifyCalldata(
                proof,
                _batches[batchId].root,
                leafHash(contributor, contentHash, contributionId)
            );
    }

    /// @notice A batch's anchored root, leaf count and anchoring time.
    /// @param batchId The batch.
    /// @return The batch.
    function getBatch(uint256 batchId) external view returns (Batch memory) {
        if (batchId >= _batches.length) revert UnknownBatch(batchId);
        return _batches[batchId];
    }

    /// @notice The batch a root was anchored as.
    /// @param root The root.
    /// @return found Whether the root was anchored.
    /// @return batchId Its batch id (0 if not found).
    function batchOfRoot(bytes32 root) external view returns (bool found, uint256 batchId) {
        uint256 plusOne = _batchOfRoot[root];
        return plusOne == 0 ? (false, 0) : (true, plusOne - 1);
    }

    /// @notice How many batches were anchored.
    /// @return The count.
    function batchCount() external view returns (uint256) {
        return _batches.length;
    }

    /// @notice The leaf hash of a contribution (double keccak of its ABI encoding).
    /// @param contributor The contributor's payout address.
    /// @param contentHash The content hash.
    /// @param contributionId The contribution id.
    /// @return The leaf.
    function leafHash(
        address contributor,
        bytes32 contentHash,
        uint256 contributionId
    ) public pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(contributor, contentHash, contributionId))));
    }
}
