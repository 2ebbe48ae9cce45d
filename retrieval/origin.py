"""Origin at the level people copy: the sentences of a text that carry a fact, and their identity.

A chunk-level near-duplicate check misses a new text that copies one sentence of an older one
(the copy's cosine to the whole older chunk stays below the threshold). So every sentence long
enough to carry a fact on its own gets an identity, the hash of its words, and the first
contributor to store a sentence is its origin (``sentence_origins``, unique on the hash).

Which sentences count: at least ``MIN_WORDS`` words. Short sentences ("Yes.", "It is
poisonous.", "See Table 2.") are written independently by many people and say little alone;
long ones are practically never written word for word by two authors. Measured on the shared
corpora (``bench/sentence_origin.py``): between distinct documents, identical sentences of 8 or
more words are a few per ten thousand, and those are boilerplate or the same quotation (see
docs/retrieval.md, Sentence origin).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

# The fewest words of a sentence that carries a fact of its own (module docstring).
MIN_WORDS = 8
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Sentence:
    """One sentence of a text: where it is, how many words it has, and its identity (or None when
    it is too short to carry a fact alone)."""

    text: str
    start: int
    end: int
    words: int
    hash: str | None


@cache
def _punkt() -> Callable[[str], list[tuple[int, int]]]:
    # NLTK's Punkt with its trained English parameters (abbreviations such as "Dr.", "U.S."),
    # from the data llama-index bundles (no download); loaded once, ~20 ms.
    from llama_index.core.utils import globals_helper
    from nltk.tokenize import PunktTokenizer

    globals_helper.wait_for_nltk_check()  # puts llama-index's bundled nltk data on nltk's path
    tokenizer = PunktTokenizer("english")
    return lambda text: list(tokenizer.span_tokenize(text))


def words(text: str) -> list[str]:
    """The words of a text, Unicode-normalised and case-folded (punctuation and spacing dropped)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def sentence_hash(text: str) -> str:
    """Hex sha256 of a sentence's words: equal for copies that differ only in case, spacing,
    punctuation or Unicode form."""
    return hashlib.sha256(" ".join(words(text)).encode("utf-8")).hexdigest()


def sentences(text: str) -> list[Sentence]:
    """The sentences of ``text`` in order, each hashed when it has at least ``MIN_WORDS`` words."""
    out = []
    for start, end in _punkt()(text):
        piece = text[start:end]
        n = len(words(piece))
        if n:
            out.append(Sentence(piece, start, end, n, sentence_hash(piece) if n >= MIN_WORDS else None))
    return out


def without(text: str, dropped: list[Sentence]) -> str:
    """``text`` with the ``dropped`` sentences taken out (what is left between them, joined by a space)."""
    pieces, at = [], 0
    for s in sorted(dropped, key=lambda s: s.start):
        pieces.append(text[at:s.start])
        at = s.end
    pieces.append(text[at:])
    return " ".join(p.strip() for p in pieces if p.strip())
