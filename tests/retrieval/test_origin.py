"""Origin at the level people copy (issue 16): a sentence long enough to carry a fact, and any run of
``STRETCH_WORDS`` words, belongs to the first contributor who stored it; the sentences of others
that copy it (word for word, wrapped, trimmed, one word changed, a clause, merged or split) are taken
out of their chunk, or the chunk is refused when nothing of its own is left, and the original is
named. Real intake, SQLite and PostgreSQL, Edge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from assistant.db import make_engine, migrate
from retrieval.embedder import Embedder
from retrieval.knowledge import KnowledgeBase, open_knowledge_base
from retrieval.models import Chunk, Contribution, SentenceOrigin, StretchOrigin
from retrieval.origin import (
    MIN_WORDS,
    STRETCH_WORDS,
    WINNOW,
    copied_sentences,
    covered,
    fingerprints,
    sentence_hash,
    sentences,
    split,
    without,
)
from retrieval.readers import Row
from retrieval.settings import RetrievalSettings
from tests.conftest import database_for, new_address

# The case: an existing two-sentence snippet, and a new one that copies one sentence.
FIRST = "The Vostok station recorded the lowest natural air temperature on Earth in July 1983."
SECOND = "Its thermometer read minus 89.2 degrees Celsius during the long polar night."
ORIGINAL = f"{FIRST} {SECOND}"
NEW = "Penguins huddle in colonies of thousands to share warmth through the Antarctic winter."


@pytest.fixture(params=["sqlite", "postgres"])
def kb(request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder) -> Iterator[KnowledgeBase]:
    with database_for(request.param) as url:
        engine = make_engine(url or f"sqlite:///{tmp_path / 'db.sqlite3'}")
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


# ---- stretches ------------------------------------------------------------------------------
# Another fact of the same original, and independent sentences a copier may write around a copy.
THIRD = "The station's ice core drilling reached a depth of 3,623 metres by the end of 1998."
OWN = "Emperor penguins breed in the coldest season and the males keep the egg on their feet."


def test_stretch_copies_are_found_however_they_are_wrapped_trimmed_merged_or_split() -> None:
    original = split(f"{FIRST} {SECOND}")
    cases = {
        "wrapped": f"As experts note, {FIRST[:-1].lower()}, which surprised many. {OWN}",
        "trimmed": f"{FIRST.split(' ', 2)[2]} {OWN}",
        "swapped": f"{FIRST.replace('July', 'June')} {OWN}",
        "clause": f"Emperor penguins, far from where the Vostok station recorded the lowest natural air temperature on "
                  f"Earth, breed in the coldest season. {OWN}",
        "merged": f"{FIRST[:-1]}, and {SECOND[0].lower()}{SECOND[1:]} {OWN}",
    }
    for kind, text in cases.items():
        copy = split(text)
        assert copied_sentences(copy, {"alice": original}) == {0: "alice"}, kind
        assert set(fingerprints(copy.words)) & set(fingerprints(original.words)), kind  # found by a lookup
    # A word changed in the middle of a 14-word sentence leaves no run of STRETCH_WORDS: not caught
    # (bench/sentence_origin.py measures how often a one-word change gets through).
    assert copied_sentences(split(FIRST.replace("natural", "surface")), {"alice": original}) == {}
    head, tail = " ".join(FIRST.split()[:7]), " ".join(FIRST.split()[7:])
    halves = split(f"{head}. {tail[0].upper()}{tail[1:]} {OWN}")  # two sentences of 7 words
    assert copied_sentences(halves, {"alice": original}) == {0: "alice", 1: "alice"}
    # Independent text: the same subject and words, never a run of STRETCH_WORDS in the same order.
    own = split(f"{OWN} On Earth the lowest natural air temperature was measured at Vostok station in 1983.")
    assert copied_sentences(own, {"alice": original}) == {}
    # A word or two of the copy spilling into the copier's next sentence does not take it out.
    spill = split(f"{FIRST} The thermometer was checked twice that night by the crew.")
    assert copied_sentences(spill, {"a": split(f"{FIRST} The thermometer broke.")}) == {0: "a"}
    assert covered(["a"] * 3, ["a"] * 3, STRETCH_WORDS) == [False] * 3  # shorter than a stretch: nothing


def test_a_short_copied_clause_takes_a_fact_when_it_holds_one_of_the_origins_numbers() -> None:
    long = ("After a decade of surveys in the Andes, the team reported that the Quelccaya ice cap had lost "
            "about 1,200 square metres of ice every single year since 1978, a pace that alarmed the authorities.")
    origin = {"alice": split(long)}
    # 12 copied words, under half of the 35-word sentence and under LONG_COPY, but with its numbers.
    numbered = split("Quite apart from tourism, the Quelccaya ice cap had lost about 1,200 square metres of ice, "
                     "guides say, and villagers worry.")
    assert copied_sentences(numbered, origin) == {0: "alice"}
    # The same length of the sentence's frame, no number in it: a phrase anyone may write.
    framed = split("Our reading group reported that after a decade of surveys in the Andes the mood was grim.")
    assert copied_sentences(framed, origin) == {}
    # A numbered formula that is a small part of a long sentence (under a third) is anybody's too.
    methods = split("All statistical analyses of the wound infection rates in both arms of the trial were performed "
                    "with SPSS version 22.0 for Windows (IBM Corp., Armonk, NY) by two statisticians who were blinded "
                    "to the allocation until the database was locked.")
    ours = split("We ran every test with SPSS version 22.0 for Windows (IBM Corp., Armonk, NY) as planned.")
    assert copied_sentences(ours, {"alice": methods}) == {}


def test_fingerprints_are_winnowed_and_any_long_enough_shared_run_shares_one() -> None:
    ws = split(f"{FIRST} {SECOND} {THIRD}").words
    prints = fingerprints(ws)
    stretches = len(ws) - STRETCH_WORDS + 1
    assert len(prints) == len(set(prints)) and len(prints) < stretches / 2  # about 2 / (WINNOW + 1) of them
    for at in range(len(ws) - (STRETCH_WORDS + WINNOW - 1) + 1):  # every run of the guaranteed length
        run = ws[at:at + STRETCH_WORDS + WINNOW - 1]
        assert set(fingerprints(["we", "wrote"] + run + ["today"])) & set(prints)
    assert fingerprints(ws[:STRETCH_WORDS - 1]) == []


def test_a_wrapped_copy_loses_its_sentence_and_the_original_keeps_the_credit(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    first = kb.intake.add_snippet(alice, f"{FIRST} {SECOND}", title="Vostok")
    [original] = chunk_of(kb, first.contribution_id)  # type: ignore[arg-type]
    with kb.intake.sessions() as s:
        recorded = {r.hash: (r.chunk_id, r.contributor) for r in s.scalars(select(StretchOrigin))}
    assert set(recorded.values()) == {(original.id, alice)}
    assert set(fingerprints(split(original.text).words)) == set(recorded)

    wrapped = f"As experts note, {FIRST[:-1].lower()}, which surprised many."
    alone = kb.intake.add_snippet(bob, wrapped)
    assert alone.status == "refused" and alone.duplicates == [
        {"line": 1, "kind": "copied_sentence", "chunk_id": original.id, "origin_contributor": alice,
         "sentence": wrapped, "outcome": "chunk_refused"}]
    report = kb.intake.add_snippet(bob, f"{wrapped} {NEW}")
    assert report.status == "complete" and [(d["chunk_id"], d["origin_contributor"], d["outcome"])
                                             for d in report.duplicates] == [(original.id, alice, "sentence_removed")]
    [stored] = chunk_of(kb, report.contribution_id)  # type: ignore[arg-type]
    assert stored.text == NEW
    [hit] = kb.searcher.search("Vostok lowest natural air temperature on Earth July 1983", top_k=1)
    assert hit.contributor == alice and hit.chunk_id == original.id


def test_merged_trimmed_and_clause_copies_are_taken_out(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    [original] = chunk_of(kb, kb.intake.add_snippet(alice, f"{FIRST} {SECOND} {THIRD}").contribution_id)  # type: ignore[arg-type]
    merged = f"{FIRST[:-1]}, and {SECOND[0].lower()}{SECOND[1:]}"
    assert kb.intake.add_snippet(bob, merged).status == "refused"
    trimmed = THIRD.split(" ", 2)[2]
    clause = ("Emperor penguins, far from where the Vostok station recorded the lowest natural air temperature on Earth, "
              "breed in the coldest season.")
    report = kb.intake.add_snippet(bob, f"{trimmed} {clause} {NEW}")
    assert report.chunks_stored == 1
    assert [(d["sentence"], d["chunk_id"]) for d in report.duplicates] == [(trimmed, original.id), (clause, original.id)]
    [stored] = chunk_of(kb, report.contribution_id)  # type: ignore[arg-type]
    assert stored.text == NEW


def test_a_common_phrase_belongs_to_its_first_contributor_and_short_quotes_to_nobody(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    quote = "the only thing we have to fear is fear itself"  # 10 words: a stretch
    first = kb.intake.add_snippet(alice, f"Roosevelt told the nation that {quote}, in his first inaugural address.")
    assert first.chunks_stored == 1 and first.duplicates == []  # the first to quote it keeps it, and earns
    later = kb.intake.add_snippet(bob, f"My grandmother repeated that {quote} whenever storms came. {NEW}")
    assert [d["outcome"] for d in later.duplicates] == ["sentence_removed"]
    # A stock phrase that is a small part of the first contributor's sentence is nobody's: it takes
    # no fact of theirs (under half of their sentence, under LONG_COPY words).
    stock = "the aim of the present study was to determine whether"  # 10 words
    kb.intake.add_snippet(alice, f"In 2019 {stock} daily doses of vitamin D lower the risk of hip fractures in "
                                 f"women over seventy living in northern Norway.")
    own = kb.intake.add_snippet(bob, f"{stock[0].upper()}{stock[1:]} sleep apnoea raises blood pressure in truck drivers.")
    assert own.chunks_stored == 1 and own.duplicates == []
    # Under STRETCH_WORDS words a shared phrase is nobody's, whatever its share.
    assert kb.intake.add_snippet(bob, "Roosevelt said the only thing we have to fear was fear, and moved on to "
                                      "the banks and the farms.").duplicates == []


def test_the_same_contributor_may_repeat_their_own_stretches(kb: KnowledgeBase) -> None:
    alice = new_address()
    kb.intake.add_snippet(alice, ORIGINAL)
    report = kb.intake.add_snippet(alice, f"As I wrote, {FIRST[:-1].lower()}, which surprised many. {NEW}")
    assert report.chunks_stored == 1 and report.duplicates == []


def test_a_stretch_stored_by_someone_else_while_drafting_refuses_the_chunk(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    drafted = kb.intake._draft([Row(1, f"As experts note, {FIRST[:-1].lower()}, which surprised many. {NEW}",
                                    None, None, {})], bob)
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


def test_chunks_stored_before_stretch_origins_are_recorded_oldest_first(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    a = kb.intake.add_snippet(alice, ORIGINAL)
    b = kb.intake.add_snippet(bob, NEW)
    [old] = chunk_of(kb, a.contribution_id)  # type: ignore[arg-type]
    [later] = chunk_of(kb, b.contribution_id)  # type: ignore[arg-type]
    wrapped = f"As experts note, {FIRST[:-1].lower()}, which surprised many."
    # A ledger migrated from before 0016: no stretch origins, every chunk unmarked, and bob's chunk
    # still holding the wrapped copy it was stored with back then.
    with kb.intake.sessions.begin() as s:
        s.execute(update(Chunk).where(Chunk.id == later.id).values(text=f"{NEW} {wrapped}"))
        s.execute(delete(StretchOrigin))
        s.execute(update(Chunk).values(stretches_indexed=False))
    assert kb.intake.fill_stretch_origins() == 2
    assert kb.intake.fill_stretch_origins() == 0
    with kb.intake.sessions() as s:
        owners = dict(s.execute(select(StretchOrigin.hash, StretchOrigin.chunk_id)).all())
    assert set(owners.values()) == {old.id, later.id}
    assert all(owners[f] == old.id for f in fingerprints(split(ORIGINAL).words))
    report = kb.intake.add_snippet(new_address(), wrapped)
    assert report.status == "refused" and report.duplicates[0]["chunk_id"] == old.id
