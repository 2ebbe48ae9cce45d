"""ContributionRegistry and the Python StandardMerkleTree: same leaves, same roots, same proofs."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payouts.merkle import ContributionLeaf, ContributionTree, leaf_hash, verify_proof
from tests.contracts.conftest import Evm, expect_revert

CONTRIBUTORS = [Account.from_key(bytes([i + 1]) * 32).address for i in range(5)]


def leaves(n: int, start: int = 0) -> list[ContributionLeaf]:
    return [
        ContributionLeaf(
            CONTRIBUTORS[i % len(CONTRIBUTORS)],
            hashlib.sha256(f"chunk {i}".encode()).digest(),
            1_000 + i,
        )
        for i in range(start, start + n)
    ]


def test_leaf_hash_matches_contract(evm: Evm) -> None:
    for leaf in leaves(3) + [ContributionLeaf(CONTRIBUTORS[0], b"\xff" * 32, 2**256 - 1)]:
        assert evm.client.registry.functions.leafHash(*leaf.values()).call() == leaf_hash(leaf)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 33])
def test_every_proof_verifies_on_chain(evm: Evm, n: int) -> None:
    tree = ContributionTree(leaves(n))
    batch_id, _ = evm.client.anchor_root(tree.root, len(tree))
    for leaf in tree.leaves:
        proof = tree.proof(leaf)
        assert verify_proof(tree.root, leaf, proof)
        assert evm.client.verify_contribution(batch_id, proof, leaf)


def test_wrong_leaf_or_proof_or_batch_does_not_verify(evm: Evm) -> None:
    t1, t2 = ContributionTree(leaves(6)), ContributionTree(leaves(4, start=50))
    b1, _ = evm.client.anchor_root(t1.root, len(t1))
    b2, _ = evm.client.anchor_root(t2.root, len(t2))
    leaf = t1.leaves[2]
    proof = t1.proof(leaf)
    v = evm.client.verify_contribution
    assert v(b1, proof, leaf)
    assert not v(b2, proof, leaf)  # right proof, other batch
    # someone else claiming the same content, or another id, or a corrupted proof
    assert not v(
        b1, proof, ContributionLeaf(CONTRIBUTORS[4], leaf.content_hash, leaf.contribution_id)
    )
    assert not v(
        b1, proof, ContributionLeaf(leaf.contributor, leaf.content_hash, leaf.contribution_id + 1)
    )
    assert not v(b1, [proof[0][:-1] + b"\x00"] + proof[1:], leaf)
    assert not v(b1, proof[:-1], leaf)


def test_anchor_records_batch_and_emits_event(evm: Evm) -> None:
    tree = ContributionTree(leaves(3))
    batch_id, receipt = evm.client.anchor_root(tree.root, 3)
    assert batch_id == 0 and evm.client.batch_count() == 1
    batch = evm.client.get_batch(0)
    block_time = evm.w3.eth.get_block(receipt["blockNumber"])["timestamp"]
    assert (batch.root, batch.leaf_count, batch.anchored_at) == (tree.root, 3, block_time)
    [log] = evm.client.registry.events.RootAnchored().process_receipt(receipt)
    assert dict(log["args"]) == {"batchId": 0, "root": tree.root, "leafCount": 3}
    assert evm.client.registry.functions.batchOfRoot(tree.root).call() == [True, 0]
    assert evm.client.registry.functions.batchOfRoot(b"\x01" * 32).call() == [False, 0]
    second, _ = evm.client.anchor_root(ContributionTree(leaves(2, 9)).root, 2)
    assert second == 1


def test_registry_errors(evm: Evm) -> None:
    tree = ContributionTree(leaves(2))
    expect_revert("EmptyRoot", evm.client.anchor_root, b"\x00" * 32, 1)
    expect_revert("EmptyBatch", evm.client.anchor_root, tree.root, 0)
    evm.client.anchor_root(tree.root, 2)
    err = expect_revert("DuplicateRoot", evm.client.anchor_root, tree.root, 2)
    assert err.args_dict == {"root": tree.root, "batchId": 0}
    expect_revert("UnknownBatch", evm.client.get_batch, 1)
    expect_revert("UnknownBatch", evm.client.verify_contribution, 7, [], tree.leaves[0])


def test_only_the_owner_anchors(evm: Evm) -> None:
    fn = evm.client.registry.functions.anchor(b"\x05" * 32, 1)
    tx = {"to": evm.deployment.registry, "data": fn._encode_transaction_data()}
    err = expect_revert("OwnableUnauthorizedAccount", evm.client.sender.send, evm.outsider, tx)
    assert err.args_dict["account"] == evm.outsider.address
    assert evm.client.registry.functions.owner().call() == evm.hub.address


def test_tree_refuses_empty_and_duplicates() -> None:
    with pytest.raises(ValueError):
        ContributionTree([])
    with pytest.raises(ValueError):
        ContributionTree(leaves(2) + leaves(1))
    with pytest.raises(KeyError):
        ContributionTree(leaves(2)).proof(leaves(1, start=5)[0])
    with pytest.raises(ValueError):
        ContributionLeaf(CONTRIBUTORS[0], b"short", 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 40), pick=st.integers(0, 39))
def test_python_proofs_verify_in_python(n: int, pick: int) -> None:
    tree = ContributionTree(leaves(n))
    leaf = tree.leaves[pick % n]
    assert verify_proof(tree.root, leaf, tree.proof(leaf))


def test_same_root_and_proofs_as_openzeppelin_merkle_tree(contracts_dir) -> None:
    """Cross-implementation check against the reference JS library (npm, devDependency)."""
    script = contracts_dir / "scripts" / "merkle.js"
    if not (contracts_dir / "node_modules" / "@openzeppelin" / "merkle-tree").exists():
        pytest.skip("contracts/node_modules missing: run `npm ci --prefix contracts`")
    node = shutil.which("node")
    assert node, "node is needed with contracts/node_modules"
    for n in (1, 2, 3, 6, 17):
        items = leaves(n)
        payload = [
            [x.contributor, "0x" + x.content_hash.hex(), str(x.contribution_id)] for x in items
        ]
        out = subprocess.run(
            [node, str(script)],
            input=json.dumps(payload),
            capture_output=True,
            text=True,
            check=True,
        )
        reference = json.loads(out.stdout)
        tree = ContributionTree(items)
        assert "0x" + tree.root.hex() == reference["root"]
        for leaf, proof in zip(items, reference["proofs"], strict=True):
            assert ["0x" + p.hex() for p in tree.proof(leaf)] == proof
