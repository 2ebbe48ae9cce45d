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
    """Raise a 400 naming the message when the request is over a bound; the last message is the question.

    Tokenizes only what its characters cannot settle: a word piece covers at least one character
    of text, so a text no longer in characters than its bound in tokens is within it.
    """
    _check_characters(messages, bounds)
    last = len(messages) - 1
    sizes: list[int] = []  # tokens where counted, else characters (never fewer than the tokens)
    counted: list[bool] = []
    for i, m in enumerate(messages):
        limit = _limit(i, last, bounds)
        size, count = len(m["content"]), False
        if size > limit:
            size, count = count_tokens(m["content"]), True
            if size > limit:
                raise _too_long(i, last, f"{limit} tokens (it has {size})")
        sizes.append(size)
        counted.append(count)
    if sum(sizes) > bounds.max_history_tokens:
        total = sum(size if count else count_tokens(m["content"]) for m, size, count in zip(messages, sizes, counted))
        if total > bounds.max_history_tokens:
            raise _history(f"{bounds.max_history_tokens} tokens (they have {total})")


def needs_tokens(messages: Sequence[dict[str, str]], bounds: ChatBounds) -> bool:
    """Whether ``check_messages`` will tokenize anything (a request with large messages): then it is
    worth running off the event loop."""
    last = len(messages) - 1
    return (any(len(m["content"]) > _limit(i, last, bounds) for i, m in enumerate(messages))
            or sum(len(m["content"]) for m in messages) > bounds.max_history_tokens)


def _check_characters(messages: Sequence[dict[str, str]], bounds: ChatBounds) -> None:
    if len(messages) > bounds.max_messages:
        raise ApiError(400, f"at most {bounds.max_messages} messages per request", "too_many_messages", "messages")
    last = len(messages) - 1
    for i, m in enumerate(messages):
        limit = _limit(i, last, bounds) * CHARS_PER_TOKEN
        if len(m["content"]) > limit:
            raise _too_long(i, last, f"{limit} characters")
    limit = bounds.max_history_tokens * CHARS_PER_TOKEN
    if sum(len(m["content"]) for m in messages) > limit:
        raise _history(f"{limit} characters")


def _limit(i: int, last: int, bounds: ChatBounds) -> int:
    return bounds.max_question_tokens if i == last else bounds.max_message_tokens


def _too_long(i: int, last: int, what: str) -> ApiError:
    param = f"messages[{i}].content"
    if i == last:
        return ApiError(400, f"the question is longer than {what}", "question_too_long", param)
    return ApiError(400, f"message {i} is longer than {what}", "message_too_long", param)


def _history(what: str) -> ApiError:
    return ApiError(400, f"the messages together are longer than {what}; send fewer or shorter ones",
                    "history_too_long", "messages")
