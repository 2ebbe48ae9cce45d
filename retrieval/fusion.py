"""Reciprocal rank fusion of ranked lists (Cormack et al., 2009), exactly as Qdrant computes it."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def rrf(rankings: Sequence[Sequence[K]], k: int = 2, limit: int | None = None) -> list[tuple[K, float]]:
    """Fuse ranked id lists: score(id) = sum over lists of 1 / (k + position), position from 0.

    This is Qdrant's formula (server and client), so the embedded path and a Qdrant server
    fuse identically; the test suite checks it against qdrant-client's implementation.
    Ties keep the order of first appearance, so the result is deterministic.
    """
    scores: dict[K, float] = {}
    for ranking in rankings:
        for position, key in enumerate(ranking):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + position)
    fused = sorted(scores.items(), key=lambda item: -item[1])
    return fused if limit is None else fused[:limit]
