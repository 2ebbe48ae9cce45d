"""A retrieved message comes with its speaker's next message of the same exchange (retrieval.exchanges)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.db import make_engine, migrate
from retrieval.embedder import Embedder
from retrieval.exchanges import MAX_TURNS, next_messages
from retrieval.knowledge import KnowledgeBase, open_knowledge_base
from retrieval.search import SearchResult
from retrieval.settings import RetrievalSettings
from tests.conftest import new_address

# One chat export: two speakers, rows in the order they were said.
CHAT = [
    ("John", "2023-05-21T10:00", "I just signed with a new team, so excited for the season!"),
    ("Tim", "2023-05-21T10:01", "Which team did you sign with?"),
    ("John", "2023-05-21T10:02", "The Minnesota Wolves! I can't wait to play with them."),
    ("Tim", "2023-05-21T10:03", "Congrats, the Wolves are a great team."),
    ("Tim", "2023-05-21T10:04", "I have been reading a lot of fantasy novels lately."),
    ("John", "2023-05-21T14:00", "Back from practice, the coach had us running drills for hours."),
    ("Tim", "2023-05-21T14:01", "Sounds like hard work, my hands hurt from typing my essay."),
    ("Tim", "2023-05-21T14:02", "My essay about dragons is finally done and handed in."),
    ("Tim", "2023-05-21T14:03", "Next up is a short story about a lighthouse keeper."),
    ("Tim", "2023-05-21T14:04", "The keeper finds a map in the lamp room."),
    ("John", "2023-05-21T14:05", "We also watched game film of our next opponent."),
]


@pytest.fixture
def kb(tmp_path: Path, embedder: Embedder) -> Iterator[KnowledgeBase]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    migrate(engine)
    base = open_knowledge_base(RetrievalSettings(data_dir=tmp_path, vector_store="edge"), engine, embedder)
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"speaker": who, "timestamp": when, "text": text}) + "\n" for who, when, text in CHAT))
    cid = base.intake.open_dataset(new_address(), path.name, "jsonl", path.stat().st_size)
    assert base.intake.ingest_dataset(cid, path).chunks_stored == len(CHAT)
    yield base
    base.close()
    engine.dispose()


def result(kb: KnowledgeBase, text: str) -> SearchResult:
    found = [r for r in kb.searcher.search(text, top_k=len(CHAT)) if r.text == text]
    assert found, text
    return found[0]


def test_each_message_reads_on_into_its_speakers_next_one_of_the_exchange(kb: KnowledgeBase) -> None:
    signed, wolves, reading, drills, typing, essay = (result(kb, CHAT[i][2]) for i in (0, 2, 4, 5, 6, 7))
    with kb.intake.sessions() as session:
        nexts = next_messages(session, [signed, wolves, reading, drills, typing, essay])
    # John's next message two rows on (Tim's question between); Tim's next one row on.
    assert nexts[signed.chunk_id].text == CHAT[2][2]
    assert nexts[typing.chunk_id].text == CHAT[7][2] and nexts[essay.chunk_id].text == CHAT[8][2]
    # John's next message after the Wolves is hours later: another exchange. Tim's next after
    # the novels is MAX_TURNS rows on at most, but hours later too.
    assert wolves.chunk_id not in nexts and reading.chunk_id not in nexts
    # John's next message after the drills is five rows on, past MAX_TURNS: the talk moved on.
    assert MAX_TURNS == 4 and drills.chunk_id not in nexts
    # What comes back is a result of its own: the next message's speaker, time and contributor.
    follow = nexts[signed.chunk_id]
    assert (follow.speaker, follow.timestamp, follow.contributor) == ("John", "2023-05-21T10:02:00", signed.contributor)


def test_plain_knowledge_and_no_results_read_on_into_nothing(kb: KnowledgeBase) -> None:
    kb.intake.add_snippet(new_address(), "Octopuses have three hearts.")
    plain = result(kb, "Octopuses have three hearts.")
    with kb.intake.sessions() as session:
        assert next_messages(session, [plain]) == {}
        assert next_messages(session, []) == {}
