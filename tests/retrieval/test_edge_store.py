"""The knowledge base on Qdrant Edge: intake, dedupe, filters, persistence, and which store a data dir gets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as edge

from assistant.db import make_engine, migrate
from retrieval.edge_store import CONFIG_FILE, EdgeClient
from retrieval.embedder import Embedder
from retrieval.knowledge import open_knowledge_base
from retrieval.lexical import analyse
from retrieval.settings import EMBEDDED_DEFAULT, RetrievalSettings
from retrieval.store import ChunkIndex, Filters, IndexedChunk
from tests.conftest import new_address
from tests.retrieval.test_intake import rows_file

FACTS = [
    "Octopuses have three hearts and blue, copper-based blood.",
    "The Danube flows through ten countries before it reaches the Black Sea.",
    "Tardigrades survive vacuum, radiation and decades without water.",
]
ADDRESS = "0x" + "ab" * 20


def test_edge_store_intake_search_and_reopen(tmp_path: Path, embedder: Embedder) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    settings = RetrievalSettings(data_dir=tmp_path, vector_store="edge", ingest_batch_rows=4)
    kb = open_knowledge_base(settings, engine, embedder)
    alice, bob = new_address(), new_address()
    try:
        assert isinstance(kb.client, EdgeClient) and kb.index.sidecar is None and kb.index.sparse
        for text in FACTS:
            assert kb.intake.add_snippet(alice, text).chunks_stored == 1
        path = rows_file(tmp_path / "rows.jsonl", 12)
        cid = kb.intake.open_dataset(bob, path.name, "jsonl", path.stat().st_size)
        stored = kb.intake.ingest_dataset(cid, path).chunks_stored
        assert kb.index.count() == len(FACTS) + stored
        # Exact and near copies are refused through the store's nearest-neighbour lookup.
        copy = kb.intake.add_snippet(bob, FACTS[0].upper())
        near = kb.intake.add_snippet(bob, FACTS[1].replace("flows", "runs"))  # cosine 0.96
        assert copy.chunks_stored == near.chunks_stored == 0
        assert kb.index.count() == len(FACTS) + stored
        assert kb.searcher.search("how many hearts does an octopus have", top_k=1)[0].text == FACTS[0]
        only_bob = kb.searcher.search("octopus hearts glaciers", top_k=20, filters=Filters(contributor=bob))
        assert only_bob and {r.contributor for r in only_bob} == {bob}
        by_contribution = kb.searcher.search("station", top_k=50, filters=Filters(contribution_id=cid), mode="sparse")
        assert len(by_contribution) == stored and {r.contribution_id for r in by_contribution} == {cid}
    finally:
        kb.close()
    assert (tmp_path / "edge" / "chunks").is_dir() and not (tmp_path / "qdrant").exists()
    # Reopened with the default settings: auto finds the Edge store and everything is still there.
    kb = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, vector_store="auto"), engine, embedder)
    try:
        assert isinstance(kb.client, EdgeClient) and kb.index.count() == len(FACTS) + stored
        [hit] = kb.searcher.search("Danube Black Sea", top_k=1)
        assert hit.text == FACTS[1] and hit.contributor == alice
        # A point lost between the ledger and the store is put back at start-up.
        kb.client.delete(kb.index.collection, points_selector=[hit.chunk_id])
        from sqlalchemy import update

        from retrieval.models import Chunk

        with kb.intake.sessions.begin() as s:
            s.execute(update(Chunk).where(Chunk.id == hit.chunk_id).values(indexed=False))
        assert kb.intake.reindex_pending() == 1
        assert kb.searcher.search("Danube Black Sea", top_k=1, mode="sparse")[0].chunk_id == hit.chunk_id
    finally:
        kb.close()
        engine.dispose()


def test_a_data_dir_keeps_the_store_it_was_built_with(tmp_path: Path) -> None:
    # A new data dir gets Qdrant Edge (issue 17: large knowledge bases by default).
    assert EMBEDDED_DEFAULT == "edge"
    assert RetrievalSettings(data_dir=tmp_path / "fresh").resolved_vector_store() == "edge"
    assert RetrievalSettings(data_dir=tmp_path, qdrant_url="http://qdrant:6333").resolved_vector_store() == "server"
    assert RetrievalSettings(data_dir=tmp_path, qdrant_url="http://qdrant:6333",
                             vector_store="edge").resolved_vector_store() == "server"  # a server wins over both
    # A data dir built in local mode stays there under auto...
    local = tmp_path / "old"
    (local / "qdrant" / "collection" / "chunks").mkdir(parents=True)
    assert RetrievalSettings(data_dir=local).resolved_vector_store() == "local"
    # ...an explicit setting wins either way...
    assert RetrievalSettings(data_dir=local, vector_store="edge").resolved_vector_store() == "edge"
    assert RetrievalSettings(data_dir=tmp_path / "fresh", vector_store="local").resolved_vector_store() == "local"
    edge = tmp_path / "new"
    (edge / "edge" / "chunks").mkdir(parents=True)
    assert RetrievalSettings(data_dir=edge).resolved_vector_store() == "edge"
    assert RetrievalSettings(data_dir=edge, vector_store="local").resolved_vector_store() == "local"
    # ...and once a local-mode dir has been copied to Edge (both folders), Edge is its store.
    (local / "edge" / "chunks").mkdir(parents=True)
    assert RetrievalSettings(data_dir=local).resolved_vector_store() == "edge"


def test_default_settings_open_edge_on_a_new_data_dir_and_local_mode_on_an_old_one(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What `make run` and `openchat ingest` get with nothing configured: the real stores opened."""
    for name in ("OPENCHAT_VECTOR_STORE", "OPENCHAT_QDRANT_URL", "OPENCHAT_LEXICAL_INDEX", "OPENCHAT_QDRANT_SPARSE"):
        monkeypatch.delenv(name, raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    who = new_address()
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    kb = open_knowledge_base(RetrievalSettings(data_dir=fresh), engine, embedder)
    try:
        assert isinstance(kb.client, EdgeClient) and kb.index.lexical_backend == "qdrant" and kb.index.sidecar is None
        assert kb.intake.add_snippet(who, FACTS[0]).chunks_stored == 1
    finally:
        kb.close()
    assert (fresh / "edge" / "chunks").is_dir()
    assert not (fresh / "qdrant").exists() and not (fresh / "lexical.tantivy").exists()

    # A data dir made before the switch (local mode + tantivy), with its own ledger.
    old_engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    migrate(old_engine)
    kb = open_knowledge_base(RetrievalSettings(data_dir=old, vector_store="local"), old_engine, embedder)
    try:
        for text in FACTS:
            kb.intake.add_snippet(who, text)
    finally:
        kb.close()
    kb = open_knowledge_base(RetrievalSettings(data_dir=old), old_engine, embedder)
    try:
        assert not isinstance(kb.client, EdgeClient) and kb.index.lexical_backend == "tantivy"
        assert kb.index.count() == len(FACTS)
        for mode in ("sparse", "dense", "hybrid"):
            [hit] = kb.searcher.search("tardigrades survive vacuum", top_k=1, mode=mode)  # type: ignore[arg-type]
            assert hit.text == FACTS[2]
        # It keeps taking knowledge, still in local mode (nothing copied, no edge/ folder).
        assert kb.intake.add_snippet(who, "Honey found in Egyptian tombs was still edible after 3,000 years.").chunks_stored == 1
    finally:
        kb.close()
        engine.dispose()
        old_engine.dispose()
    assert not (old / "edge").exists()


def test_edge_store_is_locked_to_one_process_at_a_time(tmp_path: Path, embedder: Embedder) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    settings = RetrievalSettings(data_dir=tmp_path, vector_store="edge")
    kb = open_knowledge_base(settings, engine, embedder)
    try:
        kb.intake.add_snippet(new_address(), FACTS[2])
        with pytest.raises(Exception, match="WAL"):
            EdgeClient(settings.edge_path).count(settings.collection)
    finally:
        kb.close()
        engine.dispose()


def test_a_local_mode_data_dir_moves_to_edge_without_re_embedding(tmp_path: Path, embedder: Embedder) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    who = new_address()
    kb = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, vector_store="local"), engine, embedder)
    try:
        assert kb.index.lexical_backend == "tantivy" and not kb.index.sparse  # no sparse vectors to copy
        for text in FACTS:
            kb.intake.add_snippet(who, text, title="Fact")
    finally:
        kb.close()
    assert RetrievalSettings(data_dir=tmp_path, vector_store="auto").resolved_vector_store() == "local"  # kept
    kb = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, vector_store="edge"), engine, embedder)
    try:
        assert isinstance(kb.client, EdgeClient) and kb.index.count() == len(FACTS)
        for mode in ("sparse", "dense", "hybrid"):
            [hit] = kb.searcher.search("tardigrades survive vacuum", top_k=1, mode=mode)  # type: ignore[arg-type]
            assert hit.text == FACTS[2] and hit.contributor == who and hit.title == "Fact"
    finally:
        kb.close()
        engine.dispose()
    assert RetrievalSettings(data_dir=tmp_path, vector_store="auto").resolved_vector_store() == "edge"


def _points(ids: range) -> list[IndexedChunk]:
    rng = np.random.default_rng(3)
    out = []
    for cid in ids:
        vec = rng.standard_normal(384).astype(np.float32)
        text = f"point {cid} about tardigrades" if cid % 2 else f"point {cid} about the danube"
        out.append(IndexedChunk(chunk_id=cid, vector=vec / np.linalg.norm(vec), terms=analyse(text),
                                contributor=ADDRESS, contribution_id=1, content_hash=f"{cid:064x}", text=text,
                                title="T", source_id=str(cid)))
    return out


def test_new_edge_stores_keep_every_component_on_disk(tmp_path: Path) -> None:
    client = EdgeClient(tmp_path, maintain_every=50)
    try:
        index = ChunkIndex(client, "chunks", 384, sidecar=None, sparse=True)
        index.ensure_collection()
        config = json.loads((tmp_path / "chunks" / CONFIG_FILE).read_text())
        assert config["payload_memory"] == config["id_tracker_memory"] == "cold"
        assert config["vectors"]["dense"]["memory"] == config["sparse_vectors"]["lexical"]["memory"] == "cold"
        assert config["hnsw_config"]["memory"] == "cold"
        assert config["sparse_vectors"]["lexical"]["modifier"] == "idf"
        # Upserts past maintain_every flush and optimize in between; nothing is lost or hidden.
        for start in range(1, 131, 20):
            index.upsert(_points(range(start, start + 20)))
        assert index.count() == 140
        hits = index.search(None, analyse("tardigrades"), 100, mode="sparse")
        assert len(hits) == 70 and all(h.chunk_id % 2 for h in hits)
    finally:
        client.close()
    assert EdgeClient(tmp_path).count("chunks").count == 140


def test_an_edge_store_made_before_the_on_disk_config_keeps_opening(tmp_path: Path) -> None:
    # The config Edge stores were created with before (placements left to Edge's defaults).
    old = edge.EdgeShard.create(str(tmp_path / "chunks"), edge.EdgeConfig(
        vectors={"dense": edge.EdgeVectorParams(size=384, distance=edge.Distance.Dot)},
        sparse_vectors={"lexical": edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)}))
    old.close()
    client = EdgeClient(tmp_path, maintain_every=10)
    try:
        index = ChunkIndex(client, "chunks", 384, sidecar=None, sparse=True)
        index.ensure_collection()
        index.upsert(_points(range(1, 31)))
        assert index.count() == 30 and len(index.search(None, analyse("danube"), 100, mode="sparse")) == 15
    finally:
        client.close()
    # Loaded with its persisted config: the shard keeps its own placements (Edge's defaults).
    config = json.loads((tmp_path / "chunks" / CONFIG_FILE).read_text())
    assert "memory" not in config["vectors"]["dense"] and "memory" not in config["sparse_vectors"]["lexical"]


def test_settings_set_the_edge_maintenance_interval(tmp_path: Path, embedder: Embedder) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    kb = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, vector_store="edge", edge_maintain_every=7),
                             engine, embedder)
    try:
        assert isinstance(kb.client, EdgeClient) and kb.client.maintain_every == 7
    finally:
        kb.close()
        engine.dispose()
