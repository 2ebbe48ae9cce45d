"""Anchoring contributions on chain: the Merkle root of new contribution leaves goes to the
ContributionRegistry, and anyone can prove a chunk's origin against it.

``payouts`` may not read the knowledge base's tables, so the new leaves come from a
:data:`LeafSource` the composer passes in (``assistant/worker.py`` builds one over retrieval's
chunks). This module owns what was anchored (``contribution_anchors``, ``anchored_leaves``).

Idempotency: an anchor (root + its leaves) is committed ``pending`` BEFORE its transaction is
sent; a leaf's content hash is unique in ``anchored_leaves``, so no leaf is in two anchors. A run
first finishes pending anchors from the chain: a root the registry knows (``batchOfRoot``) was
mined (the crash came after sending), its tx is found from the ``RootAnchored`` log; a root it
does not know was dropped and is sent again. The registry refuses a root twice
(``DuplicateRoot``), so a retried task can never anchor the same leaves twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.orm import Session

from payouts.chain import ChainClient, ContractRevert
from payouts.merkle import ContributionLeaf, ContributionTree, leaf_hash
from payouts.models import AnchoredLeaf, ContributionAnchor, utcnow
from payouts.settings import PayoutsSettings
from payouts.tasks import Resources, task_options
from payouts.worker import CHAIN_QUEUE

log = logging.getLogger(__name__)

TASK = "payouts.anchor_contributions"
# (session, limit) -> up to ``limit`` leaves not yet in ``anchored_leaves``, oldest first; called
# inside the transaction that records the anchor.
LeafSource = Callable[[Session, int], list[ContributionLeaf]]


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


# ------------------------------------------------------------------------- ledger


def plan_anchor(session: Session, leaves: Sequence[ContributionLeaf]) -> tuple[int, bytes]:
    """Record a pending anchor of ``leaves`` in the caller's transaction; (anchor id, root)."""
    tree = ContributionTree(leaves)
    anchor = ContributionAnchor(root=_hex(tree.root), leaf_count=len(tree), status="pending", created_at=utcnow())
    session.add(anchor)
    session.flush()
    session.execute(insert(AnchoredLeaf), [
        {"anchor_id": anchor.id, "contributor": leaf.contributor, "content_hash": leaf.content_hash.hex(),
         "contribution_id": leaf.contribution_id} for leaf in tree.leaves])
    return anchor.id, tree.root


def pending_anchors(session: Session) -> list[tuple[int, bytes, int]]:
    rows = session.execute(select(ContributionAnchor.id, ContributionAnchor.root, ContributionAnchor.leaf_count)
                           .where(ContributionAnchor.status == "pending").order_by(ContributionAnchor.id)).all()
    return [(i, bytes.fromhex(root[2:]), n) for i, root, n in rows]


def confirm_anchor(session: Session, anchor_id: int, *, chain_id: int, registry: str, batch_id: int,
                   tx_hash: str | None, block_number: int | None) -> None:
    session.execute(update(ContributionAnchor).where(ContributionAnchor.id == anchor_id).values(
        status="confirmed", chain_id=chain_id, registry_address=registry, registry_batch_id=batch_id,
        tx_hash=tx_hash, block_number=block_number, anchored_at=utcnow(),
    ).execution_options(synchronize_session=False))


def anchor_tree(session: Session, anchor_id: int) -> ContributionTree:
    """An anchor's Merkle tree, rebuilt from its leaves (the layout is deterministic:
    OpenZeppelin's StandardMerkleTree), so nothing but the leaves is stored."""
    members = session.execute(select(AnchoredLeaf.contributor, AnchoredLeaf.content_hash, AnchoredLeaf.contribution_id)
                              .where(AnchoredLeaf.anchor_id == anchor_id)).all()
    return ContributionTree(ContributionLeaf(a, bytes.fromhex(h), int(c)) for a, h, c in members)


class AnchorTrees:
    """Anchors' trees, each built once per process: an anchor's leaves never change after the
    transaction that created it, and a 4,096-leaf tree takes ~0.45 s to build (loaded machine)."""

    def __init__(self, engine: Engine, size: int = 32) -> None:
        self.engine = engine
        self.get: Callable[[int], ContributionTree] = lru_cache(maxsize=size)(self._build)

    def _build(self, anchor_id: int) -> ContributionTree:
        with Session(self.engine) as session:
            return anchor_tree(session, anchor_id)


def leaf_proofs(session: Session, content_hashes: Sequence[str],
                trees: Callable[[int], ContributionTree] | None = None) -> dict[str, dict[str, Any]]:
    """content hash (hex) -> its leaf, Merkle proof and anchor, for each anchored one;
    ``trees`` (e.g. ``AnchorTrees.get``) supplies anchors' trees, else they are rebuilt here."""
    rows = session.execute(select(AnchoredLeaf, ContributionAnchor)
                           .join(ContributionAnchor, ContributionAnchor.id == AnchoredLeaf.anchor_id)
                           .where(AnchoredLeaf.content_hash.in_(list(content_hashes)))).all()
    built: dict[int, ContributionTree] = {}
    out: dict[str, dict[str, Any]] = {}
    for leaf_row, anchor in rows:
        if anchor.id not in built:
            built[anchor.id] = trees(anchor.id) if trees is not None else anchor_tree(session, anchor.id)
        leaf = ContributionLeaf(leaf_row.contributor, bytes.fromhex(leaf_row.content_hash), int(leaf_row.contribution_id))
        out[leaf_row.content_hash] = {
            "leaf": {"contributor": leaf.contributor, "content_hash": _hex(leaf.content_hash),
                     "contribution_id": leaf.contribution_id},
            # As OpenZeppelin's StandardMerkleTree takes them: types, then values (uint256 as a string).
            "leaf_encoding": ["address", "bytes32", "uint256"],
            "leaf_values": [leaf.contributor, _hex(leaf.content_hash), str(leaf.contribution_id)],
            "leaf_hash": _hex(leaf_hash(leaf)),
            "root": anchor.root,
            "proof": [_hex(p) for p in built[anchor.id].proof(leaf)],
            "anchor": {"status": anchor.status, "chain_id": anchor.chain_id, "registry": anchor.registry_address,
                       "batch_id": anchor.registry_batch_id, "tx_hash": anchor.tx_hash,
                       "block_number": anchor.block_number, "leaf_count": anchor.leaf_count,
                       "anchored_at": anchor.anchored_at.isoformat() if anchor.anchored_at else None},
        }
    return out


# --------------------------------------------------------------------------- work


def _send_or_find(res: Resources, client: ChainClient, anchor_id: int, root: bytes, leaf_count: int) -> None:
    """Get ``root`` anchored exactly once and record where: find it on chain, else send it."""
    tx_hash: str | None = None
    block: int | None = None
    batch_id = client.batch_of_root(root)
    if batch_id is None:
        try:
            batch_id, receipt = client.anchor_root(root, leaf_count)
            tx_hash, block = _hex(receipt["transactionHash"]), int(receipt["blockNumber"])
        except ContractRevert as exc:  # an earlier send of ours got mined in between
            if exc.name != "DuplicateRoot":
                raise
        res.pause("anchor_contributions")  # fault hook: the tx is mined, not yet recorded
    if tx_hash is None:
        found = client.anchor_log(root)
        if found is not None:
            batch_id, tx_hash, block = found
        elif batch_id is None:
            batch_id = client.batch_of_root(root)
    assert batch_id is not None
    with res.transaction() as s:
        confirm_anchor(s, anchor_id, chain_id=client.chain_id, registry=client.deployment.registry,
                       batch_id=batch_id, tx_hash=tx_hash, block_number=block)


def run_anchor(res: Resources, leaf_source: LeafSource) -> dict[str, int]:
    """Finish pending anchors, then anchor every new leaf (``anchor_max_leaves`` per root).
    Returns {"anchors", "leaves", "recovered"}."""
    client = res.chain_client()
    out = {"anchors": 0, "leaves": 0, "recovered": 0}
    with Session(res.db()) as s:
        pending = pending_anchors(s)
    for anchor_id, root, count in pending:
        _send_or_find(res, client, anchor_id, root, count)
        out["recovered"] += 1
    limit = res.settings.anchor_max_leaves
    while True:
        with res.transaction() as s:
            leaves = leaf_source(s, limit)
            if not leaves:
                return out
            anchor_id, root = plan_anchor(s, leaves)
        _send_or_find(res, client, anchor_id, root, len(leaves))
        out["anchors"] += 1
        out["leaves"] += len(leaves)
        if len(leaves) < limit:
            return out


def register_anchoring(app: Any, settings: PayoutsSettings, leaf_source: LeafSource) -> None:
    """Add ``payouts.anchor_contributions`` to a Celery app made by ``payouts.worker.create_celery``:
    on the chain queue (the hub signs it: one signer, one nonce sequence) and on beat."""
    res: Resources = app.openchat_resources  # the chain client (and its nonce lock) is shared

    @app.task(name=TASK, **task_options(settings))
    def anchor_contributions(self: Any) -> dict[str, int]:
        out = run_anchor(res, leaf_source)
        log.info("anchor_contributions %s: %s", self.request.id, out)
        return out

    app.conf.task_routes = {**(app.conf.task_routes or {}), TASK: {"queue": CHAIN_QUEUE}}
    app.conf.beat_schedule = {**app.conf.beat_schedule, "payouts-anchor-contributions": {
        "task": TASK, "schedule": timedelta(seconds=settings.anchor_interval)}}
