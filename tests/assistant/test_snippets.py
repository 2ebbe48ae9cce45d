"""The bounded opening of a chunk that search and citations show."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from assistant.snippets import SNIPPET_CHARS, preview, snippet


def test_short_text_is_shown_whole_with_whitespace_collapsed() -> None:
    assert snippet("  Koalas   eat\n eucalyptus. ") == "Koalas eat eucalyptus."


def test_long_text_is_cut_at_a_word() -> None:
    text = " ".join(["octopus"] * 100)
    cut = snippet(text)
    assert len(cut) <= SNIPPET_CHARS and cut.endswith("octopus…")


def test_one_long_word_is_cut_inside_it() -> None:
    assert snippet("x" * 1000) == "x" * (SNIPPET_CHARS - 1) + "…"


@given(st.text(max_size=2000), st.integers(min_value=2, max_value=500))
def test_never_longer_than_the_limit_and_always_the_opening(text: str, limit: int) -> None:
    cut = snippet(text, limit)
    flat = " ".join(text.split())
    assert len(cut) <= limit
    assert cut == flat or (cut.endswith("…") and flat.startswith(cut[:-1]))


def test_a_preview_of_a_short_text_is_at_most_half_of_it() -> None:
    assert preview("Octopuses have three hearts.") == "Octopuses…"
    assert preview("x") == "…" and preview("") == "…"


@given(st.text(max_size=2000))
def test_a_preview_is_never_the_whole_text(text: str) -> None:
    cut, flat = preview(text), " ".join(text.split())
    assert cut.endswith("…") and flat.startswith(cut[:-1])
    assert len(cut) <= max(1, min(SNIPPET_CHARS, len(flat) // 2))
