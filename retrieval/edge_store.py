"""Qdrant Edge (``qdrant-edge-py``) behind the part of QdrantClient's API that ChunkIndex uses.

Edge runs Qdrant's Rust engine in this process: vectors and payload live in on-disk (mmap)
segments under ``<data_dir>/edge/<collection>/``, sparse vectors are scored by Qdrant's own
inverted index with the IDF modifier, and hybrid queries fuse with RRF in one call, as on a
server. Local mode, by contrast, holds every point as Python objects (docs/retrieval.md,
Memory). This adapter takes and returns qdrant-client's models, so ChunkIndex's logic is the
same for local mode, a server and Edge; only the subset ChunkIndex (and its tests) call exists.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import qdrant_edge as edge
from qdrant_client import models
from qdrant_client.http import (
    models as rest,  # models.QueryResponse is fastembed's, not the Query API's
)

from retrieval.heap import release_freed_memory
from retrieval.settings import EDGE_MAINTAIN_EVERY

_DISTANCES = {models.Distance.DOT: edge.Distance.Dot, models.Distance.COSINE: edge.Distance.Cosine,
              models.Distance.EUCLID: edge.Distance.Euclid, models.Distance.MANHATTAN: edge.Distance.Manhattan}
_SCHEMAS = {models.PayloadSchemaType.KEYWORD: edge.PayloadSchemaType.Keyword,
            models.PayloadSchemaType.INTEGER: edge.PayloadSchemaType.Integer,
            models.PayloadSchemaType.DATETIME: edge.PayloadSchemaType.Datetime}
_DISTANCE_NAMES = {"Dot": models.Distance.DOT, "Cosine": models.Distance.COSINE,
                   "Euclid": models.Distance.EUCLID, "Manhattan": models.Distance.MANHATTAN}
# Edge persists a shard's config here (read back by get_collection: Edge has no getter).
CONFIG_FILE = "edge_config.json"
# Largest segment the optimizer builds, in KB of vectors (~20,000 chunks of 384 floats): merging
# stops there, so a pass re-indexes at most that much (docs/retrieval.md, Qdrant Edge).
MAX_SEGMENT_KB = 32_000


def on_disk_config(vectors: dict[str, Any], sparse_vectors: dict[str, Any]) -> edge.EdgeConfig:
    """A new shard's config with every component that allows it on disk (Memory.Cold).

    Dense vectors, HNSW graph, sparse vectors and their inverted index, payload and id tracker
    stay in mmap'ed files the kernel may drop; only the appendable segment's indexes live in RAM.
    """
    return edge.EdgeConfig(
        vectors=vectors, sparse_vectors=sparse_vectors, payload_memory=edge.Memory.Cold,
        id_tracker_memory=edge.Memory.Cold,
        hnsw_config=edge.HnswIndexConfig(m=16, ef_construct=100, full_scan_threshold=10_000, memory=edge.Memory.Cold),
        optimizers=edge.EdgeOptimizersConfig(max_segment_size=MAX_SEGMENT_KB),
    )


def _vector(value: Any) -> Any:
    if isinstance(value, models.SparseVector):
        return edge.SparseVector(list(value.indices), list(value.values))
    return list(value)


def _match(match: Any) -> Any:
    if isinstance(match, models.MatchValue):
        return edge.MatchValue(match.value)
    if isinstance(match, models.MatchAny):
        return edge.MatchAny(list(match.any))
    raise NotImplementedError(f"qdrant edge adapter: match {type(match).__name__}")


def _datetime_range(r: models.DatetimeRange) -> Any:
    def text(moment: Any) -> str | None:  # Edge takes RFC 3339 text
        return moment.isoformat() if moment is not None else None

    return edge.RangeDateTime(gte=text(r.gte), gt=text(r.gt), lte=text(r.lte), lt=text(r.lt))


def _conditions(conditions: Any) -> list[Any] | None:
    if conditions is None:
        return None
    out: list[Any] = []
    for c in conditions if isinstance(conditions, list) else [conditions]:
        if isinstance(c, models.FieldCondition) and c.match is not None:
            out.append(edge.FieldCondition(c.key, match=_match(c.match)))
        elif isinstance(c, models.FieldCondition) and isinstance(c.range, models.DatetimeRange):
            out.append(edge.FieldCondition(c.key, range=_datetime_range(c.range)))
        elif isinstance(c, models.Filter):
            out.append(_filter(c))
        else:
            raise NotImplementedError(f"qdrant edge adapter: condition {type(c).__name__}")
    return out


def _filter(f: models.Filter | None) -> edge.Filter | None:
    if f is None:
        return None
    return edge.Filter(must=_conditions(f.must), should=_conditions(f.should), must_not=_conditions(f.must_not))


def _query(query: Any, using: str | None) -> Any:
    if isinstance(query, models.RrfQuery):
        return edge.Fusion.Rrf(k=query.rrf.k if query.rrf.k is not None else 2, weights=query.rrf.weights)
    if isinstance(query, models.FusionQuery) and query.fusion == models.Fusion.RRF:
        return edge.Fusion.Rrf(k=2)
    if isinstance(query, (list, models.SparseVector)):
        return edge.Query.Nearest(_vector(query), using=using)
    raise NotImplementedError(f"qdrant edge adapter: query {type(query).__name__}")


def _prefetch(p: models.Prefetch) -> edge.Prefetch:
    return edge.Prefetch(
        limit=p.limit if p.limit is not None else 10,
        query=_query(p.query, p.using) if p.query is not None else None,
        prefetches=[_prefetch(q) for q in (p.prefetch if isinstance(p.prefetch, list) else [p.prefetch])]
        if p.prefetch is not None else None,
        filter=_filter(p.filter),
        score_threshold=p.score_threshold,
    )


def _scored(points: Sequence[Any]) -> list[models.ScoredPoint]:
    # model_construct: the engine's answers are already well formed; validation would only cost.
    return [models.ScoredPoint.model_construct(id=p.id, version=0, score=p.score, payload=p.payload, vector=None)
            for p in points]


class EdgeClient:
    """One Edge shard per collection under ``root``; thread-safe (the engine locks inside).

    Every ``maintain_every`` points written it flushes and optimizes the shard (0: never).
    """

    def __init__(self, root: Path, maintain_every: int = EDGE_MAINTAIN_EVERY) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, edge.EdgeShard] = {}
        self._lock = threading.Lock()
        self.maintain_every = maintain_every
        self._written: dict[str, int] = {}

    def _path(self, name: str) -> Path:
        return self.root / name

    def _shard(self, name: str) -> edge.EdgeShard:
        shard = self._shards.get(name)
        if shard is None:
            with self._lock:
                shard = self._shards.get(name)
                if shard is None:
                    if not self.collection_exists(name):
                        raise ValueError(f"Collection {name} not found")
                    try:
                        shard = self._shards[name] = edge.EdgeShard.load(str(self._path(name)))
                    except Exception as exc:  # Edge raises bare Exception; callers catch RuntimeError
                        raise RuntimeError(f"cannot open the Qdrant Edge store {self._path(name)}: {exc}") from exc
        return shard

    def collection_exists(self, name: str) -> bool:
        return name in self._shards or (self._path(name) / CONFIG_FILE).exists()

    def get_collection(self, name: str) -> models.CollectionInfo:
        """The collection's vector configuration in qdrant-client's shape (only what Edge keeps).

        Edge has no config getter; it persists the shard's config as JSON beside the segments.
        """
        info = self._shard(name).info()
        stored = json.loads((self._path(name) / CONFIG_FILE).read_text())
        vectors = {
            key: models.VectorParams(size=v["size"], distance=_DISTANCE_NAMES[v["distance"]])
            for key, v in (stored.get("vectors") or {}).items()
        }
        sparse = {
            key: models.SparseVectorParams(modifier=models.Modifier.IDF if v.get("modifier") == "idf" else None)
            for key, v in (stored.get("sparse_vectors") or {}).items()
        }
        params = models.CollectionParams.model_construct(vectors=vectors, sparse_vectors=sparse or None)
        return models.CollectionInfo.model_construct(
            status=models.CollectionStatus.GREEN, segments_count=info.segments_count, points_count=info.points_count,
            indexed_vectors_count=info.indexed_vectors_count, payload_schema={},
            config=models.CollectionConfig.model_construct(params=params),
        )

    def create_collection(
        self,
        collection_name: str,
        vectors_config: dict[str, models.VectorParams],
        sparse_vectors_config: dict[str, models.SparseVectorParams] | None = None,
    ) -> bool:
        # New shards only: a shard is loaded with its persisted config (older ones keep theirs).
        config = on_disk_config(
            vectors={name: edge.EdgeVectorParams(size=v.size, distance=_DISTANCES[v.distance], memory=edge.Memory.Cold)
                     for name, v in vectors_config.items()},
            sparse_vectors={
                name: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf if s.modifier == models.Modifier.IDF else None,
                                                  memory=edge.Memory.Cold)
                for name, s in (sparse_vectors_config or {}).items()
            },
        )
        with self._lock:
            self._shards[collection_name] = edge.EdgeShard.create(str(self._path(collection_name)), config)
        return True

    def create_payload_index(
        self, collection_name: str, field_name: str, field_schema: models.PayloadSchemaType
    ) -> None:
        self._shard(collection_name).update(edge.UpdateOperation.create_field_index(field_name, _SCHEMAS[field_schema]))

    def upsert(self, collection_name: str, points: Sequence[models.PointStruct], wait: bool = True) -> None:
        """Write points; Edge applies an update before it returns (its WAL makes it durable)."""
        converted = [
            edge.Point(p.id, {k: _vector(v) for k, v in p.vector.items()} if isinstance(p.vector, dict)
                       else _vector(p.vector), p.payload)
            for p in points
        ]
        self._shard(collection_name).update(edge.UpdateOperation.upsert_points(converted))
        # Counted under the lock: concurrent writers must not lose each other's points.
        with self._lock:
            written = self._written.get(collection_name, 0) + len(converted)
            due = bool(self.maintain_every) and written >= self.maintain_every
            self._written[collection_name] = 0 if due else written
        if due:
            self.maintain(collection_name)

    def maintain(self, collection_name: str) -> None:
        """Flush, then move the appendable segment's points into on-disk segments.

        Edge has no background flusher or optimizer: unflushed updates and the appendable
        segment (its sparse index and id tracker are in RAM) grow with every point until then.
        Blocks the caller (seconds; up to ~20 s when segments merge, docs/retrieval.md).
        """
        shard = self._shard(collection_name)
        shard.flush()
        shard.optimize()
        release_freed_memory()  # the engine frees through glibc; give the pages back

    def delete(self, collection_name: str, points_selector: Sequence[int]) -> None:
        self._shard(collection_name).update(edge.UpdateOperation.delete_points(list(points_selector)))

    def _request(
        self,
        query: Any = None,
        using: str | None = None,
        prefetch: models.Prefetch | Sequence[models.Prefetch] | None = None,
        query_filter: models.Filter | None = None,
        filter: models.Filter | None = None,
        limit: int = 10,
        score_threshold: float | None = None,
        with_payload: bool = True,
    ) -> edge.QueryRequest:
        prefetches = [prefetch] if isinstance(prefetch, models.Prefetch) else list(prefetch or [])
        return edge.QueryRequest(
            limit=limit,
            query=_query(query, using) if query is not None else None,
            prefetches=[_prefetch(p) for p in prefetches] or None,
            filter=_filter(query_filter if query_filter is not None else filter),
            score_threshold=score_threshold,
            with_payload=with_payload,
        )

    def query_points(self, collection_name: str, **kwargs: Any) -> rest.QueryResponse:
        return rest.QueryResponse.model_construct(points=_scored(self._shard(collection_name).query(self._request(**kwargs))))

    def query_batch_points(
        self, collection_name: str, requests: Sequence[models.QueryRequest]
    ) -> list[rest.QueryResponse]:
        batch = edge.QueryBatchRequest([
            self._request(query=r.query, using=r.using, prefetch=r.prefetch, filter=r.filter,
                          limit=r.limit if r.limit is not None else 10, score_threshold=r.score_threshold,
                          with_payload=bool(r.with_payload))
            for r in requests
        ])
        return [rest.QueryResponse.model_construct(points=_scored(points)) for points in self._shard(collection_name).query_batch(batch)]

    def retrieve(self, collection_name: str, ids: Sequence[int], with_payload: bool = True) -> list[models.Record]:
        records = self._shard(collection_name).retrieve(list(ids), with_payload, False)
        return [models.Record.model_construct(id=r.id, payload=r.payload, vector=None) for r in records]

    def count(self, collection_name: str, exact: bool = True) -> models.CountResult:
        return models.CountResult(count=self._shard(collection_name).count(edge.CountRequest(exact=exact)))

    def optimize(self, collection_name: str) -> bool:
        """Build the HNSW and payload indexes of full segments now (Edge has no background optimizer)."""
        return bool(self._shard(collection_name).optimize())

    def close(self) -> None:
        """Flush and close every shard (they lock their folder until closed)."""
        with self._lock:
            shards, self._shards = list(self._shards.values()), {}
        for shard in shards:
            shard.flush()
            shard.close()


def copy_points(
    source: Any, target: EdgeClient, collection: str, batch: int = 512,
    extra_vectors: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> int:
    """Copy every point (vectors and payload) of a qdrant-client collection into an Edge one.

    The target collection must exist; ``extra_vectors`` adds vectors the source lacks, from
    the payload. Moves a local-mode data dir to Edge without re-embedding; returns the count.
    """
    done, offset = 0, None
    while True:
        records, offset = source.scroll(collection, limit=batch, offset=offset, with_payload=True, with_vectors=True)
        if records:
            target.upsert(collection, [
                models.PointStruct(id=r.id, payload=r.payload, vector={
                    **(r.vector if isinstance(r.vector, dict) else {}),
                    **(extra_vectors(r.payload or {}) if extra_vectors else {}),
                })
                for r in records
            ])
            done += len(records)
        if offset is None:
            return done
