"""What a chat request may carry, checked before it costs a search, a model call or a price.

Sizes are the embedder's word pieces (what the search and the extractive responder read). A
cheap bound on characters comes first, so a megabyte of text is refused without being
tokenized: a word piece is at most one character of text or one word of up to 100 characters
(longer words become one unknown piece), and English runs 4-6 characters a piece, so
``CHARS_PER_TOKEN`` characters a piece is generous for any real text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.errors import ApiError

CHARS_PER_TOKEN = 10


@dataclass(frozen=True)
class ChatBounds:
    """The limits of one chat request (``OPENCHAT_CHAT_MAX_*``)."""

    max_messages: int
    max_question_tokens: int
    max_message_tokens: int
    max_history_tokens: int


def check_messages(messages: Sequence[dict[str, str]], bounds: ChatBounds, count_tokens: Callable[[str], int]) -> None:
    """Raise a 400 naming the message when the request is over a bound; the last message is the question."""
    if len(messages) > bounds.max_messages:
        raise ApiError(400, f"at most {bounds.max_messages} messages per request", "too_many_messages", "messages")
    last = len(messages) - 1
    # Characters first: a cheap refusal of anything far over every bound.
    total_chars = 0
    for i, m in enumerate(messages):
        limit = bounds.max_question_tokens if i == last else bounds.max_message_tokens
        if len(m["content"]) > limit * CHARS_PER_TOKEN:
            raise _too_long(i, last, f"{limit * CHARS_PER_TOKEN} characters")
        total_chars += len(m["content"])
    if total_chars > bounds.max_history_tokens * CHARS_PER_TOKEN:
        raise _history(f"{bounds.max_history_tokens * CHARS_PER_TOKEN} characters")
    total = 0
    for i, m in enumerate(messages):
        limit = bounds.max_question_tokens if i == last else bounds.max_message_tokens
        tokens = count_tokens(m["content"])
        if tokens > limit:
            raise _too_long(i, last, f"{limit} tokens (it has {tokens})")
        total += tokens
    if total > bounds.max_history_tokens:
        raise _history(f"{bounds.max_history_tokens} tokens (they have {total})")


def _too_long(i: int, last: int, what: str) -> ApiError:
    param = f"messages[{i}].content"
    if i == last:
        return ApiError(400, f"the question is longer than {what}", "question_too_long", param)
    return ApiError(400, f"message {i} is longer than {what}", "message_too_long", param)


def _history(what: str) -> ApiError:
    return ApiError(400, f"the messages together are longer than {what}; send fewer or shorter ones",
                    "history_too_long", "messages")
