"""Sentence vectors made at ingest: stored beside each new chunk (SQLite and PostgreSQL ledgers, Edge and
local-mode stores), read back by chunk id, none for refused chunks or an intake told to store none."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from assistant.db import make_engine, migrate
from retrieval.embedder import Embedder
from retrieval.knowledge import open_knowledge_base
from retrieval.models import Chunk, SentenceVector
from retrieval.settings import RetrievalSettings
from tests.conftest import database_for, new_address


def texts_of(text: str, speaker: str | None) -> list[str]:
    """A stand-in for the answer layer's choice (retrieval takes any): sentences, a message's after its speaker."""
    return [f"{speaker}: {s}" if speaker else s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


@pytest.fixture(params=["sqlite", "postgres"])
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_for(request.param) as url:
        yield url or f"sqlite:///{tmp_path / 'db.sqlite3'}"


@pytest.mark.parametrize("store", ["edge", "local"])
def test_each_new_chunk_keeps_its_sentence_vectors(store: str, engine_url: str, tmp_path: Path, embedder: Embedder) -> None:
    engine = make_engine(engine_url)
    migrate(engine)
    kb = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, vector_store=store, ingest_batch_rows=2), engine, embedder,
                             texts_of)
    try:
        alice, bob = new_address(), new_address()
        fact = "Saturn's moon Enceladus sprays water ice from geysers. The plumes feed Saturn's E ring."
        assert kb.intake.add_snippet(alice, fact).chunks_stored == 1
        rows = [{"id": "m1", "text": "I ran a 5K charity run. It was for the shelter!", "speaker": "Maria",
                 "timestamp": "2023-05-08T13:00:00"},
                {"id": "p1", "text": "Lichens are partnerships of a fungus and an alga. They grow on bare rock."},
                {"id": "p2", "text": fact}]  # an exact copy of Alice's chunk: refused, nothing stored for it
        path = tmp_path / "rows.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        cid = kb.intake.open_dataset(bob, path.name, "jsonl", path.stat().st_size)
        report = kb.intake.ingest_dataset(cid, path)
        assert report.chunks_stored == 2 and report.chunks_duplicate == 1
        with kb.intake.sessions() as s:
            chunks = {c.id: c for c in s.scalars(select(Chunk))}
            stored = {(r.chunk_id, r.position): r for r in s.scalars(select(SentenceVector))}
        assert len(chunks) == 3
        for c in chunks.values():
            want = texts_of(c.text, c.speaker)
            got = [stored[(c.id, i)] for i in range(len(want))]
            assert [r.text for r in got] == want and len(stored) == sum(len(texts_of(x.text, x.speaker)) for x in chunks.values())
            vectors = np.frombuffer(b"".join(r.vector for r in got), dtype=np.float32).reshape(len(want), embedder.dim)
            # The exact encoder's vectors, as the answer layer would make them at answer time.
            assert np.allclose(vectors, embedder.embed(want), atol=1e-5)
        assert "Maria: I ran a 5K charity run." in [r.text for r in stored.values()]
        assert kb.sentence_vectors is not None
        hit = kb.searcher.search("Enceladus geysers", top_k=1)[0]
        texts, vectors = kb.sentence_vectors.read([hit.chunk_id])
        assert texts == texts_of(fact, None) and vectors.shape == (2, embedder.dim)
        assert np.allclose(vectors, embedder.embed(texts), atol=1e-5)
        assert kb.sentence_vectors.read([]) [0] == [] and kb.sentence_vectors.read([10**9])[1].shape == (0, embedder.dim)
    finally:
        kb.close()
        engine.dispose()


@pytest.mark.parametrize("how", ["no sentence_texts", "OPENCHAT_SENTENCE_VECTORS=false"])
def test_an_intake_without_sentence_texts_stores_none(how: str, tmp_path: Path, embedder: Embedder) -> None:
    """Data dirs ingested before sentence vectors existed look like this: readers find nothing and embed."""
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    if how == "no sentence_texts":
        kb = open_knowledge_base(RetrievalSettings(data_dir=tmp_path), engine, embedder)
    else:
        kb = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, sentence_vectors=False), engine, embedder, texts_of)
    try:
        assert kb.intake.add_snippet(new_address(), "Tardigrades survive vacuum. They also survive radiation.").chunks_stored == 1
        with kb.intake.sessions() as s:
            assert s.scalar(select(func.count()).select_from(SentenceVector)) == 0
        assert kb.sentence_vectors is not None
        hit = kb.searcher.search("tardigrades", top_k=1)[0]
        assert kb.sentence_vectors.read([hit.chunk_id])[0] == []
    finally:
        kb.close()
        engine.dispose()
