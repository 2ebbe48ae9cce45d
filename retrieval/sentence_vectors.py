"""Each chunk's sentence vectors, embedded once at ingest and read back with search results.

The extractive responder scores every sentence of the chunks it reads by cosine to the question;
embedding those sentences at answer time was most of its time (docs/assistant.md, Latency). The
intake embeds them beside the chunk (which texts: a function the composing layer passes in, the
responder's own ``sentence_texts``) and keeps them in the ledger's ``sentence_vectors`` table, so
an answer reads them in one query. Rows key the exact text embedded: a reader that would embed
another text (another splitter, another speaker form) finds no row and embeds it itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from retrieval.models import SentenceVector

# What the intake embeds of a chunk: (text, speaker) -> the texts.
SentenceTexts = Callable[[str, str | None], list[str]]
# Bounded IN lists: a search returns tens of chunks, a batch insert hundreds.
_READ_IDS = 500
_WRITE_ROWS = 500


def rows(chunk_id: int, texts: Sequence[str], vectors: np.ndarray) -> list[dict]:
    """The table rows of one chunk's sentences (float32 bytes, the embedder's unit vectors)."""
    return [{"chunk_id": chunk_id, "position": i, "text": t, "vector": np.asarray(v, dtype=np.float32).tobytes()}
            for i, (t, v) in enumerate(zip(texts, vectors))]


def insert(session: Session, values: Sequence[dict]) -> None:
    """Write rows in the caller's transaction (the chunk's insert, so a chunk never half has them)."""
    for at in range(0, len(values), _WRITE_ROWS):
        session.execute(SentenceVector.__table__.insert(), list(values[at:at + _WRITE_ROWS]))


def by_chunk(session: Session, chunk_ids: Iterable[int], dim: int) -> dict[int, list[tuple[str, np.ndarray]]]:
    """The stored sentences of these chunks and their vectors, per chunk in position order (in the
    caller's transaction; a chunk stored before sentence vectors existed has none)."""
    ids = sorted(set(chunk_ids))
    out: dict[int, list[tuple[str, np.ndarray]]] = {}
    for at in range(0, len(ids), _READ_IDS):
        for cid, text, blob in session.execute(
            select(SentenceVector.chunk_id, SentenceVector.text, SentenceVector.vector)
            .where(SentenceVector.chunk_id.in_(ids[at:at + _READ_IDS]))
            .order_by(SentenceVector.chunk_id, SentenceVector.position)
        ):
            if len(blob) == 4 * dim:  # another embedder's vectors (a changed model) are not compared
                out.setdefault(cid, []).append((text, np.frombuffer(blob, dtype=np.float32)))
    return out


class SentenceVectorStore:
    """Reads the stored sentence vectors of chunks."""

    def __init__(self, engine: Engine, dim: int) -> None:
        self.engine = engine
        self.dim = dim

    def read(self, chunk_ids: Iterable[int]) -> tuple[list[str], np.ndarray]:
        """The stored sentence texts of these chunks and their vectors (chunk by chunk, in position
        order); a chunk ingested before sentence vectors existed has none."""
        with Session(self.engine) as session:
            rows = [row for rows in by_chunk(session, chunk_ids, self.dim).values() for row in rows]
        if not rows:
            return [], np.zeros((0, self.dim), dtype=np.float32)
        return [text for text, _ in rows], np.stack([vector for _, vector in rows])
