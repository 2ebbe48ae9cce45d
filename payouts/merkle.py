"""Merkle trees of contributions, laid out exactly like OpenZeppelin's ``StandardMerkleTree``.

Leaf of a contribution: ``keccak256(bytes.concat(keccak256(abi.encode(contributor, contentHash,
contributionId))))`` with types ``(address, bytes32, uint256)``; inner nodes hash the sorted
pair; leaves are sorted by hash and stored at the end of a flat array (index ``2n-2`` down to
``n-1``), so roots and proofs match ``@openzeppelin/merkle-tree`` and
``ContributionRegistry.verify`` (``MerkleProof.verify``). Pure functions, no chain access.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

LEAF_TYPES = ("address", "bytes32", "uint256")


@dataclass(frozen=True)
class ContributionLeaf:
    contributor: str
    content_hash: bytes
    contribution_id: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "contributor", to_checksum_address(self.contributor))
        content = self.content_hash
        if isinstance(content, str):
            content = bytes.fromhex(content.removeprefix("0x"))
        if len(content) != 32:
            raise ValueError("content_hash must be 32 bytes (sha256 of the normalised text)")
        object.__setattr__(self, "content_hash", bytes(content))
        if not isinstance(self.contribution_id, int) or not 0 <= self.contribution_id < 2**256:
            raise ValueError("contribution_id must be a uint256")

    def values(self) -> tuple[str, bytes, int]:
        return (self.contributor, self.content_hash, self.contribution_id)


def leaf_hash(leaf: ContributionLeaf) -> bytes:
    return keccak(keccak(abi_encode(list(LEAF_TYPES), list(leaf.values()))))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a <= b else keccak(b + a)


def verify_proof(root: bytes, leaf: ContributionLeaf, proof: Sequence[bytes]) -> bool:
    """``MerkleProof.verify`` in Python."""
    node = leaf_hash(leaf)
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root


class ContributionTree:
    """A StandardMerkleTree over contribution leaves (duplicates refused)."""

    def __init__(self, leaves: Iterable[ContributionLeaf]):
        items = list(leaves)
        if not items:
            raise ValueError("a Merkle tree needs at least one leaf")
        hashed = [(leaf_hash(leaf), i) for i, leaf in enumerate(items)]
        if len({h for h, _ in hashed}) != len(hashed):
            raise ValueError("duplicate leaf")
        hashed.sort(key=lambda pair: pair[0])
        n = len(hashed)
        tree: list[bytes] = [b""] * (2 * n - 1)
        self._tree_index: dict[bytes, int] = {}
        for sorted_pos, (h, _) in enumerate(hashed):
            tree[len(tree) - 1 - sorted_pos] = h
            self._tree_index[h] = len(tree) - 1 - sorted_pos
        for i in range(len(tree) - 1 - n, -1, -1):
            tree[i] = hash_pair(tree[2 * i + 1], tree[2 * i + 2])
        self._tree = tree
        self.leaves: tuple[ContributionLeaf, ...] = tuple(items)

    @property
    def root(self) -> bytes:
        return self._tree[0]

    def __len__(self) -> int:
        return len(self.leaves)

    def proof(self, leaf: ContributionLeaf) -> list[bytes]:
        """Sibling hashes from the leaf up to (not including) the root."""
        try:
            i = self._tree_index[leaf_hash(leaf)]
        except KeyError:
            raise KeyError(f"leaf not in tree: {leaf}") from None
        proof = []
        while i > 0:
            proof.append(self._tree[i + 1] if i % 2 == 1 else self._tree[i - 1])
            i = (i - 1) // 2
        return proof
