"""Provenance of the knowledge base's chunks on chain: the leaf source the anchoring task reads
(retrieval's chunks not yet anchored) and the proofs the API serves. The assistant composes
the two packages here, because ``payouts`` may not read ``retrieval``'s tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payouts.anchoring import AnchorTrees, leaf_proofs
from payouts.merkle import ContributionLeaf
from payouts.models import AnchoredLeaf
from retrieval.models import Chunk, Contribution


def unanchored_chunk_leaves(session: Session, limit: int) -> list[ContributionLeaf]:
    """Up to ``limit`` chunks not yet anchored, oldest first, as (contributor, content hash,
    contribution id) leaves; a ``payouts.anchoring.LeafSource``."""
    rows = session.execute(
        select(Chunk.contributor, Chunk.content_hash, Chunk.contribution_id)
        .outerjoin(AnchoredLeaf, AnchoredLeaf.content_hash == Chunk.content_hash)
        .where(AnchoredLeaf.id.is_(None)).order_by(Chunk.id).limit(limit)
    ).all()
    return [ContributionLeaf(who, bytes.fromhex(h), int(cid)) for who, h, cid in rows]


def contribution_proofs(session: Session, contribution_id: int, limit: int, offset: int,
                        trees: AnchorTrees | None = None) -> dict[str, Any] | None:
    """A contribution's chunks, each with its Merkle proof once anchored (``status`` anchored,
    or pending until the next anchoring run); None when there is no such contribution."""
    contribution = session.get(Contribution, contribution_id)
    if contribution is None:
        return None
    total = session.scalar(select(func.count()).select_from(Chunk).where(Chunk.contribution_id == contribution_id))
    chunks = session.execute(select(Chunk.id, Chunk.content_hash).where(Chunk.contribution_id == contribution_id)
                             .order_by(Chunk.id).limit(limit).offset(offset)).all()
    proofs = leaf_proofs(session, [h for _, h in chunks], trees.get if trees is not None else None)
    items = []
    for chunk_id, content_hash in chunks:
        proof = proofs.get(content_hash)
        status = "pending" if proof is None else ("anchored" if proof["anchor"]["status"] == "confirmed" else "anchoring")
        items.append({"chunk_id": chunk_id, "content_hash": "0x" + content_hash, "status": status, **(proof or {})})
    return {"contribution_id": contribution.id, "contributor": contribution.contributor,
            "chunks": {"total": int(total or 0), "limit": limit, "offset": offset, "items": items}}
