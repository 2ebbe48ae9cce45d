"""What a question needs from its sources: one fact, two facts compared, a yes/no over two
things, or a fact about an entity that another source names (a bridge).

Read from the question's wording only; pure functions. The shapes are English question forms
("Who was born first, A or B?", "Are A and B both ...?"), not any data set's quirks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from retrieval.lexical import analyse

Kind = Literal["single", "comparison", "choice", "yesno", "pair"]
ValueKind = Literal["date", "number"]

_AUXILIARY_START = re.compile(r"^\s*(?:are|is|was|were|do|does|did|has|have|had|can|could|will|would|should)\b", re.IGNORECASE)
_CHOICE_START = re.compile(r"^\s*(?:which|who|whose|what)\b", re.IGNORECASE)

# Comparative words: which value wins (the smaller or the larger) and what kind of value decides.
_EARLIER = r"first|earlier|earliest|older|oldest|sooner"
_LATER = r"later|latest|last|younger|youngest|newer|newest|more recently|most recently"
_MORE = r"more|most|larger|largest|bigger|biggest|higher|highest|longer|longest|taller|tallest|greater|greatest|heavier|wider|deeper|further|faster|fastest|hotter|hottest|warmer|richer"
_FEWER = r"fewer|fewest|less|least|smaller|smallest|lower|lowest|shorter|shortest|lighter|narrower|slower|slowest|colder|coldest|cooler|poorer"
_COMPARATIVE = re.compile(rf"\b(?P<earlier>{_EARLIER})\b|\b(?P<later>{_LATER})\b|\b(?P<more>{_MORE})\b|\b(?P<fewer>{_FEWER})\b",
                          re.IGNORECASE)
# An entity: a quoted title, or a run of words that starts capitalised or with a digit.
_QUOTED = re.compile(r"[\"“]([^\"”]{1,120})[\"”]")


# A question after several things: a plural head noun before its verb ("What activities does
# Melanie partake in?", "Which cities has Jon visited?", "What kinds of books does ... read?"), or
# the present perfect of an accumulated past ("What has Maria done to ...?", "Where has Melanie
# camped?").
_SEVERAL = re.compile(
    r"^\s*(?:what|which)\s+(?:(?:kinds?|types?|sorts?)\s+of\s+)?(?:[\w+/'-]+\s+){0,2}?[a-z]+[^s\W']s\s+"
    r"(?:has|have|had|does|do|did|is|are|was|were)\b"
    r"|^\s*(?:what|where|who)\s+(?:has|have)\s+\w+(?:['’]s\s+\w+)?\s+\w+(?:ed|en|ne|wn|ught|ad|ok|ng|de)\b",
    re.IGNORECASE)


def asks_for_several(question: str) -> bool:
    """Whether the question asks for several things: a plural head noun ("What activities does X
    do?") or an accumulated past ("What has X done?"), whose answer is spread over sources."""
    return _SEVERAL.search(question) is not None


def qualifier(question: str, speaker: str) -> str:
    """What a question about a speaker asks beyond its head and verb: the words after the name and
    the word that follows it ("What activities has Melanie done with her kids?": "with her kids";
    "Which cities has Jon visited?": ""). Empty when the question does not name them."""
    match = re.search(rf"\b{re.escape(speaker)}(?:['’]s)?\s+\S+\s*(?P<rest>.*)$", question, re.IGNORECASE)
    return match.group("rest").rstrip(" ?.!") if match else ""


@dataclass(frozen=True)
class Shape:
    """The question's shape: its kind, the entities it names for comparison, and for a
    comparison which value wins ("min": the earliest or smallest) and of what kind."""

    kind: Kind
    entities: tuple[str, ...] = ()
    wins: Literal["min", "max"] | None = None
    value: ValueKind | None = None
    attribute: str = ""  # the question's other words: what is compared or asked of each entity
    polar: bool = False  # a comparison asked as yes/no ("Is A taller than B?"): answered "Yes"/"No" first


def _tidy(entity: str) -> str:
    entity = entity.strip(" ,;:?.!\"'“”‘’")
    entity = re.sub(r"^(?:the|a|an)\s+", "", entity, flags=re.IGNORECASE)
    return entity.strip()


def _name_before(text: str) -> str:
    """The name that ends the text: after its last comma, else its trailing run of capitalised
    words (joined by of/the/and/de/...), else its last four words."""
    cut = max(text.rfind(","), text.rfind(":"))
    if cut >= 0:
        return _tidy(text[cut + 1:])
    words = text.split()
    run: list[str] = []
    for word in reversed(words):
        bare = word.strip("\"'“”‘’()")
        if bare[:1].isupper() or bare[:1].isdigit() or (run and bare.casefold() in ("of", "the", "and", "de", "for", "in", "on", "&")):
            run.insert(0, word)
            continue
        break
    while run and run[0].strip("\"'“”").casefold() in ("of", "the", "and", "de", "for", "in", "on", "&"):
        run.pop(0)
    return _tidy(" ".join(run) if run else " ".join(words[-4:]))


def _pair(text: str, joiner: str) -> tuple[str, str] | None:
    """The two entities around the last ``joiner`` (" or ", " and ") of the text."""
    quoted = _QUOTED.findall(text)
    if len(quoted) >= 2 and joiner.strip() in text:
        return _tidy(quoted[-2]), _tidy(quoted[-1])
    at = text.lower().rfind(joiner)
    if at < 0:
        return None
    left, right = text[:at], text[at + len(joiner):]
    # The second entity ends at a comma or where the question goes on ("B, also supplies ...",
    # "B is closer to ...").
    right = re.split(r",|\s(?:is|was|are|were|has|have|had)\s", right, maxsplit=1)[0]
    b = _tidy(right)
    a = _name_before(left)
    if not _names_start(b):
        return None
    if not a or not b or len(a.split()) > 10 or len(b.split()) > 10:
        return None
    return a, b


def _attribute(question: str, entities: tuple[str, ...]) -> str:
    rest = question
    for e in entities:
        rest = re.sub(rf"(?<!\w){re.escape(e)}(?!\w)", " ", rest)
    return " ".join(rest.replace(",", " ").split()).strip(" ?")


def shape(question: str) -> Shape:
    """The shape of a question (see ``Shape``); "single" when nothing else fits."""
    q = " ".join(question.split())
    if not q.endswith("?"):
        q = q + "?"
    body = q[:-1]
    # "Which genus has more species, A or B?" (sometimes written "…, A and B?").
    joiner = " or " if re.search(r"\bor\b", body) else " and " if re.search(r",[^,]+\band\b[^,]+$", body) else None
    if _CHOICE_START.match(q) and joiner:
        pair = _pair(body, joiner)
        if pair:
            # A comparative word outside the two entities decides by a value.
            attribute = _attribute(body, pair)
            match = _COMPARATIVE.search(attribute)
            if match:
                kind = match.lastgroup
                wins: Literal["min", "max"] = "min" if kind in ("earlier", "fewer") else "max"
                value: ValueKind = "date" if kind in ("earlier", "later") else "number"
                return Shape("comparison", pair, wins, value, attribute)
            return Shape("choice", pair, attribute=attribute)
    # "A and B are what kind of …?": what two things are, a fact about each.
    lead = re.match(r"^\s*(?P<subjects>.+?)\s+(?:are|were|is|was)\s+(?:what|which)\b", body, re.IGNORECASE)
    if lead and not _CHOICE_START.match(q) and not _AUXILIARY_START.match(q):
        pair = _pair_subjects(lead.group("subjects"), " and ")
        if pair:
            return Shape("pair", pair, attribute=_attribute(body, pair))
    # "Both A and B are ...?" is a yes/no question; "A and B were both part of what ...?" or
    # "What do A and B have in common?" asks what two things share: a fact about each.
    both = re.match(r"^\s*both\s+", q, re.IGNORECASE)
    if both or re.search(r"\bboth\b|\bin common\b|\bshared?\b", body, re.IGNORECASE):
        rest = body[both.end():] if both else body
        asks = re.search(r"\b(?:what|which|who|whom|whose|where|when|how)\b", rest, re.IGNORECASE)
        if both or asks or not _AUXILIARY_START.match(q):
            start = _AUXILIARY_START.match(rest)
            pair = _pair_subjects(rest[start.end():] if start else rest, " and ")
            if pair:
                attribute = _attribute(rest, pair)
                return Shape("pair" if asks else "yesno", pair, value=_value_kind(attribute), attribute=attribute)
    if _AUXILIARY_START.match(q):
        head = _AUXILIARY_START.match(q)
        assert head is not None
        rest = body[head.end():]
        than = _than(rest)
        if than is not None:
            return than
        for joiner, kind in ((" and ", "yesno"), (" or ", "choice")):
            pair = _pair_subjects(rest, joiner)
            if pair:
                attribute = _attribute(rest, pair)
                return Shape(kind, pair, value=_value_kind(attribute), attribute=attribute)  # type: ignore[arg-type]
    return Shape("single")


# "A taller than B", "A born earlier than B", "A more populous than B".
_THAN = re.compile(rf"^(?P<left>.+?)\s+(?P<comp>{_EARLIER}|{_LATER}|{_MORE}|{_FEWER})(?:\s+[a-z]+)?\s+than\s+(?P<right>.+)$",
                   re.IGNORECASE)


def _than(rest: str) -> Shape | None:
    """A yes/no comparison of two named things, from the words after the auxiliary ("the
    building at 200 West Street taller than the one at 888 7th Avenue"); None when it is not one."""
    match = _THAN.match(rest)
    if match is None:
        return _before(rest)
    left, right = match.group("left"), match.group("right")
    a = _trailing_name(left) or _leading_name(left) or _common_noun(left)
    b = _trailing_name(right) or _leading_name(right) or _common_noun(right)
    if not a or not b or a == b:
        return None
    kind = _COMPARATIVE.match(match.group("comp"))
    assert kind is not None
    group = kind.lastgroup
    wins: Literal["min", "max"] = "min" if group in ("earlier", "fewer") else "max"
    value: ValueKind = "date" if group in ("earlier", "later") else "number"
    return Shape("comparison", (a, b), wins, value, _attribute(rest, (a, b)), polar=True)


# "the printing press invented before the World Wide Web": which came first, by their dates.
_BEFORE = re.compile(r"^(?P<left>.+?)\s+(?P<comp>before|after)\s+(?P<right>.+)$", re.IGNORECASE)


def _before(rest: str) -> Shape | None:
    """A yes/no over which of two named things came first ("Was A founded before B?"); None
    when the other side is a date or a number ("before 2010" is a bound) or names nothing."""
    match = _BEFORE.match(rest)
    if match is None:
        return None
    right = match.group("right")
    if first_date(right) is not None or re.match(r"^\W*(?:\d|the\s+(?:\d|year|end|start)|(?:" + _MONTH_NAMES + r")\b)",
                                                 right, re.IGNORECASE):
        return None
    # The other side is a thing and nothing else: "before work" compares nothing, and "before
    # Shirley Temple retired" is an event of hers, not her (her first date is her birth).
    right = right.strip()
    bare_right = _without_determiner(right)
    b = _trailing_name(right)
    if not b and bare_right != right:
        b = _common_noun(right)  # "the printing press", with its determiner: a thing, not "work"
    if not b or _tidy(bare_right) != b:
        return None
    a = _thing_and_its_verb(_without_determiner(match.group("left")))
    if not a or a == b:
        return None
    wins: Literal["min", "max"] = "min" if match.group("comp").casefold() == "before" else "max"
    return Shape("comparison", (a, b), wins, "date", _attribute(rest, (a, b)), polar=True)


def _thing_and_its_verb(text: str) -> str:
    """The thing a before/after side names: a thing and its verb ("printing press invented", "Normans
    arrive") or a thing alone; "" for a clause ("Maria go to the gym")."""
    for candidate in (text.rsplit(" ", 1)[0] if " " in text else "", text):
        name = _leading_name(candidate) or (_common_noun(candidate) if candidate.islower() else "")
        if candidate and name and name == _tidy(candidate):
            return name
    return ""


_JOINERS = frozenset(["of", "the", "and", "de", "for", "in", "on", "&", "a", "an", "to", "by"])


def _trailing_name(text: str) -> str:
    """The capitalised run (joined by of/the/and/...) that ends the text ("the documentaries
    Out of Place" -> "Out of Place"); a question word is never part of it."""
    run: list[str] = []
    for word in reversed(text.split()):
        bare = word.strip("\"'“”‘’(),")
        if bare.casefold() in _OPENERS:
            break
        if _names_start(bare) or (run and bare.casefold() in _JOINERS):
            run.insert(0, word)
            continue
        break
    while run and run[0].strip("\"'“”").casefold() in _JOINERS:
        run.pop(0)
    return _tidy(" ".join(run))


_OPENERS = frozenset(["what", "which", "who", "whom", "whose", "where", "when", "why", "how", "do", "does", "did", "are",
                      "is", "was", "were", "has", "have", "had", "can", "could", "will", "would", "should", "both"])


def _names_start(word: str) -> bool:
    bare = word.lstrip("\"'“‘(")
    return bare[:1].isupper() or bare[:1].isdigit()


def _leading_name(text: str) -> str:
    """The capitalised run (joined by of/the/and/...) that opens the text; a word after a joiner
    must be capitalised again, so "South of the Border both films" gives "South of the Border"."""
    run: list[str] = []
    for word in text.split():
        bare = word.strip("\"'“”‘’(),")
        if bare[:1].isupper() or bare[:1].isdigit():
            run.append(bare if word.endswith(",") else word)
            if word.endswith(","):
                break
        elif run and bare.casefold() in _JOINERS:
            run.append(word)
        else:
            break
    while run and run[-1].casefold() in _JOINERS:
        run.pop()
    return _tidy(" ".join(run))


def _value_kind(attribute: str) -> ValueKind | None:
    """What value a yes/no over two things compares, if any: a year ("in the same year",
    "before 2010") or a number ("the same number of acts", "more than 50")."""
    if re.search(r"\b(?:year|date|decade|century)\b|\b(?:before|after)\s+1\d{3}|\b(?:before|after)\s+20\d{2}", attribute, re.IGNORECASE):
        return "date"
    if re.search(r"\bnumber\b|\b(?:more|fewer|less)\s+than\s+\d", attribute, re.IGNORECASE):
        return "number"
    return None


# Words that open a noun phrase without being part of what it names.
_DETERMINERS = frozenset(["the", "a", "an"])
_DETERMINER = re.compile(rf"^(?:{'|'.join(_DETERMINERS)})\s+", re.IGNORECASE)


def _without_determiner(text: str) -> str:
    return _DETERMINER.sub("", text.strip())

# Longest phrase read as a thing without a capital ("blue whale", "the giant pacific octopus").
_COMMON_NOUN_WORDS = 3


def _common_noun(text: str) -> str:
    """A short lower-case noun phrase, determiner dropped ("a blue whale" -> "blue whale"), when the
    whole text is one; "" when it holds a question word, a verb-like auxiliary or is too long."""
    words = [w.strip("\"'“”‘’(),") for w in text.split()]
    while words and words[0].casefold() in _DETERMINERS:
        words.pop(0)
    if not words or len(words) > _COMMON_NOUN_WORDS or any(w.casefold() in _OPENERS or not w.isalpha() for w in words):
        return ""
    return " ".join(words)


def _pair_subjects(rest: str, joiner: str) -> tuple[str, str] | None:
    """"Are A and B both X" -> (A, B): the subjects joined by ``joiner``, before the predicate."""
    quoted = _QUOTED.findall(rest)
    if len(quoted) >= 2:
        return _tidy(quoted[0]), _tidy(quoted[1])
    at = rest.lower().find(joiner)
    if at <= 0:
        return None
    # "are penguins and cheetahs both birds": without capitals, "both" marks where the second
    # subject ends; each side must be a short noun phrase of its own.
    plain = re.match(rf"^(?P<a>.+?){re.escape(joiner)}(?P<b>.+?)\s+both\b", rest, re.IGNORECASE)
    if plain and not any(_names_start(w) for w in plain.group("a").split() + plain.group("b").split()):
        a, b = _common_noun(plain.group("a")), _common_noun(plain.group("b"))
        return (a, b) if a and b and a != b else None
    # The first subject starts at its first capitalised word ("the documentaries Out of Place");
    # the second is the run of capitalised words that opens the rest ("Echosmith formed in ...").
    a = _trailing_name(rest[:at])
    b = _leading_name(rest[at + len(joiner):])
    if not a or not b or len(a.split()) > 8 or len(b.split()) > 8:
        return None
    # Both subjects name something: a capital or a digit in each.
    if not any(w[:1].isupper() or w[:1].isdigit() for w in a.split()) or not any(w[:1].isupper() or w[:1].isdigit() for w in b.split()):
        return None
    return a, b


_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"],
    start=1)}
_MONTH_NAMES = "|".join(_MONTHS)
_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})\s+({_MONTH_NAMES})\s*,?\s+(\d{{3,4}})\b", re.IGNORECASE)
_MONTH_DAY_YEAR = re.compile(rf"\b({_MONTH_NAMES})\s+(\d{{1,2}})\s*,?\s+(\d{{3,4}})\b", re.IGNORECASE)
_MONTH_YEAR = re.compile(rf"\b({_MONTH_NAMES})\s+(\d{{3,4}})\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(1\d{3}|20\d{2})\b")
# Number words and their values, for counts written out ("three acts").
NUMBER_WORDS = {w: i for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                                              "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
                                              "seventeen", "eighteen", "nineteen", "twenty"])}
_QUANTITY = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|" + "|".join(NUMBER_WORDS) +
                       r")(?:\s*(million|billion|thousand))?(?![\w.])", re.IGNORECASE)
_SCALE = {"thousand": 1e3, "million": 1e6, "billion": 1e9}


@dataclass(frozen=True)
class Value:
    """A comparable value found in a text: what it says, its order key and, for a quantity, the
    words after it that may name its unit ("square kilometr", "metr", "tall")."""

    text: str
    key: float
    unit: frozenset[str] = field(default=frozenset(), compare=False)  # what it says, not its value
    # The number with its unit of measure as written ("330 metres", "nine million square
    # kilometres"), for an answer to show; the number alone when no measure follows it.
    shown: str = field(default="", compare=False)

    def comparable(self, other: Value) -> bool:
        """Whether the two measure the same thing: nine million square kilometres of desert is
        no larger than an ice sheet two kilometres thick. Values without unit words compare."""
        return not self.unit or not other.unit or bool(self.unit & other.unit)


# Words after a quantity read for its unit; "square"/"cubic" join the word after them.
_UNIT_WORDS = 3
_AREA = re.compile(r"^(square|cubic|sq)\.?$", re.IGNORECASE)


# Units of measure an answer shows with their number; other words after a number ("two small
# moons", "14 locations") may be adjectives or what is counted, and are left out.
_MEASURES = re.compile(
    r"^\s*(km/h|mph|(?:square\s+|cubic\s+|sq\.?\s+)?(?:kilo|centi|milli)?(?:met(?:re|er)s?)|km|m|cm|mm|ft|feet|foot|inch(?:es)?|"
    r"miles?|yards?|hectares?|acres?|(?:kilo)?grams?|kg|g|tonnes?|tons?|pounds?|lbs?|litres?|liters?|"
    r"°\s?[CF]|degrees(?:\s+(?:Celsius|Fahrenheit))?|per\s?cent|%|years?|months?|days?|hours?|minutes?|seconds?|"
    r"species|members|people|inhabitants|residents|employees|episodes|floors|storeys|stories)(?!\w)",
    re.IGNORECASE)


def _unit(after: str) -> frozenset[str]:
    """The unit words of what follows a quantity (stemmed, stop words dropped, up to the clause's end)."""
    words = re.split(r"\s+", re.split(r"[,;:.()]", after, maxsplit=1)[0].strip())[:_UNIT_WORDS + 1]
    out: list[str] = []
    k = 0
    while k < len(words) and len(out) < _UNIT_WORDS:
        word = words[k]
        if _AREA.match(word) and k + 1 < len(words):
            out.append(f"{_AREA.match(word).group(1).casefold()} {' '.join(analyse(words[k + 1]))}")
            k += 2
            continue
        out.extend(analyse(word))
        k += 1
    return frozenset(out[:_UNIT_WORDS])


def first_date(text: str) -> Value | None:
    """The first date in the text, as precise as it is written (day, month or year)."""
    found: list[tuple[int, Value]] = []
    for m in _DAY_MONTH_YEAR.finditer(text):
        found.append((m.start(), _date_value(m.group(0), int(m.group(3)), _MONTHS[m.group(2).casefold()], int(m.group(1)))))
    for m in _MONTH_DAY_YEAR.finditer(text):
        found.append((m.start(), _date_value(m.group(0), int(m.group(3)), _MONTHS[m.group(1).casefold()], int(m.group(2)))))
    for m in _MONTH_YEAR.finditer(text):
        found.append((m.start(), _date_value(m.group(0), int(m.group(2)), _MONTHS[m.group(1).casefold()], 1)))
    for m in _YEAR.finditer(text):
        found.append((m.start(), _date_value(m.group(0), int(m.group(1)), 1, 1)))
    found = [f for f in found if f[1].key > 0]
    if not found:
        return None
    start = min(s for s, _ in found)
    first_end = min(s + len(v.text) for s, v in found if s == start)
    # Readings of the first date (they overlap its first match) compete, the most precise (the
    # longest) winning: "April 23, 1928" over "1928"; a later date ("1888 – 3 May 1950") does not.
    return max((v for s, v in found if s < first_end), key=lambda v: len(v.text))


def _date_value(text: str, year: int, month: int, day: int) -> Value:
    try:
        return Value(text, float(date(year, month, day).toordinal()))
    except ValueError:
        return Value(text, 0.0)


def quantities(text: str) -> list[Value]:
    """Numbers in the text that are not years, with their sign and scale words ("3.5 million", "-89")."""
    out = []
    for m in _QUANTITY.finditer(text):
        raw = m.group(1)
        if _YEAR.fullmatch(raw) and not m.group(2):
            continue
        base = NUMBER_WORDS[raw.casefold()] if raw.casefold() in NUMBER_WORDS else float(raw.replace(",", ""))
        number = base * _SCALE.get((m.group(2) or "").casefold(), 1.0)
        start = m.start()
        # A minus sign of its own ("−89 °C", "at -40"), not a range's dash ("1990-2000", "5-10").
        if raw[:1].isdigit() and text[start - 1:start] in ("-", "−") and (start < 2 or text[start - 2] in " (\t\n"):
            number, start = -number, start - 1
        after = text[m.end():]
        measure = _MEASURES.match(after)
        shown = " ".join(text[start:m.end() + (measure.end(1) if measure else 0)].split())
        out.append(Value(text[start:m.end()], number, _unit(after), shown))
    return out


def mentions(text: str, entity: str) -> bool:
    """Whether the text names the entity: all its analysed terms are there (case and stemming aside)."""
    wanted = set(analyse(entity))
    return bool(wanted) and wanted <= set(analyse(text))


def about(title: str | None, entity: str) -> bool:
    """Whether a source's title says it is about the entity ("Shirley Temple" for "Shirley Temple Black")."""
    if not title:
        return False
    t, e = set(analyse(title)), set(analyse(entity))
    return bool(t) and bool(e) and (t <= e or e <= t)
