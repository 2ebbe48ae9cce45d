"""Origin at sentence level (issue 16): a sentence long enough to carry a fact belongs to the first
contributor who stored it; copies of it by others are taken out of their chunk, or the chunk is
refused when nothing of its own is left, and the original is named. Real intake, SQLite, Edge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from assistant.db import make_engine, migrate
from retrieval.embedder import Embedder
from retrieval.knowledge import KnowledgeBase, open_knowledge_base
from retrieval.models import Chunk, Contribution, SentenceOrigin
from retrieval.origin import MIN_WORDS, sentence_hash, sentences, without
from retrieval.readers import Row
from retrieval.settings import RetrievalSettings
from tests.conftest import new_address

# The case: an existing two-sentence snippet, and a new one that copies one sentence.
FIRST = "The Vostok station recorded the lowest natural air temperature on Earth in July 1983."
SECOND = "Its thermometer read minus 89.2 degrees Celsius during the long polar night."
ORIGINAL = f"{FIRST} {SECOND}"
NEW = "Penguins huddle in colonies of thousands to share warmth through the Antarctic winter."


@pytest.fixture
def kb(tmp_path: Path, embedder: Embedder) -> Iterator[KnowledgeBase]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    base = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, ingest_batch_rows=4), engine, embedder)
    yield base
    base.close()
    engine.dispose()


def chunk_of(kb: KnowledgeBase, contribution_id: int) -> list[Chunk]:
    with kb.intake.sessions() as s:
        return list(s.scalars(select(Chunk).where(Chunk.contribution_id == contribution_id)))


def origin_of(kb: KnowledgeBase, text: str) -> tuple[int, str] | None:
    with kb.intake.sessions() as s:
        row = s.get(SentenceOrigin, sentence_hash(text))
        return (row.chunk_id, row.contributor) if row else None


def test_sentences_carry_facts_from_eight_words_and_hash_their_words() -> None:
    split = sentences(f"Dr. Smith measured it in the U.S. in 2020. {FIRST} Yes, it was cold!")
    assert [s.text for s in split] == ["Dr. Smith measured it in the U.S. in 2020.", FIRST, "Yes, it was cold!"]
    assert [s.words for s in split] == [10, 14, 4] and MIN_WORDS == 8
    assert split[0].hash and split[1].hash and split[2].hash is None  # too short to carry a fact alone
    # Case, spacing, punctuation and Unicode form do not change a sentence's identity; a word does.
    assert sentence_hash(FIRST) == sentence_hash("  the VOSTOK station recorded, the lowest natural air temperature on Earth in July 1983 ")
    assert sentence_hash(FIRST) != sentence_hash(FIRST.replace("1983", "1982"))
    assert without(ORIGINAL + " " + NEW, [sentences(ORIGINAL + " " + NEW)[1]]) == f"{FIRST} {NEW}"


def test_a_copy_of_one_sentence_of_a_two_sentence_snippet_is_refused_and_names_the_original(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    first = kb.intake.add_snippet(alice, ORIGINAL, title="Vostok")
    assert first.chunks_stored == 1
    [original] = chunk_of(kb, first.contribution_id)  # type: ignore[arg-type]
    assert origin_of(kb, FIRST) == origin_of(kb, SECOND) == (original.id, alice)

    # The copy: one sentence of the two (its cosine to the whole chunk is under 0.95).
    [vector] = kb.embedder.embed([FIRST])
    [whole] = kb.embedder.embed([f"Vostok\n{ORIGINAL}"])
    assert float(vector @ whole) < kb.intake.threshold  # the chunk-level check alone lets it through
    copy = kb.intake.add_snippet(bob, FIRST.upper())
    assert copy.status == "refused" and copy.chunks_stored == 0 and copy.chunks_near_duplicate == 1
    assert copy.duplicates == [{"line": 1, "kind": "copied_sentence", "chunk_id": original.id,
                                "origin_contributor": alice, "sentence": FIRST.upper(), "outcome": "chunk_refused"}]
    # A fact-free remark beside the copied sentence does not make it the copier's own.
    again = kb.intake.add_snippet(bob, f"Wow. {FIRST} Amazing, right?")
    assert again.status == "refused" and [d["chunk_id"] for d in again.duplicates] == [original.id]
    hits = kb.searcher.search("lowest air temperature ever recorded on Earth", top_k=5)
    assert [h.contributor for h in hits] == [alice]


def test_a_chunk_that_adds_facts_is_stored_without_the_copied_sentence(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    [original] = chunk_of(kb, kb.intake.add_snippet(alice, ORIGINAL).contribution_id)  # type: ignore[arg-type]
    report = kb.intake.add_snippet(bob, f"{FIRST} {NEW}")
    assert report.status == "complete" and report.chunks_stored == 1
    assert report.duplicates == [{"line": 1, "kind": "copied_sentence", "chunk_id": original.id,
                                  "origin_contributor": alice, "sentence": FIRST, "outcome": "sentence_removed"}]
    [stored] = chunk_of(kb, report.contribution_id)  # type: ignore[arg-type]
    assert stored.text == NEW  # what the copier earns from is only what they added
    assert origin_of(kb, FIRST) == (original.id, alice) and origin_of(kb, NEW) == (stored.id, bob)
    [hit] = kb.searcher.search("lowest air temperature ever recorded on Earth Vostok", top_k=1)
    assert hit.contributor == alice and hit.chunk_id == original.id
    # The sentence is now the copier's neither through their chunk nor through a later one.
    assert kb.intake.add_snippet(bob, f"{SECOND} {FIRST}").status == "refused"


def test_the_same_contributor_may_repeat_their_own_sentences(kb: KnowledgeBase) -> None:
    alice = new_address()
    kb.intake.add_snippet(alice, ORIGINAL)
    report = kb.intake.add_snippet(alice, f"{FIRST} {NEW}")
    assert report.chunks_stored == 1 and report.duplicates == []
    [stored] = chunk_of(kb, report.contribution_id)  # type: ignore[arg-type]
    assert stored.text == f"{FIRST} {NEW}"
    assert kb.intake.add_snippet(alice, ORIGINAL).chunks_duplicate == 1  # an exact re-post is still a duplicate


def test_exact_and_near_copies_keep_their_chunk_level_reasons(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    three = f"{FIRST} {SECOND} {NEW}"
    [original] = chunk_of(kb, kb.intake.add_snippet(alice, three).contribution_id)  # type: ignore[arg-type]
    exact = kb.intake.add_snippet(bob, three.lower())
    assert exact.status == "refused" and [d["kind"] for d in exact.duplicates] == ["duplicate"]
    # A light rewording that keeps two sentences word for word: without them, the rest would not be
    # a near copy of the whole chunk; the chunk as written is, so it is refused as before.
    reworded = f"{FIRST} {SECOND} {NEW.replace('thousands', 'many thousands')}"
    near = kb.intake.add_snippet(bob, reworded)
    assert near.status == "refused" and near.duplicates[-1]["kind"] == "near_duplicate"
    assert near.duplicates[-1]["chunk_id"] == original.id


def test_short_sentences_are_not_owned(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    kb.intake.add_snippet(alice, f"Octopuses have three hearts. {FIRST}")
    report = kb.intake.add_snippet(bob, f"Octopuses have three hearts. {NEW}")
    assert report.chunks_stored == 1 and report.duplicates == []


def test_a_data_set_row_that_copies_is_reported_with_its_line(kb: KnowledgeBase, tmp_path: Path) -> None:
    alice, bob = new_address(), new_address()
    [original] = chunk_of(kb, kb.intake.add_snippet(alice, ORIGINAL).contribution_id)  # type: ignore[arg-type]
    path = tmp_path / "rows.jsonl"
    rows = [NEW, SECOND, f"{FIRST} The station sits on a lake buried under four kilometres of ice."]
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
    cid = kb.intake.open_dataset(bob, path.name, "jsonl", path.stat().st_size)
    report = kb.intake.ingest_dataset(cid, path)
    assert report.chunks_stored == 2 and report.chunks_near_duplicate == 1
    assert [(d["line"], d["chunk_id"], d["outcome"]) for d in report.duplicates] == [
        (2, original.id, "chunk_refused"), (3, original.id, "sentence_removed")]
    assert sorted(c.text for c in chunk_of(kb, cid)) == sorted(
        [NEW, "The station sits on a lake buried under four kilometres of ice."])


def test_a_sentence_stored_by_someone_else_while_drafting_refuses_the_chunk(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    drafted = kb.intake._draft([Row(1, f"{FIRST} {NEW}", None, None, {})], bob)  # before alice's write
    kb.intake.add_snippet(alice, ORIGINAL)
    with kb.intake.sessions() as s:
        contribution = Contribution(contributor=bob, kind="snippet", status="complete", report={})
        s.add(contribution)
        s.flush()
        batch = kb.intake._write_batch(s, contribution, drafted)
        assert batch.stored == [] and batch.near_duplicate == 1
        assert [(d["kind"], d["origin_contributor"], d["outcome"]) for d in batch.duplicates] == [
            ("copied_sentence", alice, "chunk_refused")]
        s.rollback()


def test_chunks_stored_before_sentence_origins_are_recorded_oldest_first(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    a = kb.intake.add_snippet(alice, ORIGINAL)
    b = kb.intake.add_snippet(bob, f"{NEW} {FIRST}")  # (today its copy would be taken out)
    # The state of a ledger migrated from before: no origins, every chunk unmarked, and bob's
    # chunk still holding the copied sentence it was stored with back then.
    [old] = chunk_of(kb, a.contribution_id)  # type: ignore[arg-type]
    [later] = chunk_of(kb, b.contribution_id)  # type: ignore[arg-type]
    with kb.intake.sessions.begin() as s:
        s.execute(update(Chunk).where(Chunk.id == later.id).values(text=f"{NEW} {FIRST}"))
        s.execute(delete(SentenceOrigin))
        s.execute(update(Chunk).values(sentences_indexed=False))
    assert kb.intake.fill_sentence_origins() == 2
    assert origin_of(kb, FIRST) == (old.id, alice) and origin_of(kb, NEW) == (later.id, bob)
    assert kb.intake.fill_sentence_origins() == 0
    assert kb.intake.add_snippet(new_address(), FIRST).status == "refused"
