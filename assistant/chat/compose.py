"""Answers that combine sources: a fact per entity for comparisons, choices and yes/no
questions, and a bridge from the entity one source names to the source about it.

Pure functions over a ranking of the sources' sentences (``extractive.Ranking``) and the
passages. The extractive responder calls them; the orchestrator uses ``follow_ups`` to run the
second retrieval step whose results these functions then read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.chat.answerability import name_terms
from assistant.chat.passages import Passage
from assistant.chat.sentences import split_sentences
from assistant.chat.shapes import Shape, Value, about, first_date, mentions, quantities
from retrieval.lexical import STOPWORDS, analyse

if TYPE_CHECKING:
    from assistant.chat.extractive import Ranking

# Follow-up results added to the first retrieval's, at most, per follow-up query.
FOLLOW_UP_RESULTS = 3
# Names looked at in the best sentences when looking for a bridge.
MAX_BRIDGE_NAMES = 2


@dataclass(frozen=True)
class Composed:
    """A composed answer: the chosen candidates (indexes into the ranking) in answer order,
    what opens the answer ("Yes.") and what closes it (the comparison's result)."""

    chosen: tuple[int, ...]
    opening: str = ""
    closing: str = ""


_NAME_RUN = re.compile(r"(?:[\"“]([^\"”]{2,80})[\"”])|((?:[A-Z0-9][\w'’.&-]*)(?:\s+(?:(?:of|the|de|von|van|&)\s+)*[A-Z0-9][\w'’.&-]*)*)")


def names_in(sentence: str, question: str) -> list[str]:
    """Names the sentence mentions that the question does not: quoted titles and runs of
    capitalised words; a sentence's first word alone is not a name."""
    q_terms = set(analyse(question))
    out: list[str] = []
    for m in _NAME_RUN.finditer(sentence):
        name = (m.group(1) or m.group(2) or "").strip(" .,'’")
        if not name or (m.start() == 0 and " " not in name) or name.isdigit():
            continue
        terms = [t for t in analyse(name) if t not in STOPWORDS]
        if terms and not set(terms) <= q_terms and name not in out:
            out.append(name)
    return out


def _entity_candidates(ranking: Ranking, passages: Sequence[Passage], entity: str) -> list[int]:
    """Candidates about the entity, best first: from a passage titled as the entity, then
    sentences of other passages that name it."""
    titled = [i for i in ranking.order if about(passages[ranking.candidates[i].marker - 1].title, entity)]
    naming = [i for i in ranking.order if i not in titled and mentions(ranking.candidates[i].sentence, entity)]
    return titled + naming


def _value(text: str, kind: str | None) -> Value | None:
    if kind == "date":
        return first_date(text)
    found = quantities(text)
    return found[0] if found else None


def _measured_alike(sa: str, sb: str, a: str, b: str) -> tuple[Value | None, Value | None]:
    """The first two numbers, one of each sentence, that measure the same thing (``Value.comparable``):
    "749 ft" and "628 ft" in "888 7th Avenue is a 628 ft tall skyscraper", not the 888 of its name."""
    named_a, named_b = set(a.casefold().split()), set(b.casefold().split())
    qa = [v for v in quantities(sa) if v.text.casefold() not in named_a]
    qb = [v for v in quantities(sb) if v.text.casefold() not in named_b]
    return next(((x, y) for x in qa for y in qb if x.comparable(y)), (None, None))


def _fact(ranking: Ranking, passages: Sequence[Passage], entity: str, kind: str | None) -> tuple[int, Value | None] | None:
    """The entity's best sentence, preferring one that holds a value of the compared kind."""
    about_it = _entity_candidates(ranking, passages, entity)
    if not about_it:
        return None
    if kind:
        for i in about_it:
            value = _value(ranking.candidates[i].sentence, kind)
            if value is not None:
                return i, value
    return about_it[0], None


def compose_pair(ranking: Ranking, passages: Sequence[Passage], shape: Shape) -> Composed | None:
    """A fact about each of the question's two entities (what they share, for a "pair"), and
    for a comparison the result when both values are comparable, for a yes/no "Yes"/"No" first. None when either entity has no
    sentence about it in the sources."""
    a, b = shape.entities
    fa = _fact(ranking, passages, a, shape.value)
    fb = _fact(ranking, passages, b, shape.value)
    if fa is None or fb is None or fa[0] == fb[0]:
        return None
    (ia, va), (ib, vb) = fa, fb
    if shape.kind == "comparison" and shape.value == "number":
        va, vb = _measured_alike(ranking.candidates[ia].sentence, ranking.candidates[ib].sentence, a, b)
    if shape.kind == "comparison" and va is not None and vb is not None and va.key != vb.key:
        a_wins = (va.key < vb.key) == (shape.wins == "min")
        (winner, vw), (loser, vl) = ((a, va), (b, vb)) if a_wins else ((b, vb), (a, va))
        if shape.polar:  # "Is A taller than B?": whether the first one wins
            return Composed((ia, ib), opening="Yes." if a_wins else "No.")
        return Composed((ia, ib) if a_wins else (ib, ia), closing=f"So the answer is {winner}: {vw.shown or vw.text}, against {vl.shown or vl.text} for {loser}.")
    if shape.kind == "yesno":
        yes = _agrees(ranking, passages, shape, ia, ib)
        return Composed((ia, ib), opening="Yes." if yes else "No.")
    if shape.kind == "choice":
        wanted = {t for t in analyse(shape.attribute) if t not in _FRAME}
        fit_a = len(wanted & _passage_terms(ranking, passages, ia))
        fit_b = len(wanted & _passage_terms(ranking, passages, ib))
        if fit_a != fit_b:
            winner = a if fit_a > fit_b else b
            order = (ia, ib) if fit_a > fit_b else (ib, ia)
            return Composed(order, closing=f"So the answer is {winner}.")
    return Composed((ia, ib))


# Words that frame a yes/no or choice question rather than name the property asked about.
_FRAME = frozenset(analyse("both same which who what whose also either each one the of in from are is was were do does did "
                           "has have had level kind type"))


def _passage_terms(ranking: Ranking, passages: Sequence[Passage], i: int) -> set[str]:
    p = passages[ranking.candidates[i].marker - 1]
    return set(analyse(f"{p.title or ''} {p.text}"))


def _descriptors(sentence: str, entity: str) -> set[str]:
    """What a sentence says its subject is, in capitalised words that are not the subject's own
    name ("American", "Jiangsu"): the values "the same nationality / province" compares."""
    own = set(analyse(entity))
    words = re.findall(r"\b[A-Z][\w'’-]+", sentence)
    return {t for w in words[1:] for t in analyse(w) if t not in own}


_THRESHOLD = re.compile(r"\b(?P<side>before|after|earlier than|later than|more than|over|at least|fewer than|less than|under)\s+"
                        r"(?P<value>\d[\d,.]*)", re.IGNORECASE)
_ABOVE = ("after", "later than", "more than", "over", "at least")
_NEAR_NOUN = 3  # words around "province" in "Jiangsu province" that name which one


def _named_near(sentence: str, noun: str) -> set[str]:
    """Capitalised words next to a noun ("Jiangsu province", "province of Sichuan")."""
    words = re.findall(r"[\w'’-]+", sentence)
    out: set[str] = set()
    for k, w in enumerate(words):
        if analyse(w) == analyse(noun):
            out |= {x.casefold() for x in words[max(0, k - _NEAR_NOUN):k + _NEAR_NOUN + 1] if x[:1].isupper()}
    return out


def _agrees(ranking: Ranking, passages: Sequence[Passage], shape: Shape, ia: int, ib: int) -> bool:
    """Whether the facts say yes: "the same X" compares what both say (a year, a number, the
    name next to X, or what each is said to be); "both before 2010" / "more than 50" compares
    each value with the bound; "both X" asks that each entity's source says every word of X."""
    sa, sb = ranking.candidates[ia].sentence, ranking.candidates[ib].sentence
    attribute = shape.attribute.casefold()
    same = re.search(r"\bsame\s+(?:\w+\s+)?(?P<noun>\w+)", attribute)
    if same:
        if re.search(r"\b(?:year|date|decade|century|time)\b", attribute):
            da, db = first_date(sa), first_date(sb)
            return da is not None and db is not None and da.text[-4:] == db.text[-4:]
        if re.search(r"\bnumber\b", attribute):
            qa, qb = quantities(sa), quantities(sb)
            return bool(qa) and bool(qb) and qa[0].key == qb[0].key
        noun = same.group("noun")
        near_a, near_b = _named_near(sa, noun), _named_near(sb, noun)
        if near_a and near_b:
            return bool(near_a & near_b)
        return bool(_descriptors(sa, shape.entities[0]) & _descriptors(sb, shape.entities[1]))
    bound = _THRESHOLD.search(shape.attribute)
    if bound:
        limit = float(bound.group("value").replace(",", ""))
        above = bound.group("side").casefold() in _ABOVE
        is_year = bool(re.fullmatch(r"1\d{3}|20\d{2}", bound.group("value")))
        values = []
        for s in (sa, sb):
            v = first_date(s) if is_year else (quantities(s) or [None])[0]
            if v is None:
                return False
            values.append(float(v.text[-4:]) if is_year else v.key)
        return all((v > limit) if above else (v < limit) for v in values)
    wanted = {t for t in analyse(shape.attribute) if t not in _FRAME}
    return all(wanted <= _passage_terms(ranking, passages, i) for i in (ia, ib))


# Sentences of the best source whose names may lead to a second hop (the best and those close).
BRIDGE_SENTENCES = 3


def bridge_names(ranking: Ranking, question: str, first: int | None = None) -> list[str]:
    """Names that the best source's best sentences mention and the question does not
    (``first``: the best candidate's index, by default the ranking's best)."""
    best = ranking.candidates[ranking.order[0] if first is None else first]
    sentences = [ranking.candidates[i].sentence for i in ranking.order if ranking.candidates[i].marker == best.marker]
    out: list[str] = []
    for sentence in sentences[:BRIDGE_SENTENCES]:
        out.extend(n for n in names_in(sentence, question) if n not in out)
    # A name that carries the question's word for what it looks for comes first: "a conference
    # that was formerly known as what" bridges to "America East Conference", not to "University
    # of Vermont" that the same source names first.
    kind = _kind_names(out, question)
    return kind + [n for n in out if n not in kind]


def _kind_names(names: Sequence[str], question: str) -> list[str]:
    """The names holding a word the question uses for a thing, not as a name of its own
    ("Conference" for "... competes in a conference ..."; "Vermont" of "Vermont Catamounts" no)."""
    kinds = set(analyse(question)) - name_terms(question) - STOPWORDS
    return [n for n in names if set(analyse(n)) & kinds]


def bridge(ranking: Ranking, passages: Sequence[Passage], question: str, first: int) -> int | None:
    """The second hop: the best sentence of a source about an entity that the best source
    names and the question does not ("the woman who portrayed Corliss Archer" -> "Shirley
    Temple" -> her own source). The source must have a title of its own, other than the best
    source's: the sources of one article share one title and are not a second hop."""
    best = ranking.candidates[first]
    first_title = passages[best.marker - 1].title
    names = bridge_names(ranking, question, first)
    if not names:
        return None
    # The names that carry what the question looks for first (``bridge_names``), then any.
    for wanted in (_kind_names(names, question), names):
        for i in ranking.order:
            c = ranking.candidates[i]
            title = passages[c.marker - 1].title
            if c.marker != best.marker and title and title != first_title and any(about(title, n) for n in wanted):
                return i
    return None


# Sentences added to cover what the question names, at most.
MAX_COVER = 2


def cover(ranking: Ranking, passages: Sequence[Passage], question: str, chosen: Sequence[int]) -> list[int]:
    """Sentences of other documents that carry what the question names and the answer lacks:
    "the 1959 Soviet feature" shown in both "Queen of Blood" and "Battle Beyond the Sun" needs
    a sentence from each film's source. Only sources whose title differs from every chosen
    sentence's count: within one document, a name found only elsewhere means the chosen
    sentence is about something else (``answerability``'s ``name_elsewhere``), and the
    answerability checks keep that refusal."""
    titles = {passages[ranking.candidates[i].marker - 1].title for i in chosen}
    if None in titles:
        return []
    wanted = name_terms(question) | {t for t in analyse(question) if any(ch.isdigit() for ch in t)}
    have = set().union(*(ranking.candidates[i].terms for i in chosen)) | set().union(*(set(analyse(t or "")) for t in titles))
    missing = wanted - have
    # What the chosen sentences' sources name, and their titles: a covering source must be one
    # of those things, or name one of the chosen sources (documents that refer to each other).
    # A title's disambiguation aside ("Catwoman (video game)" links to "Catwoman (film)").
    linked = {t for t in titles if t} | {bare_title(t) for t in titles if t} | {n for i in chosen
                                         for sentence in split_sentences(passages[ranking.candidates[i].marker - 1].text)
                                         for n in names_in(sentence, "")}
    added: list[int] = []
    covering: set[str] = set()  # documents already linked by a covering sentence: their other
    # sentences may cover what is still missing ("The film stars A, B" links the document, its
    # "X is a 2017 film" gives the year)
    for i in ranking.order:
        if not missing or len(added) >= MAX_COVER:
            break
        c = ranking.candidates[i]
        title = passages[c.marker - 1].title
        if i in chosen or not title or (title in titles and title not in covering) or not c.names & missing:
            continue
        if title not in covering and not _linked(c.sentence, title, linked):
            continue
        added.append(i)
        titles.add(title)
        covering.add(title)
        missing -= c.names | set(analyse(title))
    return added


_DISAMBIGUATION = re.compile(r"\s*\([^()]*\)\s*$")


def bare_title(title: str) -> str:
    """The title without its trailing disambiguation: "Joe Quill (American football)" -> "Joe Quill"."""
    return _DISAMBIGUATION.sub("", title)


def _linked(sentence: str, title: str, linked: set[str]) -> bool:
    """Whether a source titled ``title`` whose sentence is ``sentence`` refers to, or is referred
    to by, the chosen sources (``linked``: their titles and the names their texts mention)."""
    return any(about(title, n) or mentions(sentence, n) for n in linked)


def leads_with_message(ranking: Ranking, passages: Sequence[Passage]) -> bool:
    """Whether the best-ranked sentence is a chat message's: then the answer is read as one from
    messages (a conversation has no entity pages to compare or bridge to), whatever else the
    sources hold, and an unrelated message among them changes nothing about prose's answers."""
    return passages[ranking.candidates[ranking.order[0]].marker - 1].is_said


def follow_ups(ranking: Ranking | None, passages: Sequence[Passage], question: str, shape: Shape) -> list[str]:
    """Queries for a second retrieval step: each compared entity with what is asked of it, or
    the question with the entity its best sentence names (a bridge). Empty when the question
    needs one source, or its best source is a message."""
    if shape.kind != "single":
        return [f"{e} {shape.attribute}" for e in shape.entities]
    if ranking is None or leads_with_message(ranking, passages):
        return []
    # Names that already have a source of their own need no second search.
    titles = [p.title for p in passages if p.title]
    open_names = [n for n in bridge_names(ranking, question) if not any(about(t, n) for t in titles)]
    queries = [f"{question} {name}" for name in open_names[:MAX_BRIDGE_NAMES]]
    # A name of the question that no first-step source has: the question's other words found
    # other things; the name alone finds its own source (which ``cover`` may then use).
    said = set().union(*(set(analyse(f"{p.title or ''} {p.text}")) for p in passages))
    absent = [n for n in names_in(question, "") if not set(analyse(n)) <= said]
    return queries + absent[:1]
