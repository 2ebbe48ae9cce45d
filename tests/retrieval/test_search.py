"""Hybrid search on every lexical back end: the embedded tantivy and FTS5 sidecars, Qdrant's sparse vectors
(local mode and Qdrant Edge)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from assistant.db import make_engine, migrate
from retrieval.embedder import Embedder
from retrieval.knowledge import KnowledgeBase, open_knowledge_base
from retrieval.settings import RetrievalSettings
from retrieval.store import Filters
from tests.conftest import new_address

DOCS = [
    ("Hemoglobin", "Hemoglobin in red blood cells carries oxygen from the lungs to the tissues."),
    ("Insulin", "The pancreas secretes insulin, which lowers blood glucose by promoting its uptake into cells."),
    ("Photosynthesis", "Chloroplasts capture sunlight and fix carbon dioxide into sugars during photosynthesis."),
    ("Neurons", "Neurons transmit signals with action potentials that travel along the axon to synapses."),
    ("Antibiotics", "Penicillin kills bacteria by blocking the synthesis of their peptidoglycan cell walls."),
    ("Plate tectonics", "Earthquakes cluster along the boundaries where tectonic plates collide or slide past each other."),
]
QUERIES = {
    "which protein transports oxygen in blood": "Hemoglobin",
    "pancreas hormone that lowers glucose": "Insulin",
    "chloroplasts turn sunlight into sugars": "Photosynthesis",
    "penicillin bacteria cell wall": "Antibiotics",
    "why do earthquakes happen near plate boundaries": "Plate tectonics",
}


@pytest.fixture(params=["tantivy", "sqlite", "qdrant", "edge"])
def kb(request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder) -> Iterator[KnowledgeBase]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    # edge: Qdrant Edge with its native sparse vectors (the lexical default there).
    settings = (RetrievalSettings(data_dir=tmp_path, vector_store="edge") if request.param == "edge"
                else RetrievalSettings(data_dir=tmp_path, vector_store="local", lexical_index=request.param))
    base = open_knowledge_base(settings, engine, embedder)
    assert base.index.lexical_backend == ("qdrant" if request.param == "edge" else request.param)
    yield base
    base.close()
    engine.dispose()


def test_every_mode_finds_the_right_chunk(kb: KnowledgeBase) -> None:
    owners = {}
    for title, text in DOCS:
        who = new_address()
        owners[title] = who
        assert kb.intake.add_snippet(who, text, title=title).chunks_stored == 1
    for mode in ("hybrid", "dense", "sparse"):
        for query, title in QUERIES.items():
            results = kb.searcher.search(query, top_k=3, mode=mode)  # type: ignore[arg-type]
            assert results, (mode, query)
            assert results[0].title == title, (mode, query, [r.title for r in results])
            assert results[0].contributor == owners[title]
    # A filter keeps only that contributor's chunks, on every path.
    for mode in ("hybrid", "dense", "sparse"):
        only = kb.searcher.search("blood", top_k=10, filters=Filters(contributor=owners["Insulin"]), mode=mode)  # type: ignore[arg-type]
        assert [r.title for r in only] == ["Insulin"]
    # Scores descend.
    scores = [r.score for r in kb.searcher.search("blood cells oxygen", top_k=6)]
    assert scores == sorted(scores, reverse=True)


def test_query_without_indexable_terms_still_searches_densely(kb: KnowledgeBase) -> None:
    kb.intake.add_snippet(new_address(), DOCS[0][1], title=DOCS[0][0])
    assert kb.searcher.search("the of and", top_k=1, mode="sparse") == []
    assert kb.searcher.search("the of and", top_k=1)[0].title == "Hemoglobin"



def test_sparse_vectors_are_stored_only_where_they_are_read(tmp_path: Path, embedder: Embedder) -> None:
    """Beside the tantivy sidecar Qdrant holds no sparse vectors (local mode keeps them in RAM and
    nothing reads them); OPENCHAT_QDRANT_SPARSE=true stores them too; a sidecar-built collection
    refuses to serve Qdrant's own sparse path rather than find nothing."""
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)

    def sparse_config(kb: KnowledgeBase) -> object:
        return kb.client.get_collection(kb.settings.collection).config.params.sparse_vectors

    lean = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, vector_store="local"), engine, embedder)
    try:
        assert lean.index.lexical_backend == "tantivy" and not lean.index.sparse and not sparse_config(lean)
        title, text = DOCS[0]
        assert lean.intake.add_snippet(new_address(), text, title=title).chunks_stored == 1
        [point] = lean.client.scroll(lean.settings.collection, with_vectors=True)[0]
        assert set(point.vector) == {"dense"}  # type: ignore[arg-type]
        assert [r.title for r in lean.searcher.search("hemoglobin oxygen", top_k=1, mode="sparse")] == [title]
    finally:
        lean.close()
    with pytest.raises(RuntimeError, match="no sparse vectors"):
        open_knowledge_base(RetrievalSettings(data_dir=tmp_path, lexical_index="qdrant"), engine, embedder)
    with pytest.raises(ValueError, match="OPENCHAT_QDRANT_SPARSE"):
        open_knowledge_base(RetrievalSettings(data_dir=tmp_path / "x", lexical_index="qdrant", qdrant_sparse=False),
                            engine, embedder)
    full = open_knowledge_base(RetrievalSettings(data_dir=tmp_path / "full", vector_store="local", qdrant_sparse=True),
                               engine, embedder)
    try:
        assert full.index.sparse and sparse_config(full)
    finally:
        full.close()
        engine.dispose()


def test_a_search_by_time_keeps_what_was_said_then(kb: KnowledgeBase) -> None:
    """Filters.said_from/said_before keep the messages said in [from, before): dense on every store
    (a lexical sidecar keeps no timestamps, so it refuses a hybrid search by time)."""
    who = new_address()
    said = {"2023-05-07T20:00:00": "I ran a 5K charity run for the animal shelter.",
            "2023-05-08T09:30:00": "I ran my first half marathon along the river.",
            "2023-06-02T18:00:00": "I ran a trail race in the hills with my sister.",
            "2023-06-02T18:00:00+02:00": "I ran around the lake before breakfast."}
    for when, text in said.items():
        kb.intake.add_snippet(who, text, speaker="Maria", timestamp=when)
    kb.intake.add_snippet(who, "I ran a relay with no date on it.", speaker="Maria")

    def texts(said_from: datetime | None, said_before: datetime | None) -> set[str]:
        found = kb.searcher.search("what did Maria run", top_k=10, mode="dense",
                                   filters=Filters(said_from=said_from, said_before=said_before))
        return {r.text for r in found}

    may = texts(datetime(2023, 5, 1), datetime(2023, 6, 1))
    assert may == {said["2023-05-07T20:00:00"], said["2023-05-08T09:30:00"]}
    assert texts(datetime(2023, 5, 8), None) == set(said.values()) - {said["2023-05-07T20:00:00"]}
    # 18:00 at +02:00 is 16:00 UTC; a naive bound is read as UTC.
    assert texts(None, datetime(2023, 6, 2, 17)) == set(said.values()) - {said["2023-06-02T18:00:00"]}
    assert texts(datetime(2024, 1, 1), None) == set()
    if kb.index.sidecar is not None:
        with pytest.raises(ValueError, match="dense only"):
            kb.searcher.search("run", top_k=3, filters=Filters(said_from=datetime(2023, 5, 1)))
    else:  # Qdrant's own sparse vectors filter too
        hybrid = kb.searcher.search("run", top_k=10, filters=Filters(said_from=datetime(2023, 5, 1), said_before=datetime(2023, 6, 1)))
        assert {r.text for r in hybrid} == may
