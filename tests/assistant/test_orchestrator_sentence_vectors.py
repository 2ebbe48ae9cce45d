"""The answer reads the sentence vectors stored at ingest: it embeds only the question, and answers as the
responder does when it embeds every sentence itself (also for a data dir ingested without them)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from assistant.chat.extractive import ExtractiveResponder, sentence_texts
from assistant.chat.wiring import build_assistant
from assistant.db import make_engine, migrate
from assistant.settings import load_settings
from retrieval.embedder import Embedder
from retrieval.knowledge import open_knowledge_base
from tests.conftest import new_address

SOURCES = [
    ("The Glass Orchard", "The Glass Orchard is a 1958 novel by Mira Penhallow. It is about a family of lens grinders."),
    ("Mira Penhallow", "Mira Penhallow was born in Truro in 1921. She later taught drawing in Falmouth."),
    ("Glass Orchard radio play", "The Glass Orchard was adapted as a radio play in 1962."),
    ("Lens grinding", "Lens grinders shape glass with abrasives. The craft needs patience."),
    ("Truro", "Truro is a cathedral city in Cornwall. It is the county's administrative centre."),
]
QUESTIONS = ["Where was the author of The Glass Orchard born?", "When was The Glass Orchard adapted as a radio play?",
             "Which is older, The Glass Orchard or its radio play?", "What is Truro?"]


class Counting:
    """The real embedder, noting what it is asked to embed in bulk (queries go through ``embed_query``)."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.dim = inner.dim
        self.name = inner.name
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        return self.inner.embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def token_ids(self, text: str) -> list[int]:
        return self.inner.token_ids(text)


def answers(data_dir: Path, embedder: Embedder, stored: bool) -> tuple[list[str], list[str], list[str]]:
    """Each question's answer, a fresh responder's on the same sources, and what answering embedded in bulk."""
    settings = load_settings(data_dir=data_dir, dev_api_key="k")
    engine = make_engine(settings.app.effective_database_url)
    migrate(engine)
    counting = Counting(embedder)
    kb = open_knowledge_base(settings.retrieval, engine, counting, sentence_texts if stored else None)
    try:
        who = new_address()
        for title, text in SOURCES:
            assert kb.intake.add_snippet(who, text, title=title).chunks_stored == 1
        assistant = build_assistant(settings, kb, engine)
        counting.embedded.clear()
        got, fresh = [], []
        for q in QUESTIONS:
            passages = assistant.retrieve(q).passages()
            got.append(assistant.extractive.answer(q, passages).text)
            fresh.append(ExtractiveResponder(embedder).answer(q, passages).text)
        return got, fresh, counting.embedded
    finally:
        kb.close()
        engine.dispose()


def test_stored_sentence_vectors_leave_only_the_question_to_embed(tmp_path: Path, embedder: Embedder) -> None:
    got, fresh, embedded = answers(tmp_path / "stored", embedder, stored=True)
    assert embedded == []
    assert got == fresh and "born in Truro" in got[0]  # the bridge: its second source read from stored vectors too
    # A data dir ingested without them: the responder embeds the sentences it reads, same answers.
    # (Compared with a fresh responder on its own sources: tied search scores may order them otherwise.)
    old, old_fresh, embedded_old = answers(tmp_path / "older", embedder, stored=False)
    assert old == old_fresh and "born in Truro" in old[0]
    assert "Mira Penhallow was born in Truro in 1921." in embedded_old
