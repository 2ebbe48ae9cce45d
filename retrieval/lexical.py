"""The lexical side of hybrid search: one analyser, three indexes.

Text is analysed once, in Python (Unicode words, case-folded, Lucene's English stop set,
Snowball stemming), and the same terms feed any index:
- a Qdrant server: BM25-style sparse vectors (saturated, length-normalised term frequency),
  with the collection's IDF modifier supplying the inverse document frequency;
- Qdrant Edge (a new data dir's embedded store): the same sparse vectors, scored natively;
- a data dir in Qdrant local mode: a sidecar beside it, because local mode's sparse scoring is pure
  Python and linear in the number of points (76 ms a query at 5,000 points, measured),
  too slow for interactive search. The sidecar is tantivy (``tantivy_index.py``, the
  default) or the SQLite FTS5 table below; both rank by BM25.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import Stemmer

# Lucene's EnglishAnalyzer stop set: short on purpose, IDF discounts the rest.
STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with"]
)
# Letters and digits only: FTS5's unicode61 tokenizer splits on everything else, so an
# analysed term is always exactly one FTS5 token.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_stemmer = Stemmer.Stemmer("english")
_stem_lock = threading.Lock()

# BM25 constants (Robertson/Lucene defaults), also FTS5's built-in bm25() defaults.
BM25_K1 = 1.2
BM25_B = 0.75
# Average analysed length of a chunk, for the sparse vectors' length normalisation: the
# value of a stored vector cannot depend on the collection, so it is fixed at what a
# 200-token chunk analyses to (measured on SciFact: about 110 terms).
BM25_AVG_LEN = 110.0


@lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    # PyStemmer objects are not thread-safe; the cache makes the lock rarely taken.
    with _stem_lock:
        return _stemmer.stemWord(word)


def analyse(text: str) -> list[str]:
    """Text to index terms: words, case-folded, stop words dropped, stemmed."""
    return [_stem(w) for w in _WORD.findall(text.casefold()) if w not in STOPWORDS]


def term_id(term: str) -> int:
    """Stable 32-bit id of a term, used as a sparse-vector index."""
    return zlib.crc32(term.encode("utf-8"))


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


def document_vector(terms: Sequence[str]) -> SparseVector:
    """BM25 term-frequency part of a document; Qdrant's IDF modifier multiplies in the IDF."""
    counts = Counter(term_id(t) for t in terms)
    norm = BM25_K1 * (1 - BM25_B + BM25_B * len(terms) / BM25_AVG_LEN)
    indices = sorted(counts)
    values = [counts[i] * (BM25_K1 + 1) / (counts[i] + norm) for i in indices]
    return SparseVector(indices, values)


def query_vector(terms: Sequence[str]) -> SparseVector:
    """Each distinct query term weighs 1; the IDF modifier weighs it by rarity."""
    indices = sorted({term_id(t) for t in terms})
    return SparseVector(indices, [1.0] * len(indices))


class LexicalIndex(Protocol):
    """A BM25 sidecar of analysed chunk terms, keyed by chunk id, with filter fields."""

    def add(self, rows: Iterable[tuple[int, Sequence[str], str, int]]) -> None: ...

    def search(
        self, terms: Sequence[str], limit: int, contributor: str | None = None, contribution_id: int | None = None
    ) -> list[tuple[int, float]]: ...

    def remove(self, chunk_ids: Iterable[int]) -> None: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


class FtsIndex:
    """SQLite FTS5 index of analysed chunk text, keyed by chunk id, with filter columns."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # One write connection behind a lock (SQLite serialises writers anyway); reads use a
        # connection per thread, so concurrent searches run side by side under WAL.
        self._db = self._connect()
        self._lock = threading.Lock()
        self._readers = threading.local()
        self._all_readers: list[sqlite3.Connection] = []
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS chunks USING fts5("
                "terms, contributor UNINDEXED, contribution_id UNINDEXED, "
                "tokenize = 'unicode61 remove_diacritics 0')"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._readers, "conn", None)
        if conn is None:
            conn = self._readers.conn = self._connect()
            with self._lock:
                self._all_readers.append(conn)
        return conn

    def add(self, rows: Iterable[tuple[int, Sequence[str], str, int]]) -> None:
        """Index (chunk_id, terms, contributor, contribution_id) rows; re-adding replaces."""
        data = [(cid, " ".join(terms), contributor, contribution) for cid, terms, contributor, contribution in rows]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("DELETE FROM chunks WHERE rowid = ?", [(d[0],) for d in data])
                self._db.executemany(
                    "INSERT INTO chunks(rowid, terms, contributor, contribution_id) VALUES (?,?,?,?)",
                    data,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def remove(self, chunk_ids: Iterable[int]) -> None:
        """Drop chunks from the index (absent ids are ignored)."""
        with self._lock:
            self._db.executemany("DELETE FROM chunks WHERE rowid = ?", [(cid,) for cid in chunk_ids])

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
        # Terms are letters and digits only; quoting them keeps FTS5 from reading any
        # term (say "or", "near") as query syntax.
        match = " OR ".join(f'"{t}"' for t in distinct)
        # FTS5's rank is bm25() with its defaults (k1 1.2, b 0.75), lower is better.
        sql = "SELECT rowid, -rank FROM chunks WHERE chunks MATCH ?"
        params: list[object] = [match]
        if contributor is not None:
            sql += " AND contributor = ?"
            params.append(contributor)
        if contribution_id is not None:
            sql += " AND contribution_id = ?"
            params.append(contribution_id)
        sql += " ORDER BY rank LIMIT ?"
        params.append(limit)
        return [(int(r[0]), float(r[1])) for r in self._reader().execute(sql, params)]

    def count(self) -> int:
        return int(self._reader().execute("SELECT count(*) FROM chunks").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            for conn in self._all_readers:
                conn.close()
            self._db.close()
