"""Hybrid search over the chunk index: the query embedded and analysed once, fused by RRF."""

from __future__ import annotations

from dataclasses import dataclass

from retrieval.embedder import Embedder
from retrieval.lexical import analyse
from retrieval.store import ChunkIndex, Filters, Mode


@dataclass(frozen=True)
class SearchResult:
    chunk_id: int
    score: float
    text: str
    title: str | None
    source_id: str | None
    contributor: str
    contribution_id: int
    content_hash: str


class Searcher:
    """Finds the chunks that best match a question."""

    def __init__(self, index: ChunkIndex, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder

    def search(self, query: str, top_k: int = 10, filters: Filters = Filters(), mode: Mode = "hybrid") -> list[SearchResult]:
        """The top_k chunks for the query, best first."""
        vector = self.embedder.embed([query])[0] if mode != "sparse" else None
        terms = analyse(query) if mode != "dense" else []
        hits = self.index.search(vector, terms, top_k, filters, mode)
        return [
            SearchResult(
                chunk_id=h.chunk_id, score=h.score, text=h.payload.get("text", ""),
                title=h.payload.get("title"), source_id=h.payload.get("source_id"),
                contributor=h.payload.get("contributor", ""), contribution_id=int(h.payload.get("contribution_id", 0)),
                content_hash=h.payload.get("content_hash", ""),
            )
            for h in hits
        ]
