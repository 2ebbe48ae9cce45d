"""Who said a piece of knowledge and when: a message's speaker and time, a row's author and date.

A chat message's text rarely names its speaker ("I ran a 5K charity run") or its date ("yesterday"),
yet both are part of what it says. They travel beside the text as fields (``speaker``,
``timestamp`` in ISO 8601) and are folded into what the index embeds and matches, so a question
about a speaker or a day finds the speaker's own messages.
"""

from __future__ import annotations

from datetime import date, datetime

MAX_SPEAKER_CHARS = 200
MAX_TIMESTAMP_CHARS = 40


def parse_speaker(value: object) -> str | None:
    """The speaker as given, trimmed; None for none. Raises ValueError for a bad one."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("'speaker' must be a string")  # noqa: TRY004 - pydantic and the readers report ValueErrors
    speaker = " ".join(value.split())
    if len(speaker) > MAX_SPEAKER_CHARS:
        raise ValueError(f"'speaker' is longer than {MAX_SPEAKER_CHARS} characters")
    return speaker or None


def parse_timestamp(value: object) -> str | None:
    """The timestamp in normalised ISO 8601 ("2023-05-08T13:56:00", an offset kept when given);
    None for none. Raises ValueError for text that is not an ISO 8601 date or date-time."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP_CHARS:
        raise ValueError("'timestamp' must be an ISO 8601 date or date-time string, e.g. 2023-05-08T13:56")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"'timestamp' {value!r} is not ISO 8601 (e.g. 2023-05-08 or 2023-05-08T13:56)") from None
    return moment.isoformat()


def moment(timestamp: str | None) -> datetime | None:
    """The stored timestamp as a datetime (naive when it was given without an offset)."""
    return datetime.fromisoformat(timestamp) if timestamp else None


def day_text(when: date) -> str:
    """A date as people write it: "8 May 2023"."""
    return f"{when.day} {when:%B %Y}"


def context_line(speaker: str | None, timestamp: str | None) -> str:
    """What the index adds before a said text: "Maria, 8 May 2023:", "Maria:", "8 May 2023:" or ""."""
    when = moment(timestamp)
    parts = [p for p in (speaker, day_text(when) if when else None) if p]
    return ", ".join(parts) + ":" if parts else ""
