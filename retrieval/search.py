"""Hybrid search over the chunk index: the query embedded and analysed once, fused by RRF."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
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
    speaker: str | None = None
    timestamp: str | None = None  # ISO 8601: when it was said or written


class Searcher:
    """Finds the chunks that best match a question."""

    def __init__(
        self, index: ChunkIndex, embedder: Embedder, lexical_threads: int = 4, parallel: bool = True
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.parallel = parallel
        self._pool = ThreadPoolExecutor(max_workers=lexical_threads, thread_name_prefix="lexical")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def search(self, query: str, top_k: int = 10, filters: Filters = Filters(), mode: Mode = "hybrid") -> list[SearchResult]:
        """The top_k chunks for the query, best first."""
        terms = analyse(query) if mode != "dense" else []
        pending = lexical = None
        if mode == "hybrid" and self.index.sidecar is not None:
            if self.parallel:
                # The lexical side runs while the query is embedded: both release the GIL, so
                # the search takes about the longer of the two, not their sum.
                pending = self._pool.submit(self.index.lexical, terms, self.index.prefetch_limit, filters)
            else:
                lexical = self.index.lexical(terms, self.index.prefetch_limit, filters)
        vector = self.embedder.embed_query(query) if mode != "sparse" else None
        if pending is not None:
            lexical = pending.result()
        hits = self.index.search(vector, terms, top_k, filters, mode, lexical=lexical)
        return [
            SearchResult(
                chunk_id=h.chunk_id, score=h.score, text=h.payload.get("text", ""),
                title=h.payload.get("title"), source_id=h.payload.get("source_id"),
                contributor=h.payload.get("contributor", ""), contribution_id=int(h.payload.get("contribution_id", 0)),
                content_hash=h.payload.get("content_hash", ""),
                speaker=h.payload.get("speaker"), timestamp=h.payload.get("timestamp"),
            )
            for h in hits
        ]
