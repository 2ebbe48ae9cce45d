"""Paraphrased copies (issue 16): a sentence that rewords one another contributor stored first, with
the same particulars (names, numbers), is taken out of its chunk like a copy, and the original keeps
the credit; templates and other claims phrased alike are not. Real embedder and intake, SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from assistant.db import make_engine, migrate
from retrieval import intake
from retrieval.embedder import Embedder
from retrieval.knowledge import KnowledgeBase, open_knowledge_base
from retrieval.models import Chunk
from retrieval.origin import sentences
from retrieval.paraphrase import (
    PARAPHRASE_COSINE,
    carries_particulars,
    keeps_particulars,
    paraphrase_of,
    particulars,
)
from retrieval.settings import RetrievalSettings
from tests.conftest import database_for, new_address

FIRST = "The Vostok station recorded the lowest natural air temperature on Earth in July 1983."
SECOND = "Its thermometer read minus 89.2 degrees Celsius during the long polar night."
REWORDED = "In July 1983, the lowest natural air temperature on Earth was recorded at the Vostok station."
NEW = "Penguins huddle in colonies of thousands to share warmth through the Antarctic winter."


def sentence_texts(text: str, speaker: str | None = None) -> list[str]:
    """What the answer layer would embed per sentence: each sentence, a message's after its speaker."""
    return [f"{speaker}: {s.text}" if speaker else s.text for s in sentences(text)]


@pytest.fixture(params=["sqlite", "postgres"])
def kb(request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder) -> Iterator[KnowledgeBase]:
    with database_for(request.param) as url:
        engine = make_engine(url or f"sqlite:///{tmp_path / 'db.sqlite3'}")
        migrate(engine)
        base = open_knowledge_base(RetrievalSettings(data_dir=tmp_path), engine, embedder, sentence_texts)
        yield base
        base.close()
        engine.dispose()


def chunk_ids(kb: KnowledgeBase, contribution_id: int | None) -> list[int]:
    with kb.intake.sessions() as s:
        return list(s.scalars(select(Chunk.id).where(Chunk.contribution_id == contribution_id)))


def texts_of(kb: KnowledgeBase, contribution_id: int | None) -> list[str]:
    with kb.intake.sessions() as s:
        return list(s.scalars(select(Chunk.text).where(Chunk.contribution_id == contribution_id)))


def test_particulars_are_numbers_names_and_a_leading_name() -> None:
    p = particulars("Kliff Kingsbury led the Red Raiders in his second season, 1,200 fans said.")
    assert p.numbers == {"1200": 1, "second": 1} and p.names == {"kingsbury", "red", "raiders"} and p.lead == "kliff"
    assert particulars("The Earth's crust is thin.").names == {"earth"}  # a possessive names its owner
    assert particulars("In 1066 the Normans came.").lead is None  # a stop word is not a name
    assert particulars("The Amundsen-Scott station, 1.200 m, ١٩٨٣.").names == {"amundsen", "scott"}
    assert particulars("The Amundsen-Scott station, 1.200 m, ١٩٨٣.").numbers == {"1200": 1, "1983": 1}
    assert not keeps_particulars(particulars("Kliff Kingsbury led the Red Raiders in his second season."),
                                 particulars("Kliff Kingsbury led the Red Raiders in his fourth season."))
    assert not keeps_particulars(particulars("Lempster is a town in Sullivan County, New Hampshire."),
                                 particulars("Acworth is a town in Sullivan County, New Hampshire."))
    assert keeps_particulars(particulars(FIRST), particulars(REWORDED))
    # One-sided: what the older sentence says must stay; a detail, a name or a lead word added does
    # not make a copy someone else's claim (nor does a snippet's speaker prefix).
    for added in (f"Notably, {REWORDED[0].lower()}{REWORDED[1:]}", REWORDED.replace("1983,", "1983, 3,488 m up,"),
                  f"Bob: {REWORDED}", REWORDED.replace("station", "station in Antarctica")):
        assert keeps_particulars(particulars(FIRST), particulars(added)), added
    assert not keeps_particulars(particulars(FIRST), particulars(REWORDED.replace("Vostok", "Amundsen-Scott")))
    assert not keeps_particulars(particulars(f"Maria: {FIRST}"), particulars(f"John: {REWORDED}"))


def test_only_long_sentences_with_a_name_or_a_number_are_somebodys() -> None:
    assert carries_particulars(FIRST)
    assert not carries_particulars("It was one of the best days of my whole life.")  # said by many
    assert not carries_particulars("I saw Maria at the park.")  # under MIN_WORDS words
    assert not carries_particulars("I think I will go to the beach again this weekend.")  # "I" is no name


def test_a_rewording_is_found_and_a_template_or_another_claim_is_not(embedder: Embedder) -> None:
    older = [FIRST, SECOND, "The Amundsen station recorded the lowest natural air temperature on Earth in July 1983.",
             "The Vostok station recorded the lowest natural air temperature on Earth in July 1982."]
    vectors = embedder.embed(older)
    asked = [REWORDED, "Vostok station's record low of the Earth's natural air temperature came in July 1983.",
             "The Vostok station recorded the highest air temperature of the year in January 2002.",
             "The Amundsen-Scott station recorded its lowest temperature in June 1982 during a storm."]
    found = [paraphrase_of(t, v, list(zip(older, vectors))) for t, v in zip(asked, embedder.embed(asked))]
    assert [f[0] if f else None for f in found] == [0, 0, None, None]
    assert all(f[1] >= PARAPHRASE_COSINE for f in found if f)
    # The cosine alone would have taken the other year's template for a copy.
    assert float(vectors[3] @ embedder.embed([FIRST])[0]) >= PARAPHRASE_COSINE


def test_a_reworded_sentence_is_taken_out_and_the_original_keeps_the_credit(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    first = kb.intake.add_snippet(alice, f"{FIRST} {SECOND}", title="Vostok")
    [original] = chunk_ids(kb, first.contribution_id)

    alone = kb.intake.add_snippet(bob, REWORDED)
    assert alone.status == "refused"
    [entry] = alone.duplicates
    assert (entry["kind"], entry["chunk_id"], entry["origin_contributor"], entry["outcome"], entry["sentence"]) == (
        "copied_sentence", original, alice, "chunk_refused", REWORDED)
    assert PARAPHRASE_COSINE <= entry["similarity"] <= 1
    # A word or a detail added in front does not make it another claim, nor a speaker on the copy.
    carol = new_address()
    assert kb.intake.add_snippet(carol, f"Notably, {REWORDED[0].lower()}{REWORDED[1:]}").status == "refused"
    assert kb.intake.add_snippet(carol, REWORDED, speaker="Carol", timestamp="2024-01-02T10:00:00").status == "refused"

    report = kb.intake.add_snippet(bob, f"{REWORDED} {NEW}")
    assert report.status == "complete"
    assert [(d["chunk_id"], d["outcome"]) for d in report.duplicates] == [(original, "sentence_removed")]
    assert texts_of(kb, report.contribution_id) == [NEW]
    [hit] = kb.searcher.search("When was the lowest natural air temperature on Earth recorded?", top_k=1)
    assert hit.contributor == alice and hit.chunk_id == original


def test_another_claim_phrased_alike_is_stored(kb: KnowledgeBase) -> None:
    alice, bob = new_address(), new_address()
    kb.intake.add_snippet(alice, f"{FIRST} {SECOND}", title="Vostok")
    # Phrased alike (no run of ten words in common, close vectors), another year: another claim.
    other_year = "In July 1982, the lowest natural air temperature on Earth was recorded at the Vostok station."
    other = kb.intake.add_snippet(bob, f"{other_year} A weather balloon measured the winds above the station daily.")
    assert other.status == "complete" and other.duplicates == []
    assert texts_of(kb, other.contribution_id)[0].startswith(other_year)


def test_a_contributor_may_reword_their_own_sentence(kb: KnowledgeBase) -> None:
    alice = new_address()
    kb.intake.add_snippet(alice, f"{FIRST} {SECOND}", title="Vostok")
    again = kb.intake.add_snippet(alice, f"{REWORDED} {NEW}")
    assert again.status == "complete" and again.duplicates == []


def test_a_message_reworded_by_another_speaker_is_their_own_claim(kb: KnowledgeBase) -> None:
    maria, john = new_address(), new_address()
    said = "I ran the Lakeside 5K charity run for the animal shelter last Sunday."
    kb.intake.add_snippet(maria, said, speaker="Maria", timestamp="2023-05-08T13:56:00")
    # John saying the same of himself states another fact (the speaker is part of what a message says).
    echo = "Last Sunday I ran the Lakeside 5K charity run for the animal shelter."
    report = kb.intake.add_snippet(john, echo, speaker="John", timestamp="2023-05-09T10:00:00")
    assert report.status == "complete" and report.duplicates == []


def test_the_check_can_be_turned_off(tmp_path: Path, embedder: Embedder) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    kb = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, reworded_copies=False), engine, embedder,
                             sentence_texts)
    try:
        kb.intake.add_snippet(new_address(), f"{FIRST} {SECOND}", title="Vostok")
        report = kb.intake.add_snippet(new_address(), REWORDED)
        assert report.status == "complete" and texts_of(kb, report.contribution_id) == [REWORDED]
    finally:
        kb.close()
        engine.dispose()


def test_sentences_are_checked_in_slices_and_each_finds_its_origin(kb: KnowledgeBase,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "_PARAPHRASE_SLICE", 2)  # 5 particular sentences: three slices
    alice, bob = new_address(), new_address()
    [original] = chunk_ids(kb, kb.intake.add_snippet(alice, f"{FIRST} {SECOND}", title="Vostok").contribution_id)
    own = ["The Halley Research Station in Antarctica was first opened by British scientists in 1956.",
           "Its modular Halley VI buildings stand on hydraulic legs with skis since the year 2012.",
           "In 2016 the British Antarctic Survey moved Halley VI some 23 kilometres inland.",
           "Winter crews of about 16 people stay at Halley from February until November each year."]
    report = kb.intake.add_snippet(bob, " ".join(own[:2] + [REWORDED] + own[2:]))
    assert [(d["chunk_id"], d["outcome"], d["sentence"]) for d in report.duplicates] == [
        (original, "sentence_removed", REWORDED)]
    assert texts_of(kb, report.contribution_id) == [" ".join(own)]
