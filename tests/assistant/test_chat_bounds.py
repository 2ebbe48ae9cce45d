"""The chat bounds' arithmetic with the embedder's own tokenizer: what is tokenized, and when."""

from __future__ import annotations

import pytest

from assistant.chat.bounds import CHARS_PER_TOKEN, ChatBounds, check_messages, needs_tokens
from assistant.errors import ApiError
from retrieval.embedder import Embedder

BOUNDS = ChatBounds(max_messages=10, max_question_tokens=50, max_message_tokens=100, max_history_tokens=200)


@pytest.mark.parametrize("text", ["plain English words", "!!!???...", "日本語のテキスト", "ééé ñ ü", "x" * 500,
                                  "\u200b\u200b zero width", "a\tb\nc", "🙂🙃🙂", "１２３ full width"])
def test_a_word_piece_covers_at_least_one_character(embedder: Embedder, text: str) -> None:
    # What lets check_messages skip the tokenizer for texts no longer than their bound.
    assert len(embedder.token_ids(text)) <= len(text)


def counter(embedder: Embedder) -> tuple[list[str], object]:
    seen: list[str] = []

    def count(text: str) -> int:
        seen.append(text)
        return len(embedder.token_ids(text))
    return seen, count


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def test_short_texts_are_never_tokenized(embedder: Embedder) -> None:
    seen, count = counter(embedder)
    messages = [user("a" * 70), {"role": "assistant", "content": "b" * 70}, user("why " * 12)]
    assert not needs_tokens(messages, BOUNDS)
    check_messages(messages, BOUNDS, count)  # type: ignore[arg-type]
    assert seen == []


def test_a_text_longer_in_characters_than_its_bound_is_counted(embedder: Embedder) -> None:
    seen, count = counter(embedder)
    within = user("octopus " * 10)  # 80 characters, 10 word pieces: within 50 tokens
    assert needs_tokens([within], BOUNDS)
    check_messages([within], BOUNDS, count)  # type: ignore[arg-type]
    assert seen == [within["content"]]
    with pytest.raises(ApiError) as err:
        check_messages([user("octopus " * 51)], BOUNDS, count)  # type: ignore[arg-type]
    assert (err.value.code, err.value.param) == ("question_too_long", "messages[0].content")
    assert "50 tokens (it has 51)" in err.value.message


def test_far_over_is_refused_on_characters_without_the_tokenizer(embedder: Embedder) -> None:
    seen, count = counter(embedder)
    with pytest.raises(ApiError) as err:
        check_messages([user("x" * (50 * CHARS_PER_TOKEN + 1))], BOUNDS, count)  # type: ignore[arg-type]
    assert err.value.code == "question_too_long" and seen == []
    with pytest.raises(ApiError) as err:
        check_messages([user("x" * 1001), user("why?")], BOUNDS, count)  # type: ignore[arg-type]
    assert (err.value.code, err.value.param) == ("message_too_long", "messages[0].content") and seen == []


def test_the_history_is_counted_only_when_its_characters_are_over(embedder: Embedder) -> None:
    seen, count = counter(embedder)
    history = [user("octopus " * 30), user("octopus " * 30), user("octopus " * 30)]  # 240 chars each, 30 tokens
    check_messages(history, BOUNDS, count)  # type: ignore[arg-type]  # 90 tokens: fine
    assert len(seen) == 3
    history = [user("octopus " * 80)] * 3 + [user("why?")]  # 242 tokens in 1,924 characters
    with pytest.raises(ApiError) as err:
        check_messages(history, BOUNDS, count)  # type: ignore[arg-type]
    assert err.value.code == "history_too_long" and "they have" in err.value.message
    with pytest.raises(ApiError) as err:
        check_messages([user("hi")] * 11, BOUNDS, count)  # type: ignore[arg-type]
    assert err.value.code == "too_many_messages"
