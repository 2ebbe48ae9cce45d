"""The embedded default's lexical index: tantivy (Rust) over the analysed chunk terms.

tantivy scores BM25 (k1 1.2, b 0.75, like FTS5) but finds the top k of an OR of terms
with block-max WAND, skipping the documents that cannot make the cut, where FTS5 scores
every document that holds any query term before it sorts (15 ms against well under 1 ms a
query on SciFact's 11k chunks, measured in docs/retrieval.md). Text is analysed in Python
(``lexical.analyse``) and stored space-joined, so tantivy's whitespace tokenizer sees
exactly the terms every other lexical path sees.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import tantivy

# Writer memory budget: tantivy flushes a segment when it is full; 3 MB is its floor.
_WRITER_HEAP = 32_000_000


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    # Indexed so a re-add can delete the old copy by term; fast so hits map to ids cheaply.
    builder.add_unsigned_field("chunk_id", indexed=True, fast=True)
    # Term frequencies without positions: BM25 needs no phrase data.
    builder.add_text_field("terms", tokenizer_name="whitespace", index_option="freq")
    builder.add_text_field("contributor", tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field("contribution_id", indexed=True)
    return builder.build()


class TantivyIndex:
    """tantivy index of analysed chunk text, keyed by chunk id, with filter fields."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._schema = _schema()
        self._index = tantivy.Index(self._schema, str(path), reuse=True)
        # tantivy allows one writer per index (it holds a lock file in the folder, as Qdrant
        # local mode does); it is opened on the first write and kept for the process.
        self._writer: tantivy.IndexWriter | None = None
        self._lock = threading.Lock()

    def add(self, rows: Iterable[tuple[int, Sequence[str], str, int]]) -> None:
        """Index (chunk_id, terms, contributor, contribution_id) rows; re-adding replaces.

        One commit per call: tantivy's commit is atomic, so a crash keeps all of a batch or
        none of it, and the ledger's re-index fills in whatever was not committed.
        """
        with self._lock:
            writer = self._writer_locked()
            try:
                for chunk_id, terms, contributor, contribution_id in rows:
                    writer.delete_documents_by_query(self._id_query(chunk_id))
                    doc = tantivy.Document()
                    doc.add_unsigned("chunk_id", chunk_id)
                    doc.add_text("terms", " ".join(terms))
                    doc.add_text("contributor", contributor)
                    doc.add_unsigned("contribution_id", contribution_id)
                    writer.add_document(doc)
                writer.commit()
            except BaseException:
                writer.rollback()
                raise
            self._index.reload()

    def remove(self, chunk_ids: Iterable[int]) -> None:
        """Drop chunks from the index (absent ids are ignored)."""
        with self._lock:
            writer = self._writer_locked()
            for chunk_id in chunk_ids:
                writer.delete_documents_by_query(self._id_query(chunk_id))
            writer.commit()
            self._index.reload()

    def _writer_locked(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self._index.writer(heap_size=_WRITER_HEAP, num_threads=1)
        return self._writer

    def _id_query(self, chunk_id: int) -> tantivy.Query:
        # By query, not by term: delete_documents_by_term reads a Python int as i64, which
        # never matches this u64 field (tantivy 0.27, seen in a test).
        return tantivy.Query.term_query(self._schema, "chunk_id", chunk_id)

    def search(
        self,
        terms: Sequence[str],
        limit: int,
        contributor: str | None = None,
        contribution_id: int | None = None,
    ) -> list[tuple[int, float]]:
        """Best chunks for the terms by BM25: (chunk_id, score), higher is better."""
        distinct = list(dict.fromkeys(terms))
        if not distinct:
            return []
        # Terms go in as term queries, never through a query parser: no term is syntax.
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(self._schema, "terms", t, index_option="freq"))
             for t in distinct]
        )
        filters = []
        if contributor is not None:
            filters.append(tantivy.Query.term_query(self._schema, "contributor", contributor, index_option="basic"))
        if contribution_id is not None:
            filters.append(tantivy.Query.term_query(self._schema, "contribution_id", contribution_id, index_option="basic"))
        if filters:
            # Filters must match but add nothing to the score; the terms still must match one.
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, query)]
                + [(tantivy.Occur.Must, tantivy.Query.const_score_query(f, 0.0)) for f in filters]
            )
        searcher = self._index.searcher()
        hits = searcher.search(query, limit, count=False).hits
        if not hits:
            return []
        ids = searcher.fast_field_values("chunk_id", [address for _, address in hits])
        return [(int(cid), float(score)) for cid, (score, _) in zip(ids, hits)]

    def count(self) -> int:
        return int(self._index.searcher().num_docs)

    def close(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.wait_merging_threads()  # consumes the writer, releasing its lock
                self._writer = None
