"""Who said a piece of knowledge and when: speakers and timestamps as rows, snippets and the index read them."""

from __future__ import annotations

from datetime import date

import pytest

from retrieval.said import (
    MAX_SPEAKER_CHARS,
    MAX_TIMESTAMP_CHARS,
    context_line,
    day_text,
    moment,
    parse_speaker,
    parse_timestamp,
)


def test_speaker_is_trimmed_and_inner_spaces_collapsed() -> None:
    assert parse_speaker("  Caroline \t  Smith\n") == "Caroline Smith"
    assert parse_speaker("Maria") == "Maria"


@pytest.mark.parametrize("value", [None, "", "   \n"])
def test_no_speaker_is_none(value: str | None) -> None:
    assert parse_speaker(value) is None


@pytest.mark.parametrize("value", [5, 1.5, ["Maria"], {"name": "Maria"}, True])
def test_a_speaker_that_is_not_a_string_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="'speaker' must be a string"):
        parse_speaker(value)


def test_speaker_length_is_counted_after_collapsing_spaces() -> None:
    assert parse_speaker("a" * MAX_SPEAKER_CHARS) == "a" * MAX_SPEAKER_CHARS
    # Spaces that collapse away do not count against the limit.
    assert parse_speaker("a  b" + " " * MAX_SPEAKER_CHARS) == "a b"
    with pytest.raises(ValueError, match=f"longer than {MAX_SPEAKER_CHARS}"):
        parse_speaker("a" * (MAX_SPEAKER_CHARS + 1))


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2023-05-08T13:56", "2023-05-08T13:56:00"),
        ("2023-05-08T13:56:07", "2023-05-08T13:56:07"),
        ("2023-05-08 13:56", "2023-05-08T13:56:00"),
        ("2023-05-08", "2023-05-08T00:00:00"),
        (" 2023-05-08T13:56 ", "2023-05-08T13:56:00"),
        ("2023-05-08T13:56+02:00", "2023-05-08T13:56:00+02:00"),
        ("2023-05-08T13:56:00-05:30", "2023-05-08T13:56:00-05:30"),
        ("2023-05-08T13:56Z", "2023-05-08T13:56:00+00:00"),
    ],
)
def test_timestamps_are_normalised_iso_8601(given: str, stored: str) -> None:
    assert parse_timestamp(given) == stored


@pytest.mark.parametrize("value", [None, ""])
def test_no_timestamp_is_none(value: str | None) -> None:
    assert parse_timestamp(value) is None


@pytest.mark.parametrize("value", ["yesterday", "8 May 2023", "2023-13-01", "2023-05-08T25:00", "05/08/2023"])
def test_a_timestamp_that_is_not_iso_8601_is_refused_with_an_example(value: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_timestamp(value)
    message = str(err.value)
    # The message names the bad value and shows what would be accepted.
    assert repr(value) in message and "ISO 8601" in message and "2023-05-08" in message


@pytest.mark.parametrize("value", [20230508, 2023.5, ["2023-05-08"], True])
def test_a_timestamp_that_is_not_a_string_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="'timestamp' must be an ISO 8601"):
        parse_timestamp(value)


def test_an_overlong_timestamp_is_refused_before_parsing() -> None:
    # Padding would parse once stripped, but anything over the column's width is refused.
    padded = "2023-05-08" + " " * MAX_TIMESTAMP_CHARS
    with pytest.raises(ValueError, match="'timestamp' must be an ISO 8601"):
        parse_timestamp(padded)


def test_moment_reads_back_a_stored_timestamp() -> None:
    said = moment("2023-05-08T13:56:00")
    assert said is not None and said.date() == date(2023, 5, 8) and said.tzinfo is None
    assert moment(None) is None
    assert moment("") is None


@pytest.mark.parametrize(
    ("day", "text"),
    [(date(2023, 5, 8), "8 May 2023"), (date(1999, 12, 31), "31 December 1999"), (date(2024, 2, 29), "29 February 2024")],
)
def test_day_text_is_written_as_people_write_it(day: date, text: str) -> None:
    # No leading zero on the day, the month spelled out.
    assert day_text(day) == text


def test_context_line_with_speaker_and_time() -> None:
    assert context_line("Maria", "2023-05-08T13:56:00") == "Maria, 8 May 2023:"


def test_context_line_with_speaker_only() -> None:
    assert context_line("Maria", None) == "Maria:"


def test_context_line_with_time_only() -> None:
    assert context_line(None, "2023-05-08T13:56:00+02:00") == "8 May 2023:"


def test_context_line_with_neither_is_empty() -> None:
    assert context_line(None, None) == ""
    assert context_line("", "") == ""
