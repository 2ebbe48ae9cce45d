"""Relative dates in a message read against when it was said."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from assistant.chat.dates import (
    REPORTED_WITHIN_DAYS,
    Resolved,
    Window,
    annotate,
    asked_window,
    resolve,
)

# A Saturday, so "last Friday" is the day before and "last Saturday" a week before.
SATURDAY = date(2023, 7, 15)


def meaning(phrase: str, said: date | datetime = SATURDAY) -> str:
    found = resolve(phrase, said)
    assert len(found) == 1, found
    return found[0].meaning


@pytest.mark.parametrize(
    ("phrase", "means"),
    [
        ("yesterday", "14 July 2023"),
        ("today", "15 July 2023"),
        ("tonight", "15 July 2023"),
        ("this morning", "15 July 2023"),
        ("tomorrow", "16 July 2023"),
        ("last night", "14 July 2023"),
    ],
)
def test_single_day_words(phrase: str, means: str) -> None:
    assert meaning(phrase) == means


@pytest.mark.parametrize(
    ("phrase", "means"),
    [
        ("last week", "the week before 15 July 2023"),
        ("next week", "the week after 15 July 2023"),
        ("this week", "the week of 15 July 2023"),
        ("last weekend", "the weekend before 15 July 2023"),
        ("this weekend", "the weekend of 15 July 2023"),
    ],
)
def test_weeks_and_weekends_are_named_relative_to_the_day(phrase: str, means: str) -> None:
    assert meaning(phrase) == means


@pytest.mark.parametrize(
    ("phrase", "means"),
    [
        ("last Friday", "the Friday before 15 July 2023, 14 July 2023"),
        # The same weekday as the day it was said is a week back, not that day.
        ("last Saturday", "the Saturday before 15 July 2023, 8 July 2023"),
        ("last Monday", "the Monday before 15 July 2023, 10 July 2023"),
        ("next Friday", "the Friday after 15 July 2023, 21 July 2023"),
        ("next Saturday", "the Saturday after 15 July 2023, 22 July 2023"),
        ("next Sunday", "the Sunday after 15 July 2023, 16 July 2023"),
    ],
)
def test_weekdays_give_the_reference_and_the_date(phrase: str, means: str) -> None:
    assert meaning(phrase) == means


def test_months_cross_year_boundaries() -> None:
    assert meaning("last month", date(2023, 1, 10)) == "December 2022"
    assert meaning("next month", date(2023, 12, 10)) == "January 2024"
    assert meaning("next month") == "August 2023"
    assert meaning("2 months ago", date(2023, 1, 31)) == "November 2022"


def test_years() -> None:
    assert meaning("last year") == "2022"
    assert meaning("next year") == "2024"
    assert meaning("this year") == "2023"
    assert meaning("3 years ago") == "2020"


@pytest.mark.parametrize(
    ("phrase", "means"),
    [
        ("3 days ago", "12 July 2023"),
        ("20 days ago", "25 June 2023"),
        ("a day ago", "14 July 2023"),
        ("a couple of days ago", "13 July 2023"),
        ("two weeks ago", "two weeks before 15 July 2023"),
        ("Two weeks ago", "two weeks before 15 July 2023"),
        ("3 weeks ago", "3 weeks before 15 July 2023"),
        ("a week ago", "a week before 15 July 2023"),
        ("a couple of weekends ago", "a couple of weekends before 15 July 2023"),
        ("five days from now", "20 July 2023"),
        ("two days later", "17 July 2023"),
    ],
)
def test_counted_units_ago_and_ahead(phrase: str, means: str) -> None:
    assert meaning(phrase) == means


def test_resolve_reports_each_phrase_where_it_is() -> None:
    text = "I went yesterday and again last Friday."
    found = resolve(text, datetime(2023, 7, 15, 9, 30))
    assert found == [
        Resolved(7, 16, "yesterday", "14 July 2023"),
        Resolved(27, 38, "last Friday", "the Friday before 15 July 2023, 14 July 2023"),
    ]
    assert [text[r.start:r.end] for r in found] == ["yesterday", "last Friday"]


def test_the_day_of_a_datetime_is_its_own_date_in_its_offset() -> None:
    # 23:30 at UTC-5 is still the 15th where it was said.
    late = datetime(2023, 7, 15, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert meaning("yesterday", late) == "14 July 2023"


def test_annotate_adds_each_meaning_in_brackets() -> None:
    said = datetime(2023, 5, 8, 13, 56)
    assert annotate("I went to a support group yesterday.", said) == "I went to a support group yesterday (7 May 2023)."
    assert annotate("Yesterday I ran; last week I swam.", said) == (
        "Yesterday (7 May 2023) I ran; last week (the week before 8 May 2023) I swam.")


def test_annotate_is_case_insensitive_and_keeps_the_words_as_written() -> None:
    assert annotate("YESTERDAY was long. Last Friday too.", SATURDAY) == (
        "YESTERDAY (14 July 2023) was long. Last Friday (the Friday before 15 July 2023, 14 July 2023) too.")


def test_annotate_without_a_time_returns_the_text_unchanged() -> None:
    assert annotate("I went to a support group yesterday.", None) == "I went to a support group yesterday."


@pytest.mark.parametrize(
    "text",
    [
        "Paris is the capital of France.",
        "I went there recently.",
        "That was a while ago.",
        "Lasting weekends of daytime fun.",  # words that only contain the phrases
        "See you in a day or two.",  # a count of days without "ago", "from now" or "later"
    ],
)
def test_text_without_relative_dates_is_unchanged(text: str) -> None:
    assert resolve(text, SATURDAY) == []
    assert annotate(text, SATURDAY) == text


@pytest.mark.parametrize(
    ("phrase", "said", "means"),
    [
        # "Last summer" is the latest summer that has ended: this year's once it is over.
        ("last summer", date(2023, 12, 26), "summer 2023"),
        ("last summer", date(2023, 9, 1), "summer 2023"),
        ("last summer", date(2023, 8, 11), "summer 2022"),  # still summer: the one before
        ("last summer", date(2023, 5, 8), "summer 2022"),
        ("next summer", date(2023, 5, 8), "summer 2023"),
        ("next summer", date(2023, 7, 1), "summer 2024"),
        ("this summer", date(2023, 7, 1), "summer 2023"),
        ("this summer", date(2023, 2, 1), "summer 2023"),
        ("last fall", date(2023, 12, 1), "autumn 2023"),
        ("last spring", date(2023, 4, 1), "spring 2022"),
        # A winter is named by the year of its December.
        ("last winter", date(2024, 1, 15), "winter 2022"),
        ("last winter", date(2024, 3, 15), "winter 2023"),
        ("this winter", date(2024, 1, 15), "winter 2023"),
        ("next winter", date(2024, 1, 15), "winter 2024"),
        ("next winter", date(2023, 10, 1), "winter 2023"),
    ],
)
def test_seasons_are_the_nearest_one_in_the_direction_said(phrase: str, said: date, means: str) -> None:
    assert meaning(phrase, said) == means


@pytest.mark.parametrize(
    ("phrase", "means"),
    [
        ("last Tues", "the Tuesday before 15 July 2023, 11 July 2023"),
        ("last Fri.", "the Friday before 15 July 2023, 14 July 2023"),
        ("next Thurs", "the Thursday after 15 July 2023, 20 July 2023"),
        ("last Sun", "the Sunday before 15 July 2023, 9 July 2023"),
    ],
)
def test_shortened_weekdays(phrase: str, means: str) -> None:
    assert meaning(phrase) == means


def test_shortened_weekdays_only_with_a_capital() -> None:
    # "sat", "sun" and "wed" are words of their own.
    assert resolve("We sat in the last sun of the day.", SATURDAY) == []
    assert resolve("They last wed in June.", SATURDAY) == []
    assert resolve("Last month was busy.", SATURDAY)[0].meaning == "June 2023"


@pytest.mark.parametrize(
    ("text", "means"),
    [
        ("I won my fourth tournament on Friday!", "the Friday before 15 July 2023, 14 July 2023"),
        ("On Monday, I got great news.", "the Monday before 15 July 2023, 10 July 2023"),
        ("I started a new job on monday", "the Monday before 15 July 2023, 10 July 2023"),
        ("We'll meet on Friday.", "the Friday after 15 July 2023, 21 July 2023"),
        ("I'm gonna bake a cake on Sunday.", "the Sunday after 15 July 2023, 16 July 2023"),
    ],
)
def test_a_bare_weekday_is_read_by_the_tense_of_its_sentence(text: str, means: str) -> None:
    assert meaning(text) == means


@pytest.mark.parametrize(
    "text",
    [
        "Let's meet on Monday at the park.",  # no tense marked
        "I'm so excited for the show on Monday!",  # "excited" after "so" is an adjective
        "I walked on Sunday and will run again.",  # past and future: unsure
        "I need to see you on Friday.",  # "need" is not a past form
        "He said we'd meet on Friday.",  # a reported plan: past and future
        "I went swimming on Saturday.",  # said on a Saturday: today, or a week ago?
    ],
)
def test_a_bare_weekday_without_one_clear_tense_is_left_as_it_is(text: str) -> None:
    assert resolve(text, SATURDAY) == []


def test_each_sentence_tells_its_own_weekday_tense() -> None:
    text = "I swam on Thursday. We'll meet on Friday."
    assert [(r.phrase, r.meaning) for r in resolve(text, SATURDAY)] == [
        ("on Thursday", "the Thursday before 15 July 2023, 13 July 2023"),
        ("on Friday", "the Friday after 15 July 2023, 21 July 2023")]


def test_this_past_is_last() -> None:
    assert meaning("this past weekend") == "the weekend before 15 July 2023"
    assert meaning("this past Friday") == "the Friday before 15 July 2023, 14 July 2023"


@pytest.mark.parametrize(
    ("question", "first", "last"),
    [
        ("Which team did John sign with on 21 May, 2023?", date(2023, 5, 21), date(2023, 5, 21)),
        ("What did Gina get accepted for on May 23, 2023?", date(2023, 5, 23), date(2023, 5, 23)),
        ("What book did Tim finish on 8th December, 2023?", date(2023, 12, 8), date(2023, 12, 8)),
        ("Where was the picture shared on December 1,2023 taken?", date(2023, 12, 1), date(2023, 12, 1)),
        ("what did I do on the 3rd of sept. 2024", date(2024, 9, 3), date(2024, 9, 3)),
        ("What did John share with Tim in January 2024?", date(2024, 1, 1), date(2024, 1, 31)),
        ("What happened in february 2024?", date(2024, 2, 1), date(2024, 2, 29)),
        ("Which tournament did Nate win in the beginning of November 2022?", date(2022, 11, 1), date(2022, 11, 30)),
        ("Where was Tim in the week before 16 November 2023?", date(2023, 11, 9), date(2023, 11, 15)),
        ("What did Tim plan for the week after 16 November 2023?", date(2023, 11, 17), date(2023, 11, 23)),
        ("What did Tim do in the week of 16 November 2023?", date(2023, 11, 13), date(2023, 11, 19)),
        ("When did John get an ankle injury in 2023?", date(2023, 1, 1), date(2023, 12, 31)),
        # The most precise date named wins; an impossible day falls back to its month.
        ("In 2023, what did Maria say on 4 May 2023?", date(2023, 5, 4), date(2023, 5, 4)),
        ("What happened on 31 February 2023?", date(2023, 2, 1), date(2023, 2, 28)),
    ],
)
def test_asked_window_reads_the_days_a_question_names(question: str, first: date, last: date) -> None:
    assert asked_window(question) == Window(first, last)


@pytest.mark.parametrize("question", [
    "What may I bring to the party?",  # "may" is a verb without a year beside it
    "What did Maria do in May?",  # no year: which May is not known
    "Who won the 2022 final?",
    "What did Caroline say yesterday?",
])
def test_asked_window_is_none_without_a_dated_day(question: str) -> None:
    assert asked_window(question) is None


def test_a_window_holds_messages_said_then_or_within_a_week_after() -> None:
    may_7 = Window(date(2023, 5, 7), date(2023, 5, 7))
    assert may_7.said_within(date(2023, 5, 7))
    assert may_7.said_within(date(2023, 5, 7) + timedelta(days=REPORTED_WITHIN_DAYS))  # "last Sunday"
    assert not may_7.said_within(date(2023, 5, 6))
    assert not may_7.said_within(date(2023, 5, 8) + timedelta(days=REPORTED_WITHIN_DAYS))
    assert may_7.said_range() == (datetime(2023, 5, 7), datetime(2023, 5, 15))
