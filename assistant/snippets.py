"""The bounded views of a contributed chunk.

A paid answer's citations show a chunk's first ``SNIPPET_CHARS`` characters (whitespace
collapsed, cut at a word). Search, open to any key whatever its balance, shows less: its
``preview`` is at most ``SNIPPET_CHARS`` and at most half of the chunk, so no chunk is ever shown
whole, however short (a chat message, a one-line fact). Both are fixed per chunk, not chosen by
the query, so no run of searches reads more of a chunk than its preview: the knowledge base is
read whole only through paid answers, whose price credits the cited.
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


def preview(text: str) -> str:
    """What search shows of a chunk: its opening, at most ``SNIPPET_CHARS`` and at most half of it
    (so always cut, "…" at the end), never the whole chunk."""
    flat = " ".join(text.split())
    if len(flat) < 2:
        return "…"
    return snippet(flat, min(SNIPPET_CHARS, len(flat) // 2))
