"""The bounded view of a contributed chunk that is shown without being paid for.

Search results and an answer's citations show a chunk's opening only: its first
``SNIPPET_CHARS`` characters (whitespace collapsed), cut at a word. The opening is fixed per
chunk, not chosen by the query, so no sequence of searches reads more of a chunk than its head:
the knowledge base is read whole only through paid answers, whose price credits the cited.
"""

from __future__ import annotations

SNIPPET_CHARS = 300


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """``text``'s opening, at most ``limit`` characters, whitespace collapsed, cut at a word ("…" when cut)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    # A single word longer than the limit is cut mid-word rather than shown whole.
    return (head.rsplit(" ", 1)[0] if " " in head else head) + "…"
