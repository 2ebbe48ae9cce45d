"""The chunk index: Qdrant (dense + sparse vectors, payload) with hybrid search.

The client is qdrant-client (local mode or a server) or ``EdgeClient`` (Qdrant Edge in
process, ``edge_store.py``), which answers the same calls with the same models.

Two lexical back ends answer the same hybrid query:
- ``qdrant``: Qdrant's own sparse vectors with the IDF modifier, prefetched beside the
  dense query and fused with RRF in one Query API call (what a Qdrant server and Edge do well);
- ``tantivy`` or ``sqlite``: the sidecar of a local-mode data dir (``tantivy_index.py``, or the FTS5
  table in ``lexical.py``), fused with the same RRF formula in Python, because Qdrant local
  mode scores sparse vectors in pure Python.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from qdrant_client import QdrantClient, models

from retrieval.edge_store import EdgeClient
from retrieval.fusion import rrf
from retrieval.lexical import FtsIndex, LexicalIndex, SparseVector, document_vector, query_vector
from retrieval.tantivy_index import TantivyIndex

log = logging.getLogger(__name__)

DENSE = "dense"
LEXICAL = "lexical"
Mode = Literal["hybrid", "dense", "sparse"]


@dataclass(frozen=True)
class IndexedChunk:
    """What the index keeps of a chunk: its id, vectors' inputs and the payload shown in results."""

    chunk_id: int
    vector: np.ndarray
    terms: Sequence[str]
    contributor: str
    contribution_id: int
    content_hash: str
    text: str
    title: str | None
    source_id: str | None
    speaker: str | None = None
    said_at: str | None = None  # ISO 8601


@dataclass(frozen=True)
class Filters:
    contributor: str | None = None
    contribution_id: int | None = None
    # Said in [said_from, said_before): chunks with a ``timestamp`` (naive ones read as UTC, as
    # Qdrant reads them). A lexical sidecar keeps no timestamps, so with one such a search is dense.
    said_from: datetime | None = None
    said_before: datetime | None = None

    @property
    def by_time(self) -> bool:
        return self.said_from is not None or self.said_before is not None

    def to_qdrant(self) -> models.Filter | None:
        must: list[models.Condition] = []
        if self.by_time:
            must.append(models.FieldCondition(key="timestamp", range=models.DatetimeRange(
                gte=_utc(self.said_from), lt=_utc(self.said_before))))
        if self.contributor is not None:
            must.append(models.FieldCondition(key="contributor", match=models.MatchValue(value=self.contributor)))
        if self.contribution_id is not None:
            must.append(
                models.FieldCondition(key="contribution_id", match=models.MatchValue(value=self.contribution_id))
            )
        return models.Filter(must=must) if must else None


def _utc(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


def sparse_vector(vec: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=vec.indices, values=vec.values)


class ChunkIndex:
    """Qdrant collection of chunks plus, in the embedded default, the lexical sidecar."""

    def __init__(
        self,
        client: QdrantClient | EdgeClient,
        collection: str,
        dim: int,
        sidecar: LexicalIndex | None = None,
        rrf_k: int = 2,
        prefetch_limit: int = 100,
        sparse: bool = True,
    ) -> None:
        self.client = client
        self.collection = collection
        self.dim = dim
        self.sidecar = sidecar
        self.rrf_k = rrf_k
        self.prefetch_limit = prefetch_limit
        # Whether points carry Qdrant sparse vectors; an existing collection's own config wins.
        self.sparse = sparse

    @property
    def lexical_backend(self) -> Literal["tantivy", "sqlite", "qdrant"]:
        if isinstance(self.sidecar, TantivyIndex):
            return "tantivy"
        return "sqlite" if isinstance(self.sidecar, FtsIndex) else "qdrant"

    def ensure_collection(self) -> None:
        """Create the collection and its payload indexes if they do not exist yet."""
        if self.client.collection_exists(self.collection):
            info = self.client.get_collection(self.collection)
            vectors = info.config.params.vectors
            size = vectors[DENSE].size if isinstance(vectors, dict) else None
            if size != self.dim:
                raise RuntimeError(
                    f"collection {self.collection!r} holds {size}-dim vectors, the embedder makes "
                    f"{self.dim}: re-index into a new collection (OPENCHAT_COLLECTION)"
                )
            has_sparse = LEXICAL in (info.config.params.sparse_vectors or {})
            if self.sidecar is None and not has_sparse:
                raise RuntimeError(
                    f"collection {self.collection!r} was built beside a lexical sidecar and has no sparse "
                    f"vectors: keep OPENCHAT_LEXICAL_INDEX=tantivy, or re-index into a new collection "
                    f"(OPENCHAT_COLLECTION) to search with Qdrant's own sparse vectors"
                )
            self.sparse = has_sparse
            return
        self.client.create_collection(
            self.collection,
            # The embedder's vectors are unit length, so the dot product is the cosine; Qdrant
            # local mode re-normalises every stored vector per COSINE query (measured 37 ms
            # of a 42 ms query at 11k points), and a server gives the same ranking either way.
            vectors_config={DENSE: models.VectorParams(size=self.dim, distance=models.Distance.DOT)},
            sparse_vectors_config=(
                {LEXICAL: models.SparseVectorParams(modifier=models.Modifier.IDF)} if self.sparse else None
            ),
        )
        with warnings.catch_warnings():
            # Local mode ignores payload indexes (and says so); a server needs them for filters.
            warnings.simplefilter("ignore", UserWarning)
            for key, schema in (
                ("contributor", models.PayloadSchemaType.KEYWORD),
                ("contribution_id", models.PayloadSchemaType.INTEGER),
                ("timestamp", models.PayloadSchemaType.DATETIME),
            ):
                self.client.create_payload_index(self.collection, key, field_schema=schema)

    def local_dense_vectors(self) -> dict[str, np.ndarray] | None:
        """Qdrant local mode's in-memory dense matrices of this collection; None on a server.

        The benchmark uses it to time the scan over another dtype: qdrant-client reloads
        stored vectors as float64, which measured faster here than a float32 copy.
        """
        collections = getattr(getattr(self.client, "_client", None), "collections", None)
        if not isinstance(collections, dict) or self.collection not in collections:
            return None
        vectors = getattr(collections[self.collection], "vectors", None)
        return vectors if isinstance(vectors, dict) else None

    def upsert(self, chunks: Sequence[IndexedChunk]) -> None:
        """Write chunks to Qdrant (and the sidecar); idempotent, ids are the ledger's chunk ids."""
        if not chunks:
            return
        points = [
            models.PointStruct(
                id=c.chunk_id,
                vector=(
                    {DENSE: c.vector.tolist(), LEXICAL: sparse_vector(document_vector(c.terms))} if self.sparse
                    else {DENSE: c.vector.tolist()}
                ),
                payload={
                    "chunk_id": c.chunk_id,
                    "contributor": c.contributor,
                    "contribution_id": c.contribution_id,
                    "content_hash": c.content_hash,
                    "text": c.text,
                    "title": c.title,
                    "source_id": c.source_id,
                    **({"speaker": c.speaker} if c.speaker else {}),
                    **({"timestamp": c.said_at} if c.said_at else {}),
                },
            )
            for c in chunks
        ]
        self.client.upsert(self.collection, points=points, wait=True)
        if self.sidecar is not None:
            self.sidecar.add((c.chunk_id, c.terms, c.contributor, c.contribution_id) for c in chunks)

    def nearest(self, vectors: np.ndarray, threshold: float) -> list[tuple[int, float] | None]:
        """For each vector, the most similar stored chunk at or above the cosine threshold."""
        if len(vectors) == 0:
            return []
        requests = [
            models.QueryRequest(query=v.tolist(), using=DENSE, limit=1, score_threshold=threshold)
            for v in vectors
        ]
        out: list[tuple[int, float] | None] = []
        for response in self.client.query_batch_points(self.collection, requests=requests):
            best = response.points[0] if response.points else None
            out.append((int(best.id), float(best.score)) if best is not None else None)
        return out

    def neighbours(self, vectors: np.ndarray, limit: int, not_contributor: str) -> list[list[int]]:
        """For each vector, the ids of the ``limit`` most similar chunks another contributor stored."""
        if len(vectors) == 0:
            return []
        others = models.Filter(must_not=[models.FieldCondition(key="contributor",
                                                               match=models.MatchValue(value=not_contributor))])
        requests = [models.QueryRequest(query=v.tolist(), using=DENSE, limit=limit, filter=others) for v in vectors]
        return [[int(p.id) for p in response.points]
                for response in self.client.query_batch_points(self.collection, requests=requests)]

    def search(
        self,
        vector: np.ndarray | None,
        terms: Sequence[str],
        limit: int,
        filters: Filters = Filters(),
        mode: Mode = "hybrid",
        lexical: list[tuple[int, float]] | None = None,
    ) -> list[Hit]:
        """Best chunks for a query: dense, lexical, or both fused with RRF.

        ``lexical`` is the sidecar's answer when the caller already asked it (see ``lexical``).
        """
        qfilter = filters.to_qdrant()
        if filters.by_time and self.sidecar is not None and mode != "dense":
            raise ValueError("a search by time is dense only beside a lexical sidecar (it keeps no timestamps)")
        if mode == "dense":
            assert vector is not None
            return self._hits(self._dense(vector, limit, qfilter))
        if self.sidecar is None:
            return self._search_native(vector, terms, limit, qfilter, mode)
        if lexical is None:
            lexical = self.lexical(terms, limit if mode == "sparse" else self.prefetch_limit, filters)
        if mode == "sparse":
            return self._with_payloads(lexical)
        assert vector is not None
        dense = self._dense(vector, self.prefetch_limit, qfilter, with_payload=False)
        fused = rrf([[int(p.id) for p in dense], [cid for cid, _ in lexical]], k=self.rrf_k, limit=limit)
        return self._with_payloads(fused)

    def lexical(self, terms: Sequence[str], limit: int, filters: Filters = Filters()) -> list[tuple[int, float]]:
        """The sidecar's BM25 ranking: (chunk_id, score), best first."""
        assert self.sidecar is not None
        return self.sidecar.search(terms, limit, contributor=filters.contributor, contribution_id=filters.contribution_id)

    def _dense(
        self, vector: np.ndarray, limit: int, qfilter: models.Filter | None, with_payload: bool = True
    ) -> list[models.ScoredPoint]:
        return self.client.query_points(
            self.collection, query=vector.tolist(), using=DENSE, limit=limit,
            query_filter=qfilter, with_payload=with_payload,
        ).points

    def _search_native(
        self,
        vector: np.ndarray | None,
        terms: Sequence[str],
        limit: int,
        qfilter: models.Filter | None,
        mode: Mode,
    ) -> list[Hit]:
        sparse = sparse_vector(query_vector(terms))
        if mode == "sparse":
            if not sparse.indices:
                return []
            return self._hits(
                self.client.query_points(
                    self.collection, query=sparse, using=LEXICAL, limit=limit, query_filter=qfilter
                ).points
            )
        assert vector is not None
        prefetch = [models.Prefetch(query=vector.tolist(), using=DENSE, limit=self.prefetch_limit, filter=qfilter)]
        if sparse.indices:
            prefetch.append(models.Prefetch(query=sparse, using=LEXICAL, limit=self.prefetch_limit, filter=qfilter))
        points = self.client.query_points(
            self.collection,
            prefetch=prefetch,
            query=models.RrfQuery(rrf=models.Rrf(k=self.rrf_k)),
            limit=limit,
            with_payload=True,
        ).points
        return self._hits(points)

    @staticmethod
    def _hits(points: Sequence[models.ScoredPoint]) -> list[Hit]:
        return [Hit(int(p.id), float(p.score), dict(p.payload or {})) for p in points]

    def _with_payloads(self, ranked: Sequence[tuple[int, float]]) -> list[Hit]:
        if not ranked:
            return []
        records = self.client.retrieve(self.collection, ids=[cid for cid, _ in ranked], with_payload=True)
        payloads = {int(r.id): dict(r.payload or {}) for r in records}
        # A chunk is in the sidecar but not in Qdrant only mid-write; skip it rather than fail.
        return [Hit(cid, score, payloads[cid]) for cid, score in ranked if cid in payloads]

    def count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)
