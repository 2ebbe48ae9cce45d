"""The knowledge base assembled from settings: index, embedder, intake and search."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from qdrant_client import QdrantClient
from sqlalchemy import Engine

from retrieval.chunking import Chunker
from retrieval.edge_store import EdgeClient, copy_points
from retrieval.embedder import Embedder
from retrieval.heap import release_freed_memory
from retrieval.intake import Intake, _embedding_text
from retrieval.lexical import FtsIndex, LexicalIndex, analyse, document_vector
from retrieval.search import Searcher
from retrieval.sentence_vectors import SentenceTexts, SentenceVectorStore
from retrieval.settings import RetrievalSettings
from retrieval.store import LEXICAL, ChunkIndex, sparse_vector
from retrieval.tantivy_index import TantivyIndex

log = logging.getLogger(__name__)


@dataclass
class KnowledgeBase:
    settings: RetrievalSettings
    client: QdrantClient | EdgeClient
    index: ChunkIndex
    embedder: Embedder
    intake: Intake
    searcher: Searcher
    # Each chunk's sentence vectors made at ingest (when the intake was given ``sentence_texts``).
    sentence_vectors: SentenceVectorStore | None = None

    def close(self) -> None:
        self.searcher.close()
        if self.index.sidecar is not None:
            self.index.sidecar.close()
        self.client.close()


def _copy_local_store(settings: RetrievalSettings, index: ChunkIndex) -> int:
    """Fill a new Edge collection from the data dir's local-mode one, if any (no re-embedding).

    Beside tantivy local mode keeps no sparse vectors; they are made from the stored text.
    """
    if not (settings.qdrant_path / "collection" / settings.collection).exists():
        return 0
    local = QdrantClient(path=str(settings.qdrant_path))
    try:
        if not local.collection_exists(settings.collection):
            return 0
        sparse_config = local.get_collection(settings.collection).config.params.sparse_vectors or {}

        def sparse_of(payload: dict[str, Any]) -> dict[str, Any]:
            terms = analyse(_embedding_text(payload.get("title"), payload.get("text", ""), payload.get("speaker"),
                                            payload.get("timestamp")))
            return {LEXICAL: sparse_vector(document_vector(terms))}

        needs_sparse = index.sparse and LEXICAL not in sparse_config
        assert isinstance(index.client, EdgeClient)
        return copy_points(local, index.client, settings.collection, extra_vectors=sparse_of if needs_sparse else None)
    finally:
        local.close()
        release_freed_memory()


def open_knowledge_base(settings: RetrievalSettings, engine: Engine, embedder: Embedder,
                        sentence_texts: SentenceTexts | None = None) -> KnowledgeBase:
    """Connect to (or open) the vector store and wire the intake and search around it;
    ``sentence_texts``: what of a chunk to embed and store per sentence (retrieval.sentence_vectors)."""
    store = settings.resolved_vector_store()
    client: QdrantClient | EdgeClient
    if store == "server":
        client = QdrantClient(url=settings.qdrant_url, api_key=settings.qdrant_api_key, timeout=30)
    elif store == "edge":
        client = EdgeClient(settings.edge_path, settings.edge_maintain_every)
    else:
        settings.qdrant_path.mkdir(parents=True, exist_ok=True)
        client = QdrantClient(path=str(settings.qdrant_path))
        # Local mode unpickles every stored point on open; hand the transient heap back (about
        # a quarter of the reopened RSS, bench/local_store_memory.py).
        release_freed_memory()
    kind = settings.lexical_index
    if kind == "auto":
        # Edge and a server score sparse vectors natively (docs/retrieval.md); local mode needs a sidecar.
        kind = "tantivy" if store == "local" else "qdrant"
    sidecar: LexicalIndex | None = None
    if kind == "tantivy":
        sidecar = TantivyIndex(settings.tantivy_path)
    elif kind == "sqlite":
        sidecar = FtsIndex(settings.lexical_path)
    sparse = settings.qdrant_sparse if settings.qdrant_sparse is not None else sidecar is None
    if sidecar is None and not sparse:
        client.close()
        raise ValueError("OPENCHAT_QDRANT_SPARSE=false needs a lexical sidecar: with OPENCHAT_LEXICAL_INDEX=qdrant "
                         "the sparse vectors are the lexical index")
    index = ChunkIndex(client, settings.collection, embedder.dim, sidecar, settings.rrf_k, settings.prefetch_limit,
                       sparse=sparse)
    try:
        fresh = not client.collection_exists(settings.collection)
        index.ensure_collection()
        if fresh and isinstance(client, EdgeClient):
            moved = _copy_local_store(settings, index)
            if moved:
                log.warning("copied %d points from Qdrant local mode (%s) into Qdrant Edge (%s); the old folder "
                            "can be deleted", moved, settings.qdrant_path, settings.edge_path)
    except Exception:
        if sidecar is not None:
            sidecar.close()
        client.close()  # local mode locks its folder until closed
        raise
    chunker = Chunker(embedder.token_ids, settings.chunk_size, settings.chunk_overlap)
    intake = Intake(engine, index, embedder, chunker, settings.near_duplicate_threshold, settings.ingest_batch_rows,
                    settings.ingest_batch_chars, sentence_texts if settings.sentence_vectors else None,
                    reworded_copies=settings.reworded_copies)
    filled = intake.fill_sidecar()
    if filled:
        log.warning("rebuilt the %s lexical index from the ledger: %d chunks", index.lexical_backend, filled)
    recorded = intake.fill_sentence_origins()
    if recorded:
        log.warning("recorded the sentence origins of %d chunks stored before they existed", recorded)
    recorded = intake.fill_stretch_origins()
    if recorded:
        log.warning("recorded the stretch origins of %d chunks stored before they existed", recorded)
    return KnowledgeBase(settings, client, index, embedder, intake, Searcher(index, embedder),
                         SentenceVectorStore(engine, embedder.dim))
