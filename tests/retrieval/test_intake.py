"""The intake against real SQLite and the embedded store (Qdrant Edge; local mode where named): crash recovery,
resumption, races."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from assistant.db import make_engine, migrate
from retrieval.embedder import Embedder
from retrieval.knowledge import KnowledgeBase, open_knowledge_base
from retrieval.models import Chunk, Contribution
from retrieval.settings import RetrievalSettings
from tests.conftest import new_address


@pytest.fixture
def kb(tmp_path: Path, embedder: Embedder) -> Iterator[KnowledgeBase]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    base = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, ingest_batch_rows=4), engine, embedder)
    yield base
    base.close()
    engine.dispose()


def rows_file(path: Path, n: int) -> Path:
    topics = ["comets", "tectonic plates", "enzymes", "neutron stars", "river deltas", "vaccines", "glaciers", "lichens"]
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"r{i}", "text": f"Fact {i} about {topics[i % len(topics)]}: observation number {i * 37 % 101} "
                                f"was recorded in {1900 + i} by station {chr(65 + i % 26)}{i}."}) + "\n")
    return path


@pytest.mark.parametrize("store", ["edge", "local"])  # the new data dirs' default, and the older one (+ tantivy)
def test_chunks_left_unindexed_by_a_crash_are_indexed_at_start(store: str, tmp_path: Path, embedder: Embedder) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    kb = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, vector_store=store), engine, embedder)
    try:
        who = new_address()
        report = kb.intake.add_snippet(who, "Saturn's moon Enceladus sprays water ice from geysers at its south pole.")
        assert report.chunks_stored == 1
        [hit] = kb.searcher.search("Enceladus geysers", top_k=1)
        # The state a crash between the ledger commit and the index write leaves behind:
        kb.client.delete(kb.index.collection, points_selector=[hit.chunk_id])
        if kb.index.sidecar is not None:
            kb.index.sidecar.remove([hit.chunk_id])
        with kb.intake.sessions.begin() as s:
            s.execute(update(Chunk).where(Chunk.id == hit.chunk_id).values(indexed=False))
        assert kb.searcher.search("Enceladus geysers", top_k=1, mode="sparse") == []
        assert kb.intake.reindex_pending() == 1
        assert kb.searcher.search("Enceladus geysers", top_k=1, mode="sparse")[0].chunk_id == hit.chunk_id
        assert kb.searcher.search("Enceladus geysers", top_k=1)[0].chunk_id == hit.chunk_id
        assert kb.intake.reindex_pending() == 0
    finally:
        kb.close()
        engine.dispose()


@pytest.mark.parametrize("before", ["tantivy", "sqlite"])
def test_a_new_or_lost_sidecar_is_rebuilt_from_the_ledger(before: str, tmp_path: Path, embedder: Embedder) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    settings = RetrievalSettings(data_dir=tmp_path, lexical_index=before, ingest_batch_rows=4)
    kb = open_knowledge_base(settings, engine, embedder)
    path = rows_file(tmp_path / "rows.jsonl", 10)
    cid = kb.intake.open_dataset(new_address(), path.name, "jsonl", path.stat().st_size)
    stored = kb.intake.ingest_dataset(cid, path).chunks_stored
    kb.close()
    shutil.rmtree(settings.tantivy_path, ignore_errors=True)  # lost, or never there (FTS5 era)
    kb = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, lexical_index="tantivy"), engine, embedder)
    try:
        assert kb.index.lexical_backend == "tantivy"
        assert kb.index.sidecar.count() == stored == kb.index.count()  # type: ignore[union-attr]
        [hit] = kb.searcher.search("glaciers station", top_k=1, mode="sparse")
        assert "glaciers" in hit.text
        assert kb.intake.fill_sidecar() == 0  # nothing to do the second time
    finally:
        kb.close()
        engine.dispose()


def test_interrupted_dataset_resumes_without_loss_or_duplicates(kb: KnowledgeBase, tmp_path: Path) -> None:
    path = rows_file(tmp_path / "rows.jsonl", 20)
    who = new_address()
    cid = kb.intake.open_dataset(who, path.name, "jsonl", path.stat().st_size)
    stop = threading.Event()
    stop.set()  # stop after the first batch, as a shutdown would
    first = kb.intake.ingest_dataset(cid, path, stop=stop)
    assert first.status == "processing" and first.rows == 4
    assert kb.intake.unfinished_datasets() == [cid]
    done = kb.intake.ingest_dataset(cid, path)
    assert done.status == "complete" and done.rows == 20
    assert done.chunks_duplicate == 0 and done.chunks_stored + done.chunks_near_duplicate == 20
    with kb.intake.sessions() as s:
        stored = s.scalar(select(func.count()).select_from(Chunk).where(Chunk.contribution_id == cid))
        positions = list(s.scalars(select(Chunk.position).where(Chunk.contribution_id == cid).order_by(Chunk.id)))
    assert stored == done.chunks_stored == kb.index.count()
    assert positions == list(range(stored))


def test_concurrent_copies_store_the_text_once(kb: KnowledgeBase) -> None:
    text = "The Mariana Trench is the deepest known part of Earth's oceans, nearly 11 kilometres deep."
    contributors = [new_address() for _ in range(6)]
    reports = []
    threads = [threading.Thread(target=lambda w=w: reports.append(kb.intake.add_snippet(w, text))) for w in contributors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.chunks_stored for r in reports) == [0, 0, 0, 0, 0, 1]
    assert sum(r.status == "refused" for r in reports) == 5
    with kb.intake.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Chunk)) == 1


def test_long_rows_are_chunked_with_sentences_whole(kb: KnowledgeBase) -> None:
    sentences = [f"Sentence {i} says that the measured value of quantity {i} was {i * 3} units." for i in range(120)]
    report = kb.intake.add_snippet(new_address(), " ".join(sentences), title="Long")
    assert report.chunks_stored > 3
    with kb.intake.sessions() as s:
        chunks = list(s.scalars(select(Chunk).order_by(Chunk.position)))
    for c in chunks:
        assert len(kb.embedder.token_ids(c.text)) <= kb.settings.chunk_size
        assert c.text.endswith(".")  # split at sentence ends
        assert c.title == "Long"


def test_chunks_of_one_row_are_never_near_copies_of_each_other(kb: KnowledgeBase, tmp_path: Path) -> None:
    # A long row whose last chunk is mostly the overlap with the one before it.
    body = " ".join(f"Insulin resistance in muscle cells was measured in cohort {i} of the trial." for i in range(30))
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"id": "x", "title": "Insulin resistance", "text": body + " It was high."}) + "\n")
    cid = kb.intake.open_dataset(new_address(), path.name, "jsonl", path.stat().st_size)
    report = kb.intake.ingest_dataset(cid, path)
    assert report.chunks_near_duplicate == 0 and report.chunks_stored >= 2


def test_a_cli_data_set_is_resumed_by_the_cli_not_by_the_api(kb: KnowledgeBase, tmp_path: Path) -> None:
    from dataclasses import replace

    from retrieval.intake import DatasetBusy, LocalFile

    who = new_address()
    path = rows_file(tmp_path / "rows.jsonl", 6)
    local = LocalFile.of(path)
    assert local.size == path.stat().st_size and len(local.sha256) == 64
    uploaded = kb.intake.open_dataset(who, path.name, "jsonl", local.size)
    cli = kb.intake.open_dataset(who, path.name, "jsonl", local.size, local_file=local)
    # The API's start-up resumes uploads only: it has no copy of a file read from the shell.
    assert kb.intake.unfinished_datasets() == [uploaded]
    # Another file of the same name and size, or another contributor, is not this data set.
    assert kb.intake.claim_interrupted(who, replace(local, sha256="0" * 64)) is None
    assert kb.intake.claim_interrupted(new_address(), local) is None
    # The process that recorded it (this one) is not "another live reader": it may resume it.
    assert kb.intake.claim_interrupted(who, local) == cli
    # A live process on this host that is not us still holds it (pid 1 always exists).
    with kb.intake.sessions.begin() as s:
        row = s.get(Contribution, cli)
        row.report = {**row.report, "local_file": {**row.report["local_file"], "pid": 1}}
    with pytest.raises(DatasetBusy):
        kb.intake.claim_interrupted(who, local)
    kb.intake.finish(cli, "complete", None)
    assert kb.intake.claim_interrupted(who, local) is None  # finished: nothing to resume


def test_batches_end_at_their_rows_or_their_characters() -> None:
    from retrieval.intake import batches
    from retrieval.readers import Row, RowError

    items = [Row(1, "x" * 10), RowError(2, "bad"), Row(3, "y" * 100), Row(4, "z" * 5), Row(5, "w"), Row(6, "v")]
    cut = [[i.line for i in b] for b in batches(iter(items), rows=3, chars=50)]
    # 10 + 100 characters close the first batch; then three rows close the second.
    assert cut == [[1, 2, 3], [4, 5, 6]]
    assert [len(b) for b in batches(iter(items), rows=100, chars=10**9)] == [6]
    assert list(batches(iter([]), rows=3, chars=50)) == []


def test_a_text_file_without_blank_lines_is_stored_in_bounded_rows(tmp_path: Path, embedder: Embedder) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    settings = RetrievalSettings(data_dir=tmp_path, max_row_chars=2_000, ingest_batch_chars=2_000)
    base = open_knowledge_base(settings, engine, embedder)
    try:
        path = tmp_path / "one.txt"
        path.write_text("".join(f"Line {i} says the number {i} twice: {i}.\n" for i in range(400)))
        cid = base.intake.open_dataset(new_address(), "one.txt", "text", path.stat().st_size)
        report = base.intake.ingest_dataset(cid, path, limits=settings.row_limits)
        assert report.status == "complete" and report.rows_rejected == 0
        assert report.rows >= path.stat().st_size // 2_000  # cut into rows, not one
        with base.intake.sessions() as session:
            lines = session.scalars(select(Chunk.line).where(Chunk.contribution_id == cid)).all()
        assert len(set(lines)) == report.rows  # every row has its own first line
    finally:
        base.close()
        engine.dispose()
