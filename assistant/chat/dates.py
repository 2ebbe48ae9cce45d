"""Relative dates in a message, read against when it was said.

"I went to a support group yesterday", said on 8 May 2023, means 7 May 2023; "last week" means
the week before 8 May 2023. An answer that quotes a message keeps its words and adds what each
relative date resolves to in brackets, so a "when" question gets a date, not "yesterday".

Only expressions whose meaning is fixed by the moment of speaking are resolved; a vague one
("recently", "a while ago") is left as it is. Pure functions over text and a datetime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from assistant.chat.shapes import NUMBER_WORDS
from retrieval.said import day_text

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Weekdays as people shorten them in messages ("last Tues", "next Fri."): read only when written
# with a capital, since "sat", "sun" and "wed" are words of their own.
_WEEKDAY_ABBREVIATIONS = {"mon": 0, "tue": 1, "tues": 1, "wed": 2, "weds": 2, "thu": 3, "thur": 3, "thurs": 3,
                          "fri": 4, "sat": 5, "sun": 6}
# How many of a unit: a number word, or an article or "a couple of" ("a week ago", "a couple of days ago").
_COUNT_WORDS = {**NUMBER_WORDS, "a": 1, "an": 1, "couple of": 2, "a couple of": 2}
_UNITS = r"(?P<unit>day|week|weekend|month|year)s?"
_COUNT = r"(?P<count>\d{1,3}|a couple of|couple of|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)"

_RELATIVE = re.compile(
    r"\b(?:"
    r"(?P<single>yesterday|today|tonight|tomorrow|this morning|this afternoon|this evening|last night)"
    rf"|(?P<dir>this\s+past|last|next|this|past|coming)\s+(?P<what>{'|'.join(_WEEKDAYS)}|week|weekend|month|year|summer|winter|spring|fall|autumn"
    rf"|(?P<short>{'|'.join(sorted(_WEEKDAY_ABBREVIATIONS, key=len, reverse=True))})\.?)"
    rf"|{_COUNT}\s+{_UNITS}\s+(?P<ago>ago|from now|later)"
    r")\b",
    re.IGNORECASE,
)


# "on Friday" with no "last" or "next": which Friday the sentence's tense tells ("I won on Friday"
# is the one before; "we'll meet on Friday" the one after). Unmarked or mixed tense: left as it is.
_BARE_WEEKDAY = re.compile(rf"\bon\s+(?P<day>{'|'.join(_WEEKDAYS)})\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?]+(?:\s|$)")
# Reported plans ("he said we'd meet on Friday") count as future: the past of "said" then makes
# the sentence mixed, and it is left alone.
_FUTURE = re.compile(r"\b(?:will|shall|would|gonna|going\s+to|plan(?:ning)?\s+to|hope\s+to|can['’]?t\s+wait|"
                     r"looking\s+forward)\b|['’](?:ll|d)\b", re.IGNORECASE)
# Past forms: the common irregular verbs and auxiliaries, and words in -ed but those that are
# not verbs in the past ("need", "indeed", "hundred").
_PAST = re.compile(r"\b(?:was|were|did|had|went|got|won|lost|made|saw|met|took|came|ran|said|told|gave|found|"
                   r"felt|bought|left|began|wrote|ate|drove|flew|sent|spent|caught|held|brought|heard|swam|sang|"
                   r"drank|slept|woke|wore|threw|fell|broke|chose|spoke|rode|grew|drew|built|sat|stood|"
                   r"taught|fought|kept|paid|sold|became|lent|shot|struck|understood|forgot)\b",
                   re.IGNORECASE)
# An -ed word after a present "be" or a degree word is an adjective ("I'm so excited", "we're tired").
_ED_WORD = re.compile(r"(?<![\w'’])(?:(?P<before>[\w'’]+)\s+)?(?P<word>[a-z]{2,}ed)\b", re.IGNORECASE)
_ADJECTIVE_BEFORE = frozenset(["i'm", "i’m", "im", "am", "is", "are", "you're", "you’re", "we're", "we’re",
                               "they're", "they’re", "it's", "it’s", "so", "very", "really", "be", "been", "being",
                               "feel", "feeling", "get", "getting", "too", "more", "most", "pretty", "super", "quite"])
_NOT_PAST = frozenset(["need", "indeed", "seed", "feed", "speed", "weed", "breed", "greed", "proceed", "exceed",
                       "succeed", "hundred", "sacred", "naked", "wicked", "beloved", "rugged", "shed", "bed", "red",
                       "wed"])


def _told_tense(sentence: str) -> str | None:
    """"past" or "future" when the sentence is marked for one of them only, else None."""
    future = bool(_FUTURE.search(sentence))
    past = bool(_PAST.search(sentence)) or any(
        m["word"].casefold() not in _NOT_PAST and (m["before"] or "").casefold() not in _ADJECTIVE_BEFORE
        for m in _ED_WORD.finditer(sentence))
    return "past" if past and not future else "future" if future and not past else None


def _sentence_around(text: str, start: int, end: int) -> str:
    """The sentence of ``text`` that holds the span [start, end)."""
    begin = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    after = _SENTENCE_END.search(text, end)
    return text[begin:after.start() if after else len(text)]


def _bare_weekday(text: str, match: re.Match[str], said: date) -> str | None:
    tense = _told_tense(_sentence_around(text, match.start(), match.end()))
    if tense is None:
        return None
    what = match.group("day").casefold()
    if _WEEKDAYS.index(what) == said.weekday():
        return None  # said that very weekday: today, or a week off? The words do not tell.
    return _weekday_beside(what, "before" if tense == "past" else "after", said)


def _weekday_beside(weekday: str, side: str, said: date) -> str:
    """The nearest ``weekday`` before or after the day ``said`` (a week off when it is that
    weekday): "the Friday before 10 July 2022, 8 July 2022"."""
    step = -1 if side == "before" else 1
    gap = (step * (_WEEKDAYS.index(weekday) - said.weekday())) % 7 or 7
    day = said + timedelta(days=step * gap)
    return f"the {weekday.capitalize()} {side} {day_text(said)}, {day_text(day)}"


@dataclass(frozen=True)
class Resolved:
    """A relative date found in a text: where it is and what it means."""

    start: int
    end: int
    phrase: str
    meaning: str


def month_text(day: date) -> str:
    return f"{day:%B %Y}"


def _shift_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


# Where each season starts, as a 0-based month (meteorological seasons, northern hemisphere);
# a winter is named by the year its December falls in.
_SEASON_START = {"spring": 2, "summer": 5, "autumn": 8, "winter": 11}


def _season_year(season: str, direction: str, said: date) -> int:
    """The year of the season meant: "last" is the latest one that has ended by ``said`` (in
    December last summer is this year's), "next" the first that has not begun, "this" the one
    under way or else this year's."""
    start = _SEASON_START[season]
    months = said.year * 12 + said.month - 1 - start  # months since this season's start in year 0
    if direction in ("last", "past"):
        return (months - 3) // 12
    if direction in ("next", "coming"):
        return months // 12 + 1
    return months // 12 if months % 12 < 3 else said.year


def _count(word: str) -> int:
    word = word.casefold()
    return int(word) if word.isdigit() else _COUNT_WORDS.get(word, 1)


def _meaning(match: re.Match[str], said: date) -> str | None:
    single = match.group("single")
    if single:
        s = single.casefold()
        if s in ("yesterday", "last night"):
            return day_text(said - timedelta(days=1))
        if s == "tomorrow":
            return day_text(said + timedelta(days=1))
        return day_text(said)
    direction = " ".join((match.group("dir") or "").casefold().split())
    direction = "past" if direction == "this past" else direction  # "this past weekend"
    if direction:
        what = match.group("what").casefold()
        short = match.group("short")
        if short:
            if not short[0].isupper():
                return None
            what = _WEEKDAYS[_WEEKDAY_ABBREVIATIONS[short.casefold()]]
        ref = day_text(said)
        if what in _WEEKDAYS:
            if direction in ("last", "past"):
                return _weekday_beside(what, "before", said)
            if direction in ("next", "coming"):
                return _weekday_beside(what, "after", said)
            return f"the {what.capitalize()} of the week of {ref}"
        if what in ("week", "weekend"):
            side = {"last": "before", "past": "before", "next": "after", "coming": "after"}.get(direction, "of")
            return f"the {what} {side} {ref}"
        if what == "month":
            offset = {"last": -1, "past": -1, "next": 1, "coming": 1}.get(direction, 0)
            return month_text(_shift_months(said, offset))
        if what == "year":
            offset = {"last": -1, "past": -1, "next": 1, "coming": 1}.get(direction, 0)
            return str(said.year + offset)
        season = "autumn" if what == "fall" else what
        return f"{season} {_season_year(season, direction, said)}"
    count = _count(match.group("count"))
    unit = match.group("unit").casefold()
    sign = -1 if match.group("ago").casefold() == "ago" else 1
    if unit == "day":
        return day_text(said + timedelta(days=sign * count))
    if unit in ("week", "weekend"):
        # Counted as the message counts them: "two weeks ago" is "two weeks before ...", not "2".
        amount = " ".join(match.group("count").casefold().split())
        plural = "s" if count > 1 else ""
        return f"{amount} {unit}{plural} {'before' if sign < 0 else 'after'} {day_text(said)}"
    if unit == "month":
        return month_text(_shift_months(said, sign * count))
    return str(said.year + sign * count)


def resolve(text: str, said: datetime | date) -> list[Resolved]:
    """Every relative date in the text with its meaning on the day ``said``."""
    day = said.date() if isinstance(said, datetime) else said
    out: list[Resolved] = []
    for match in _RELATIVE.finditer(text):
        meaning = _meaning(match, day)
        if meaning:
            out.append(Resolved(match.start(), match.end(), match.group(0), meaning))
    for match in _BARE_WEEKDAY.finditer(text):
        meaning = _bare_weekday(text, match, day)
        if meaning:
            out.append(Resolved(match.start(), match.end(), match.group(0), meaning))
    return sorted(out, key=lambda r: r.start)


def annotate(text: str, said: datetime | date | None) -> str:
    """The text with each relative date's meaning in brackets after it: "yesterday (7 May 2023)"."""
    if said is None:
        return text
    parts: list[str] = []
    last = 0
    for r in resolve(text, said):
        # After a possessive, not inside it: "yesterday's (7 May 2023) class".
        end = r.end + 2 if text[r.end:r.end + 2] in ("'s", "’s") else r.end
        parts.append(text[last:end])
        parts.append(f" ({r.meaning})")
        last = end
    parts.append(text[last:])
    return "".join(parts)


# --- the time a question asks about ---------------------------------------------------------

# A message tells of what happened up to about a week before it was said ("last Saturday", "last
# week"): a question about a day or a month is answered by messages said then or this much later.
REPORTED_WITHIN_DAYS = 7

_MONTHS = {name: i for i, name in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"), start=1)}
_MONTHS.update({"jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "sept": 9,
                "oct": 10, "nov": 11, "dec": 12})
_MONTH = rf"(?P<month>{'|'.join(sorted(_MONTHS, key=len, reverse=True))})\.?"
_YEAR = r"(?P<year>(?:19|20)\d\d)"
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
# A month only with a year or a day next to it: "may" alone is a verb. Hand-rolled rather than
# dateparser's search_dates: that reads "now", "May I" or "sat" as dates, and costs tens of ms.
_ASKED_DATES = (
    ("day", re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH},?\s*{_YEAR}\b", re.IGNORECASE)),
    ("day", re.compile(rf"\b{_MONTH}\s+{_DAY},?\s*{_YEAR}\b", re.IGNORECASE)),
    ("month", re.compile(rf"\b{_MONTH},?\s+{_YEAR}\b", re.IGNORECASE)),
    ("year", re.compile(rf"\b(?:in|during|of|since|throughout)\s+{_YEAR}\b", re.IGNORECASE)),
)
_WEEK_AROUND = re.compile(r"\bthe\s+week\s+(?P<side>before|after|of)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Window:
    """The days a question asks about, first and last included, and where the question names them."""

    first: date
    last: date
    span: tuple[int, int] = field(default=(0, 0), compare=False)

    def left_out_of(self, question: str) -> str:
        """The question without the words naming the days: what a message said then must answer
        (its date is checked by ``said_within``, not by the digits the message holds)."""
        start, end = self.span
        return " ".join(f"{question[:start]} {question[end:]}".split()) if end > start else question

    def said_within(self, said: date) -> bool:
        """Whether a message said on ``said`` can tell of these days (``REPORTED_WITHIN_DAYS``)."""
        return self.first <= said <= self.last + timedelta(days=REPORTED_WITHIN_DAYS)

    def said_range(self) -> tuple[datetime, datetime]:
        """The moments a message telling of these days was said in: [start, end)."""
        end = self.last + timedelta(days=REPORTED_WITHIN_DAYS + 1)
        return datetime.combine(self.first, datetime.min.time()), datetime.combine(end, datetime.min.time())


def _window(kind: str, match: re.Match[str]) -> Window | None:
    year = int(match.group("year"))
    if kind == "year":
        return Window(date(year, 1, 1), date(year, 12, 31))
    month = _MONTHS[match.group("month").casefold()]
    if kind == "month":
        return Window(date(year, month, 1), _shift_months(date(year, month, 1), 1) - timedelta(days=1))
    try:
        return Window(*(2 * [date(year, month, int(match.group("day")))]))
    except ValueError:  # "31 February 2023"
        return None


def asked_window(question: str) -> Window | None:
    """The days a question names ("on 21 May, 2023", "in January 2024", "the week before 16
    November 2023", "in 2023"), the most precise when it names several; None when it names none."""
    for kind, pattern in _ASKED_DATES:
        for match in pattern.finditer(question):
            window = _window(kind, match)
            if window is None:
                continue
            start = match.start()
            # "on 21 May, 2023", "in January 2024": the preposition goes with the date.
            before = re.search(r"\b(?:on|in|during|of|since|throughout)\s+$", question[:start], re.IGNORECASE)
            week = _WEEK_AROUND.search(question[:start]) if kind == "day" else None
            if week:
                side = week.group("side").casefold()
                day = window.first
                if side == "before":
                    window = Window(day - timedelta(days=7), day - timedelta(days=1))
                elif side == "after":
                    window = Window(day + timedelta(days=1), day + timedelta(days=7))
                else:
                    monday = day - timedelta(days=day.weekday())
                    window = Window(monday, monday + timedelta(days=6))
                start = week.start()
            elif before and kind != "year":
                start = before.start()
            return replace(window, span=(start, match.end()))
    return None
