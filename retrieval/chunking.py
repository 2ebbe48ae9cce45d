"""Rows to chunks with llama-index's sentence-aware splitter, sized in the embedder's tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llama_index.core.node_parser import SentenceSplitter

from retrieval.readers import Row


@dataclass(frozen=True)
class DraftChunk:
    """A chunk before dedupe: its text and where it came from."""

    text: str
    line: int | None
    source_id: str | None
    title: str | None
    meta: dict[str, Any] = field(default_factory=dict)
    speaker: str | None = None
    timestamp: str | None = None


class Chunker:
    """Splits rows into chunks that fit the embedder's window, keeping sentences whole."""

    def __init__(self, tokenize: Callable[[str], list[int]], chunk_size: int, chunk_overlap: int) -> None:
        self.splitter = SentenceSplitter(
            chunk_size=chunk_size, chunk_overlap=min(chunk_overlap, chunk_size // 2), tokenizer=tokenize
        )

    def chunk(self, rows: Iterable[Row]) -> Iterator[DraftChunk]:
        """Chunks of each row in order; a row that fits the window is one chunk."""
        for row in rows:
            for piece in self.splitter.split_text(row.text):
                if piece.strip():
                    yield DraftChunk(piece.strip(), row.line, row.source_id, row.title, row.meta, row.speaker, row.timestamp)
