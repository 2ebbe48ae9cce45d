"""First writers of quoted stretches (issue 16, copies of parts): the older chunks of other
contributors whose words an answer sentence carries through the source it is credited to. Pure
alignment, then the lookup over the intake's real stretch fingerprints on SQLite and PostgreSQL."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from assistant.db import make_engine, migrate
from retrieval.embedder import Embedder
from retrieval.first_writers import QUOTED_RUN, FirstWriter, Found, Quote, first_writers
from retrieval.knowledge import KnowledgeBase, open_knowledge_base
from retrieval.models import Chunk
from retrieval.origin import STRETCH_WORDS, fingerprints, first_written, stretch_hashes, words
from retrieval.settings import RetrievalSettings
from tests.conftest import database_for, new_address

# 37 words; a copy of the 16 from "crossing" to "the" is under half of it and holds no number, so
# the intake keeps it (retrieval.origin.takes_a_fact).
FIRST = ("In the spring of the flood year, the ferrymen of Old Harlow kept the river crossing open by lashing "
         "together a raft of empty cider barrels and oak planks from the ruined mill downstream of the weir.")
COPY = ("These days, when the bridge is closed for repairs, the village keeps the crossing open by lashing "
        "together a raft of empty cider barrels and oak planks from the boatyard.")
OWN = "The village hall hosts a ferry supper every autumn to raise money for the new bridge."


def test_every_stretch_of_a_quote_is_hashed_and_holds_the_winnowed_ones() -> None:
    ws = words(FIRST)
    assert len(stretch_hashes(ws)) == len(ws) - STRETCH_WORDS + 1
    assert set(fingerprints(ws)) <= stretch_hashes(ws)
    assert stretch_hashes(ws[:STRETCH_WORDS - 1]) == set()


def test_words_a_quote_shares_with_its_source_and_an_older_text_are_the_older_texts() -> None:
    quote, copy, first = words(COPY), words(COPY), words(FIRST)
    assert first_written(quote, copy, [("first", first)]) == {"first": 16}
    # The oldest writer of a word is listed first and keeps it; a later one gets only what is left.
    assert first_written(quote, copy, [("first", first), ("later", first)]) == {"first": 16}
    # Words the source does not hold are not the source's copy (the quote took them elsewhere).
    assert first_written(words(FIRST), copy, [("first", first)]) == {"first": 16}
    assert first_written(words(FIRST), words(OWN), [("first", first)]) == {}
    # A shared run shorter than a stretch is a phrase, not a copy; an answer pays runs of QUOTED_RUN.
    short = words("by lashing together a raft of empty cider barrels")
    assert len(short) == STRETCH_WORDS - 1 and first_written(short, copy, [("first", first)]) == {}
    assert first_written(short, copy, [("first", first)], QUOTED_RUN) == {"first": 9}
    assert first_written(short[:QUOTED_RUN - 1], copy, [("first", first)], QUOTED_RUN) == {}


@pytest.fixture(params=["sqlite", "postgres"])
def kb(request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder) -> Iterator[KnowledgeBase]:
    with database_for(request.param) as url:
        engine = make_engine(url or f"sqlite:///{tmp_path / 'db.sqlite3'}")
        migrate(engine)
        base = open_knowledge_base(RetrievalSettings(data_dir=tmp_path), engine, embedder)
        yield base
        base.close()
        engine.dispose()


def stored(kb: KnowledgeBase, contributor: str, text: str) -> int:
    report = kb.intake.add_snippet(contributor, text)
    assert report.status == "complete" and report.duplicates == [], report
    with kb.intake.sessions() as s:
        [chunk_id] = s.scalars(select(Chunk.id).where(Chunk.contribution_id == report.contribution_id))
    return chunk_id


def test_a_kept_clause_copy_is_found_as_the_older_chunks_words(kb: KnowledgeBase) -> None:
    alice, bob, carol = new_address(), new_address(), new_address()
    first = stored(kb, alice, FIRST)
    copy = stored(kb, bob, f"{COPY} {OWN}")  # kept whole: the copy takes no fact at intake
    other = stored(kb, carol, "Old Harlow's ferrymen were paid in flour and cider until the toll bridge opened.")
    with kb.intake.sessions() as s:
        found = first_writers(s, [Quote(COPY, copy, bob), Quote(OWN, copy, bob), Quote(FIRST, first, alice),
                                  Quote(COPY, copy, alice), Quote(COPY, other, carol)])
    assert found == [
        Found(30, (FirstWriter(first, alice, 16),)),
        Found(16, ()),  # the copier's own words
        Found(37, ()),  # the origin quoted: nobody wrote it before
        Found(30, ()),  # credited to the origin's contributor: their own words
        Found(30, ()),  # a source that does not hold the words copied nothing
    ]
    with kb.intake.sessions() as s:
        assert first_writers(s, []) == []


def test_a_run_winnowing_kept_no_fingerprint_of_is_found_through_a_search(kb: KnowledgeBase) -> None:
    """A copied run of 10-12 words has a stored fingerprint only when winnowing kept one there (one
    of 8 or 9 words none); the chunks a search for the quote found are aligned too (and still only
    older ones of others)."""
    ws, kept = words(FIRST), set(fingerprints(words(FIRST)))
    at = next(i for i in range(len(ws) - STRETCH_WORDS + 1) if not stretch_hashes(ws[i:i + STRETCH_WORDS]) & kept)
    run = " ".join(ws[at:at + STRETCH_WORDS])
    quote = f"Nobody at the quay remembers that {run} at all."
    alice, bob = new_address(), new_address()
    first = stored(kb, alice, FIRST)
    copy = stored(kb, bob, quote)
    with kb.intake.sessions() as s:
        assert first_writers(s, [Quote(quote, copy, bob)]) == [Found(len(words(quote)), ())]
        assert first_writers(s, [Quote(quote, copy, bob)], lambda _: [copy, first]) == [
            Found(len(words(quote)), (FirstWriter(first, alice, STRETCH_WORDS),))]
        # A search hit that is the quote's own contributor's, or newer, is no first writer.
        assert first_writers(s, [Quote(quote, first, alice)], lambda _: [copy]) == [Found(len(words(quote)), ())]
    # Eight words copied: no fingerprint at all, found through the search.
    eight = f"Nobody remembers that {' '.join(ws[at:at + QUOTED_RUN])} at all."
    carol = new_address()
    copy8 = stored(kb, carol, eight)
    with kb.intake.sessions() as s:
        assert first_writers(s, [Quote(eight, copy8, carol)], lambda _: [first]) == [
            Found(len(words(eight)), (FirstWriter(first, alice, QUOTED_RUN),))]
