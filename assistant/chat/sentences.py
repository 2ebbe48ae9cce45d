"""Sentence splitting for answers and source chunks.

Hand-rolled on purpose: the sentence tokenizer llama-index ships (NLTK Punkt) splits after
"U.S." and "Dr." and takes about 0.3 s to load on first use; this splitter is a few regexes,
keeps citation markers with the sentence they end, and is pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words that end in a full stop without ending a sentence.
_ABBREVIATIONS = frozenset(
    [
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "gen", "col", "lt", "sgt",
        "capt", "gov", "sen", "rep", "rev", "fr", "vs", "etc", "e.g", "i.e", "al", "inc", "ltd",
        "co", "corp", "no", "nos", "vol", "vols", "op", "opp", "pp", "eds",
        "fig", "approx", "ca", "cf", "jan", "feb", "mar", "apr", "jun",
        "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "u.n", "a.d", "b.c",
    ]
)
# A candidate boundary: terminal punctuation, optional closing quotes/brackets, optional
# citation markers (which belong to the sentence they follow), then whitespace.
_BOUNDARY = re.compile(r"""[.!?]+["'”’)\]]*(?:\s*\[\d+(?:\s*,\s*\d+)*\])*(?=\s+|$)""")
_NEXT_STARTS = re.compile(r"""\s+["'“‘(\[]?[A-Z0-9]""")
_LAST_WORD = re.compile(r"(\S+)$")


@dataclass(frozen=True)
class Span:
    """One sentence: its text and where it sits in the original string."""

    text: str
    start: int
    end: int


# Abbreviations only before a number: "No. 5", "Nos. 3-4", "Op. 27", "pp. 10-12"; otherwise the
# word ends a sentence ("No. The band is from Bulgaria.").
_BEFORE_NUMBER = frozenset(["no", "nos", "op", "pp", "vol", "vols"])
_NUMBER_NEXT = re.compile(r"\d|[IVXLC]+\b")


def _is_abbreviation(before: str, after: str = "") -> bool:
    match = _LAST_WORD.search(before)
    if not match:
        return False
    word = match.group(1).lstrip("(\"'“").rstrip(".").casefold()
    if word in _BEFORE_NUMBER:
        return bool(_NUMBER_NEXT.match(after.lstrip()))
    # Single letters are initials ("J. R. R. Tolkien"); dotted acronyms like "U.S" too.
    return word in _ABBREVIATIONS or len(word) == 1 or bool(re.fullmatch(r"(?:[a-z]\.)+[a-z]", word))


def split_spans(text: str) -> list[Span]:
    """Sentences of the text, with offsets; blank pieces are dropped."""
    spans: list[Span] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        end = match.end()
        rest = text[end:]
        if rest and not _NEXT_STARTS.match(rest):
            continue  # "3.5 million", "e.g. a": the next word does not start a sentence
        punct_at = match.start()
        if text[punct_at] == "." and _is_abbreviation(text[start:punct_at], rest):
            if not rest or not _NEXT_STARTS.match(rest):
                continue
            # "in the U.S. The next..." is ambiguous; keep it whole unless a marker follows.
            if "[" not in match.group(0):
                continue
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append(Span(piece.strip(), start + lead, end))
        start = end
    tail = text[start:]
    if tail.strip():
        lead = len(tail) - len(tail.lstrip())
        spans.append(Span(tail.strip(), start + lead, len(text)))
    return spans


def split_sentences(text: str) -> list[str]:
    """Sentences of the text, stripped."""
    return [s.text for s in split_spans(text)]
