"""Does the best source sentence answer the question? Pure, explainable checks over text.

The extractive responder finds the sentence that best fits a question; this module decides
whether it *answers* it. SQuAD 2.0's unanswerable questions are written against a paragraph
to look answerable by it: a word negated, a name, number or adjective swapped, an answer type
the paragraph does not hold. Each such edit leaves a mark that a named check looks for:

- ``negated``: the question is negated ("never", "not", "cannot", or a verb saying its event did
  not happen: "fail", "avoid", "stop", "impossible") and the sentence is not;
- ``denied``: the mirror: the sentence negates words the question copies ("are not intended as"
  for "What are intended as ...?");
- ``negated_elsewhere``: both are negated, but not about the same thing: none of the sentence's
  negations touches the words the question's negation is about ("What are complexity classes
  generally not classified into?" against "... definitions that do not fit into this framework");
- ``number_absent`` / ``number_missing``: a number, number word or ordinal the question names
  is in no source / not in the sentence ("the 1100s" against a sentence about "the 12th");
- ``number_moved``: the sentence has the question's number, but counting something else, and
  what the question counts with another number ("eight Combined Statistical Areas" against "one
  Combined Statistical Area, eight Metropolitan Statistical Areas");
- ``name_absent`` / ``name_elsewhere``: a name the question mentions is in no source, or is
  missing from the sentence while a few other source sentences have it (the sentence is about
  something else; a name every sentence shares, like the article's subject, does not count);
- ``name_recombined``: a name of several words ("Mount Gippsland", "California University")
  whose words are all in the sources but never together, in that order ("Mount Bogong ... the
  Gippsland", "University of California");
- ``antonym``: the question says "smallest" where the sentence says "largest", or "to the south"
  where it says only "to the east";
- ``opposite``: a question word found in no source whose WordNet antonym the sentence says
  ("circuit simplicity" against "circuit complexity", "included" against "excluded");
- ``swapped``: the question copies a stretch of the sentence with one word changed, the words
  on both sides of it the same ("captures the formal notion of" against "captures the informal
  notion of", "how many full time janitors does" against "full time teachers");
- ``exchanged``: the question relates two things the other way round ("suburbs were turned into
  farmlands" against "farmlands were turned into suburbs"; "Who replaced the Normans?" against
  "The Normans replaced ...");
- ``close_call``: another source's best sentence, saying something else, scores within
  ``CLOSE_CALL`` of the best one: the sources do not single out an answer (set by the
  responder, which holds the ranking; the text checks below cannot see it);
- ``untyped``: "when" needs a date or time in the sentence, "how many" a number, "who" and
  "where" a name, each one the question does not already name; ``no_value``: its part for a
  date or a number, which a sentence cannot give in other words than a name can ("the dukes"
  answers "who"; nothing but a date answers "when").

The checks run on the answer the responder would give (its one or two sentences). Each fired
check lowers the best sentence's relevance score by a fixed penalty, and the answer stands only
above a threshold: one linear rule whose terms each say why a refusal happened (``RULE``, fitted
on the even-numbered squad2-dev-5 questions by ``bench/answers.py --fit``).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from typing import Literal

from assistant.chat.antonyms import antonym_stems
from retrieval.lexical import STOPWORDS, analyse

AnswerType = Literal["date", "number", "person", "place", "other"]

# Words that make a question a question; an answer never repeats them, so they are not
# content (Lucene's stop set, which retrieval uses, keeps them).
QUESTION_TERMS = frozenset(
    analyse(
        "what which who whom whose when where why how did does do were has have had "
        "can could would should many much"
    )
)

_NEGATION = re.compile(
    r"\b(?:not|never|no|none|without|cannot|nor|neither|nobody|nothing|nowhere)\b|n[’']t\b"
    # Verbs that say their event did not happen ("fail to launch", "avoid ending", "made it
    # impossible to launch"): SQuAD 2.0's writers negate with them as often as with "not".
    r"|\b(?:fail(?:s|ed|ing)?|unable|impossible|refus(?:e|es|ed|ing)|avoid(?:s|ed|ing)?|stop(?:s|ped|ping)?|"
    r"ceas(?:e|es|ed|ing)|prevent(?:s|ed|ing)?|lack(?:s|ed|ing)?|unsuccessful(?:ly)?|"
    # ... and their synonyms: "helped prevent the outbreak" is said as "allowed them to avert it".
    r"avert(?:s|ed|ing)?|thwart(?:s|ed|ing)?|forestall(?:s|ed|ing)?|preclud(?:e|es|ed|ing)|halt(?:s|ed|ing)?)\b",
    re.IGNORECASE,
)
# Numbers, number words and ordinals, compared as lower-cased tokens ("1,000" stays one).
_NUMBER = re.compile(
    r"\b(?:\d[\d,.]*\d|\d)(?:s|st|nd|rd|th)?\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"thirteen|fifteen|twenty|thirty|forty|fifty|hundred|thousand|million|billion|first|second|third|fourth|"
    r"fifth|sixth|seventh|eighth|ninth|tenth|dozen|half|twice)\b",
    re.IGNORECASE,
)
_MONTH = (r"january|february|march|april|may|june|july|august|september|october|november|december|"
          r"jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
# A date or time: a year or decade, an ordinal century, a month, a weekday, a season, an era.
_DATE = re.compile(
    rf"\b(?:\d{{3,4}}s?|\d{{1,2}}(?:st|nd|rd|th)\b|(?:{_MONTH})|monday|tuesday|wednesday|thursday|friday|saturday|"
    rf"sunday|spring|summer|autumn|winter|bce?|ad|centur(?:y|ies)|decades?|years?|months?|weeks?|days?|hours?|ago|"
    rf"era|period|age|today|currently|recently|until|since|during|before|after|later|earlier|then|once)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*")
_WORD = re.compile(r"[\w'’-]+")
# Sentence openers that are capitalised by grammar, not by being names.
_COMMON_OPENERS = frozenset(
    [
     "the", "a", "an", "in", "on", "at", "by", "for", "from", "to", "of", "with", "as", "after",
     "before", "during", "since", "while", "when", "where", "this", "that", "these", "those", "it",
     "its", "he", "she", "they", "his", "her", "their", "there", "however", "although", "though",
     "but", "and", "or", "also", "many", "some", "most", "one", "two", "several", "each", "both",
     "all", "other", "such", "despite", "because", "if",
    ]
)
# Opposites whose swap turns an answerable question into an unanswerable one (SQuAD 2.0's
# "antonym" edits); only general, frequent pairs, so the list does not encode the data set.
_OPPOSITES = (
    ("least", "most"), ("smallest", "largest"), ("smallest", "biggest"), ("first", "last"),
    ("earliest", "latest"), ("lowest", "highest"), ("minimum", "maximum"), ("fewer", "more"),
    ("less", "more"), ("worst", "best"), ("small", "large"), ("low", "high"), ("easy", "difficult"),
    ("easy", "hard"), ("north", "south"), ("east", "west"), ("increase", "decrease"), ("won", "lost"),
    ("early", "late"), ("same", "different"), ("private", "public"), ("minor", "major"), ("upper", "lower"),
    ("strong", "weak"), ("before", "after"), ("inside", "outside"), ("rural", "urban"),
)

# Which answer type a question asks for, by its wording; first match wins.
_TYPE_RULES: tuple[tuple[re.Pattern[str], AnswerType], ...] = (
    (re.compile(r"\bhow (?:many|much|long|far|old|big|large|high|tall|deep|wide|often|fast|heavy)\b"
                r"|\bwhat (?:percentage|percent|proportion|fraction|number|amount|size|population)\b", re.IGNORECASE), "number"),
    (re.compile(r"\bwhen\b|\b(?:what|which) (?:year|years|century|centuries|decade|date|day|month|time|era|period)\b", re.IGNORECASE),
     "date"),
    (re.compile(r"\bwho(?:m|se)?\b", re.IGNORECASE), "person"),
    (re.compile(r"\bwhere\b|\b(?:what|which) (?:city|country|state|region|continent|island|town|province|county|nation)\b",
                re.IGNORECASE), "place"),
)


# Where a question's own wh-phrase can stand: at the start of a clause, perhaps after a
# preposition ("In what year ..."). A wh-word inside a clause ("How do bees tell others where
# flowers are?", "What happened when ...?") does not say what the answer is.
_CLAUSE_START = re.compile(r"(?:^|[,;:.?!]\s*)[\"'“‘(]?(?:(?:and|but|so|in|at|on|by|from|during|for|to|of|since|until|after|before|with)\s+)?", re.IGNORECASE)


# A leading "When/Where/If ... ," clause before the question's own wh-word sets a scene: "When
# extensive time is required to sort integers, this represents what case complexity?" asks "what".
_SUBORDINATE = re.compile(r"(?:when|where|while|if|once)\b[^,;?]*[,;](?=.*\b(?:what|which|who|whom|whose|how)\b)",
                          re.IGNORECASE)


def answer_type(question: str) -> AnswerType:
    """The kind of span the question asks for; "other" when its wording does not say."""
    for start in _CLAUSE_START.finditer(question):
        head = question[start.end():]
        if _SUBORDINATE.match(head):
            continue
        for pattern, kind in _TYPE_RULES:
            match = pattern.match(head)
            if match:
                return kind
    return "other"


def _tokens(pattern: re.Pattern[str], text: str) -> set[str]:
    return {m.group(0).casefold() for m in pattern.finditer(text)}


QUESTION_WORDS = frozenset(["what", "which", "who", "whom", "whose", "when", "where", "why", "how"])


def names(text: str) -> list[str]:
    """Capitalised words (the parts of names), leaving out a grammatical sentence opener."""
    body = text.lstrip("\"'“‘( ")
    found = [m.group(0) for m in _CAPITALISED.finditer(body)]
    if found and body.startswith(found[0]) and found[0].casefold() in _COMMON_OPENERS | QUESTION_WORDS:
        found = found[1:]
    return found


def has_answer_type(kind: AnswerType, sentence: str, question: str) -> bool:
    """Whether the sentence holds a span of the asked-for type that the question does not name."""
    if kind == "other":
        return True
    if kind == "date":
        return bool(_tokens(_DATE, sentence) - _tokens(_DATE, question))
    if kind == "number":
        return bool(_tokens(_NUMBER, sentence) - _tokens(_NUMBER, question))
    asked = {w.casefold() for w in _WORD.findall(question)}
    return any(n.casefold() not in asked for n in names(sentence))


def content_terms(question: str) -> set[str]:
    """The question's analysed terms without its question words."""
    return {t for t in analyse(question) if t not in QUESTION_TERMS}


def name_terms(question: str) -> set[str]:
    """Analysed terms of the names the question mentions (capitalised words past its first)."""
    first = _WORD.search(question)
    start = first.end() if first else 0
    # Terms under three letters ("US", the "s" of "Edmond's") are abbreviations' pieces, not names.
    return {t for m in _CAPITALISED.finditer(question, start) for t in analyse(m.group(0)) if len(t) > 2} - QUESTION_TERMS


def number_tokens(text: str) -> set[str]:
    """Numbers, number words and ordinals in the text, lower-cased; a numeral's ordinal suffix
    dropped ("8th December" and "8 December" name the same day)."""
    return {_numeral(t) for t in _tokens(_NUMBER, text)}


_ORDINAL_SUFFIX = re.compile(r"(?<=\d)(?:st|nd|rd|th)$")


def _numeral(token: str) -> str:
    return _ORDINAL_SUFFIX.sub("", token)


def negated(question: str, sentence: str) -> bool:
    """The question is negated and the sentence is not: "Who never ...?" against "X always ..."."""
    return bool(_NEGATION.search(question)) and not _NEGATION.search(sentence)


# Compass directions exclude each other as a pair of opposites does ("to the south" against "to
# the east"); adjective and compound forms fold to one direction each ("south-eastern" -> "southeast").
_DIRECTION = re.compile(r"\b(north|south)?-?(east|west)?(?:ern|erly|ward|wards)?\b", re.IGNORECASE)


def directions(text: str) -> set[str]:
    """The compass directions the text names in lower case, folded ("northern" -> "north");
    capitalised ones are parts of names ("South Australia", "West Francia")."""
    return {(m.group(1) or "") + (m.group(2) or "")
            for m in _DIRECTION.finditer(text) if (m.group(1) or m.group(2)) and m.group(0).islower()}


def antonym_swap(question: str, sentence: str) -> bool:
    """The question uses one of a pair of opposites where the sentence uses the other, or names
    a compass direction where the sentence names only others."""
    q = {w.casefold() for w in _WORD.findall(question)}
    s = {w.casefold() for w in _WORD.findall(sentence)}
    if any((a in q and a not in s and b in s and b not in q) or (b in q and b not in s and a in s and a not in q)
           for a, b in _OPPOSITES):
        return True
    asked, said = directions(question), directions(sentence)
    return bool(asked and said and not asked & said)


def idf_weights(terms: Iterable[str], documents: Sequence[set[str]]) -> dict[str, float]:
    """IDF of each term over the documents: log(1 + n / (df + 0.5)), BM25's shape, never negative."""
    wanted = set(terms)
    df = dict.fromkeys(wanted, 0)
    for doc in documents:
        for t in wanted & doc:
            df[t] += 1
    return {t: math.log(1 + len(documents) / (df[t] + 0.5)) for t in wanted}


# A name found in at most this many source sentences is a detail, not the sources' subject.
NAME_DETAIL_SENTENCES = 2


@dataclass(frozen=True)
class Evidence:
    """The checks' findings on the best sentence; each true field is a reason to refuse."""

    negated: bool = False
    number_absent: bool = False
    number_missing: bool = False
    name_absent: bool = False
    name_elsewhere: bool = False
    name_recombined: bool = False
    antonym: bool = False
    opposite: bool = False
    close_call: bool = False
    untyped: bool = False
    swapped: bool = False
    exchanged: bool = False
    denied: bool = False
    number_moved: bool = False
    negated_elsewhere: bool = False
    no_value: bool = False
    other_speaker: bool = False
    to_listener: bool = False
    said_by_other: bool = False

    def reasons(self) -> tuple[str, ...]:
        return tuple(k for k, v in vars(self).items() if v)


def fold(term: str) -> str:
    """The term without accents ("hervé" -> "herve")."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", term) if not unicodedata.combining(ch))


def _like(word: str, other: str) -> bool:
    """Equal, or a typo of a long word (one pair of folded words; see spelled_like)."""
    return word == other or (len(word) >= 4 and word[:1] == other[:1] and abs(len(word) - len(other)) <= 2
                             and SequenceMatcher(None, word, other).ratio() >= SPELLING_RATIO)


def spelled_like(term: str, terms: set[str]) -> bool:
    """Whether the terms hold this one, allowing accents and a typo in a long name.

    Askers misspell names ("Sentanta Sports", "Primer League"); a misspelt name is still the
    name. Candidates are pre-filtered (same first letter, length within 2) before difflib's
    ratio, so this stays cheap over a few hundred source terms."""
    if term in terms:
        return True
    folded = fold(term)
    if len(folded) < 4:
        return any(fold(t) == folded for t in terms)
    # The raw first letter and length sift the candidates before any is folded.
    return any(t[:1] == folded[:1] and abs(len(t) - len(folded)) <= 2 and _like(folded, fold(t)) for t in terms)


# difflib ratio above which two names are one name misspelt: "sentanta"/"setanta" 0.93,
# "primer"/"premier" 0.92; distinct names such as "turk"/"turkey" (0.8) stay apart.
SPELLING_RATIO = 0.85


# Words that frame what the question asks for ("what kind of", "what is the name of") rather
# than state something the answer must support; a "kind" for a "type" is not a swap.
FRAME_TERMS = frozenset(analyse("name names named kind kinds type types term terms example examples other than called call "
                                "also mean means refer"))
_PLAIN_WORD = re.compile(r"[^\W_]+")
# Words of agreeing context a swap needs around it, counting both sides, each side at least one.
SWAP_CONTEXT = 3
_SWAP_REACH = 2  # context words looked at on each side


def _stems(text: str) -> list[tuple[str, str]]:
    """(word, stem) pairs in order, stop words kept (they are context), case-folded."""
    out = []
    for w in _PLAIN_WORD.findall(text.casefold()):
        terms = analyse(w)
        out.append((w, terms[0] if terms else w))
    return out


# Function words that agree as context whatever their form ("as a limited collection" copies
# "as an infinite collection"; "are easier" / "is harder"), and that are never the swapped word
# themselves (a changed preposition or auxiliary is grammar, "were suspended from" / "following").
_CONTEXT_FORMS = {"an": "a", "are": "is", "was": "is", "were": "is", "be": "is", "been": "is",
                  "has": "have", "had": "have"}
FUNCTION_WORDS = frozenset([
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "being", "has", "have", "had",
    "do", "does", "did", "from", "to", "of", "in", "on", "at", "by", "for", "with", "as", "into",
    "onto", "over", "under", "after", "before", "following", "during", "since", "until", "about",
    "against", "between", "through", "without", "within", "among", "upon", "via", "than", "then",
    "also", "can", "could", "will", "would", "should", "may", "might", "must", "shall", "this",
    "that", "these", "those", "it", "its", "their", "there", "here", "which", "who", "whom",
    "whose", "what", "when", "where", "why", "how", "and", "or", "but", "not", "no",
    # Personal pronouns and determiners: a question about someone says "her" where their own
    # message says "my" ("Joanna's writers group" / "I shared my book with my writers group"),
    # a change of person, not of fact.
    "i", "me", "my", "mine", "we", "us", "our", "ours", "you", "your", "yours", "he", "him", "his",
    "she", "her", "hers", "they", "them", "theirs", "some", "any",
])
# Light verbs: nearly empty of meaning alone, their sense is in the words around them ("get the
# word out" says what "spread the word" says). A sentence that says one where the question has a
# more telling verb paraphrases it; it does not swap it.
_LIGHT_VERBS = frozenset(["get", "gets", "got", "gotten", "getting", "make", "makes", "made", "making", "take",
                          "takes", "took", "taken", "taking", "give", "gives", "gave", "given", "giving", "put",
                          "puts", "putting", "go", "goes", "went", "gone", "going", "keep", "keeps", "kept",
                          "keeping"])
# Stands for a clause's edge: the start and end of a text and a comma, semicolon, colon or
# bracket in it. A swap at the end of a question and of a clause ("laid out by various
# companies?" / "by various researchers.") agrees there.
_EDGE = ("", "")
_CLAUSE_BREAK = re.compile(r"[,;:()\[\]]")
# Auxiliaries that end a question's fronted wh-phrase: "How many full time janitors | does
# Victoria have?" copies "... full-time teachers." up to the auxiliary.
_FRONTING_AUXILIARIES = frozenset(["does", "did", "do", "is", "are", "was", "were", "has", "have", "had", "can",
                                   "could", "will", "would"])
_FRONTED = frozenset(["how", "what", "which", "whose"])


def _context_stems(text: str, question: bool = False) -> list[tuple[str, str]]:
    """``_stems`` with function-word forms merged and an edge marker at each clause's edge
    (in a question, also where its fronted wh-phrase ends)."""
    out = [_EDGE]
    for clause in _CLAUSE_BREAK.split(text):
        pairs = _stems(clause)
        if not pairs:
            continue
        for k, (w, st) in enumerate(pairs):
            if (question and k > 1 and w in _FRONTING_AUXILIARIES and pairs[0][0] in _FRONTED
                    and not any(x in _FRONTING_AUXILIARIES for x, _ in pairs[1:k])):
                out.append(_EDGE)
            out.append((w, _CONTEXT_FORMS.get(w, st)))
        out.append(_EDGE)
    return out


def swapped_word(question: str, sentence: str, context: int = SWAP_CONTEXT) -> tuple[str, str] | None:
    """A word of the question the sentence replaces with another in the same place, or None.

    SQuAD 2.0's writers made many unanswerable questions by copying a sentence and changing
    one word ("formal" for "informal", "janitors" for "teachers"); a paraphrase changes more,
    or keeps the word. So a swap is: a content word of the question absent from the sentence
    (allowing a typo), a different sentence word that the question lacks, and the same words
    on both sides of the two, at least ``context`` of them in all (up to two a side; a clause's
    edge in both texts counts as one, see ``_context_stems``), one not a stop word. Neither word
    is a function word. Returns (question word, sentence word)."""
    q = _context_stems(question, question=True)
    s = _context_stems(sentence)
    s_stems = {st for _, st in s}
    q_stems = {st for _, st in q}
    # Sentence positions by their neighbours' stems: a swap agrees on both, so each question
    # word looks up its few candidates instead of scanning the sentence.
    slots: dict[tuple[str, str], list[int]] = {}
    for j in range(1, len(s) - 1):
        other, other_stem = s[j]
        if other_stem not in q_stems and other not in STOPWORDS and other not in FUNCTION_WORDS and other not in _LIGHT_VERBS:
            slots.setdefault((s[j - 1][1], s[j + 1][1]), []).append(j)
    for k in range(1, len(q) - 1):
        word, stem = q[k]
        if (len(word) < 2 or word in STOPWORDS or word in FUNCTION_WORDS or stem in QUESTION_TERMS
                or stem in FRAME_TERMS or any(ch.isdigit() for ch in word)):
            continue
        candidates = slots.get((q[k - 1][1], q[k + 1][1]))
        if not candidates or spelled_like(stem, s_stems):
            continue
        for j in candidates:
            agree = content = 0
            for step in (-1, 1):
                for d in range(1, _SWAP_REACH + 1):
                    a, b = k + step * d, j + step * d
                    if a < 0 or b < 0 or a >= len(q) or b >= len(s) or q[a][1] != s[b][1]:
                        break
                    agree += 1
                    if q[a] == _EDGE:
                        break
                    content += q[a][0] not in STOPWORDS
            if agree >= context and content:
                return word, s[j][0]
    return None


# Words that deny what follows them; a yes/no question's answer may well be one ("Does BSkyB
# carry any control?" / "BSkyB does not carry any control").
# Words that negate the word after them ("t" is what is left of "n't" once split): "not known"
# says what "unknown" says.
_NEGATORS = frozenset(["not", "never", "no", "t", "cannot", "without", "nor", "neither"])
# denied_stretch spells "n't" out as "not", so a lone "t" there is a letter ("T(n)"), not a negation.
_DENIALS = _NEGATORS - {"t"}
# Auxiliaries that open a yes/no question ("Does BSkyB carry ...?").
_AUXILIARIES = frozenset(["is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should",
                          "has", "have", "had"])
DENIED_STRETCH = 2  # words the question copies right after the sentence's denial


def denied_stretch(question: str, sentence: str) -> str | None:
    """The sentence's denial of what the question asks about, or None: a negation right before
    words the question copies ("Turing machines are not intended as a practical ..." for "What are
    intended as a practical computing technology?"), the question not negated, not a yes/no
    question, and the words nowhere in the sentence without the denial. SQuAD 2.0's writers
    drop a "not" as often as they add one."""
    if _NEGATION.search(question):
        return None
    q_pairs = _stems(question)
    if not q_pairs or q_pairs[0][0] in _AUXILIARIES:
        return None
    q = [st for _, st in q_pairs]
    s = _stems(re.sub(r"n['’]t\b", " not", sentence))
    stems = [st for _, st in s]
    asked = {tuple(q[j:j + DENIED_STRETCH]) for j in range(len(q) - DENIED_STRETCH + 1)}
    denied: set[tuple[str, ...]] = set()
    plain: set[tuple[str, ...]] = set()
    for k in range(len(s) - DENIED_STRETCH + 1):
        run = tuple(stems[k:k + DENIED_STRETCH])
        if run in asked and any(w not in STOPWORDS for w, _ in s[k:k + DENIED_STRETCH]):
            (denied if k and s[k - 1][0] in _DENIALS else plain).add(run)
    found = sorted(denied - plain)
    return "not " + " ".join(found[0]) if found else None


# Words after a negation that say what it denies ("not be derived for P"): about a clause's verb
# and its object.
NEGATION_REACH = 5


# Where what a negation is about ends: a clause's or sentence's edge (not a decimal point).
_CLAUSE_END = re.compile(r"(?<!\d)[.,](?!\d)|[;:!?()\[\]]")


def _denied_words(text: str) -> list[set[str]]:
    """For each explicit negation (not, n't, never, no, cannot, without, nor, neither) in the
    text, the stems of the words it is about: the next ``NEGATION_REACH`` words of its clause,
    function words, stop words and question words left out."""
    out = []
    for clause in _CLAUSE_END.split(re.sub(r"n['’]t\b", " not", text)):
        pairs = _stems(clause)
        for k, (word, _) in enumerate(pairs):
            if word in _DENIALS:
                out.append({st for w, st in pairs[k + 1:k + 1 + NEGATION_REACH]
                            if w not in STOPWORDS and w not in FUNCTION_WORDS and w not in _DENIALS and st not in QUESTION_TERMS})
    return out


def negated_elsewhere(question: str, sentence: str) -> tuple[str, ...] | None:
    """The question's negation and the sentence's are about different things, or None: "What
    are complexity classes generally not classified into?" against "some complexity classes have
    complicated definitions that do not fit into this framework". A negated question asks for
    what the sources deny; a sentence that denies something else does not say it. Both must
    negate with a word ("not", "never", "no", ...; a sentence with none is ``negated``'s case); a
    question's negation is matched when one of the sentence's negations is followed, within
    ``NEGATION_REACH`` words of its clause, by one of the words that follow the question's
    (allowing a typo): "problems not present in P" / "neither in P nor NP-complete". Returns
    the question's words."""
    asked = [words for words in _denied_words(question) if words]
    if not asked:
        return None
    said = _denied_words(sentence)
    if not said:
        return None
    denied = set().union(*said)
    for words in asked:
        if not any(spelled_like(w, denied) for w in words):
            return tuple(sorted(words))
    return None


_COUNT_TOKEN = re.compile(r"\d[\d,.]*\d|\d|[^\W\d_]+")
_YEAR = re.compile(r"1\d{3}|20\d{2}")
_MONTH_WORDS = frozenset(_MONTH.split("|"))
_NUMBER_REACH = 2  # words between a number and what it counts, at most ("34 cities", "200,000 in population")


def _counted(tokens: Sequence[tuple[str, str]], k: int, step: int) -> tuple[str, str] | None:
    """Next to token k, the first (word, stem) that is not a function word (step 1 after, -1
    before), within ``_NUMBER_REACH`` words past the next one; None when none is."""
    for j in range(k + step, k + step * (_NUMBER_REACH + 2), step):
        if not 0 <= j < len(tokens):
            return None
        if tokens[j][0] not in STOPWORDS and tokens[j][0] not in FUNCTION_WORDS:
            return tokens[j]
    return None


def moved_number(question: str, sentence: str) -> tuple[str, str] | None:
    """A number of the question that the sentence has, but counting something else, while what
    the question counts has another number there, or None: "What consists of eight Combined
    Statistical Areas?" against "one Combined Statistical Area, eight Metropolitan Statistical
    Areas". Years and months are dates, not counts, and are left out. Returns (number, word)."""
    def tokens(text: str) -> list[tuple[str, str]]:
        out = []
        for w in _COUNT_TOKEN.findall(text.casefold()):
            terms = analyse(w) if not w[0].isdigit() else [w]
            out.append((w, terms[0] if terms else w))
        return out

    def is_count(word: str | None) -> bool:
        return bool(word) and bool(_NUMBER.fullmatch(word)) and not _YEAR.fullmatch(word)

    q, s = tokens(question), tokens(sentence)
    # What each number of the sentence counts, and which numbers count each word: one pass.
    counts: dict[str, set[str | None]] = {}
    counted_by: dict[str, set[str]] = {}
    for j, (word, stem) in enumerate(s):
        if is_count(word):
            after = _counted(s, j, 1)
            counts.setdefault(word, set()).add(after[1] if after else None)
        before = _counted(s, j, -1)
        if before and is_count(before[0]):
            counted_by.setdefault(stem, set()).add(before[0])
    for k, (number, _) in enumerate(q):
        # "one", "two", "first" in a question count what it asks for ("name one"): not a claim.
        after = _counted(q, k, 1) if is_count(number) and number not in COUNTING_WORDS else None
        counted = after[1] if after else None
        if counted is None or counted in QUESTION_TERMS or is_count(counted) or counted in _MONTH_WORDS:
            continue
        if number in counts and counted not in counts[number] and counted_by.get(counted, set()) - {number}:
            return number, counted
    return None


# Words between two exchanged ones ("were turned into"), at most.
EXCHANGE_GAP = 4
# Words looked at on each side of the verb for "Who <verb> <name>?" (one clause, roughly).
_CLAUSE_REACH = 6
_BE_FORMS = frozenset(["is", "are", "was", "were", "be", "been", "being"])


def exchanged_roles(question: str, sentence: str) -> tuple[str, str] | None:
    """Two things the question relates the other way round from the sentence, or None.

    SQuAD 2.0's writers exchange roles: "suburbs were turned into farmlands" against "farmlands
    were turned into suburbs", "OneDrive will soon become SkyDrive" against the reverse; and
    "Who replaced the Normans?" where the sentence says the Normans replaced someone (its subject
    is what the question asks about, in the active voice). Returns (question phrase, sentence
    phrase)."""
    q = [pair for pair in _context_stems(question) if pair != _EDGE]
    s = [pair for pair in _context_stems(sentence) if pair != _EDGE]
    stems = [st for _, st in s]
    # Every run of 3 to EXCHANGE_GAP + 2 sentence stems, reversed ends first, so each question
    # pair is one lookup: linear in both texts, whatever a contrived text repeats.
    runs = {(run[-1], *run[1:-1], run[0]): k for n in range(3, EXCHANGE_GAP + 3)
            for k in range(len(stems) - n + 1) for run in [tuple(stems[k:k + n])]}

    def content(pair: tuple[str, str]) -> bool:
        return len(pair[0]) > 1 and pair[0] not in STOPWORDS and pair[0] not in FUNCTION_WORDS and pair[1] not in QUESTION_TERMS

    for i in range(len(q)):
        if not content(q[i]):
            continue
        for gap in range(1, EXCHANGE_GAP + 1):
            j = i + gap + 1
            if j >= len(q) or not content(q[j]) or q[i][1] == q[j][1]:
                continue
            k = runs.get(tuple(st for _, st in q[i:j + 1]))
            if k is not None:
                return " ".join(w for w, _ in q[i:j + 1]), " ".join(w for w, _ in s[k:k + gap + 2])
    # "Who <verb> <name> ...?": the name is the verb's object; the sentence makes it the subject.
    if len(q) < 3 or q[0][0] != "who" or not content(q[1]) or q[1][0] in _BE_FORMS or q[1][1] not in stems:
        return None
    named = next((pair for pair in q[2:5] if content(pair)), None)
    p = stems.index(q[1][1])
    before = set(stems[max(0, p - _CLAUSE_REACH):p])
    after = stems[p + 1:p + 1 + _CLAUSE_REACH]
    passive = (p > 0 and s[p - 1][0] in _BE_FORMS) or "by" in after[:4]
    if named and named[1] in before and named[1] not in after and not passive:
        return f"who {q[1][0]} ... {named[0]}", " ".join(w for w, _ in s[max(0, p - 2):p + 2])
    return None


# Lower-case words that join the parts of one name ("Robert of Jumieges", "Edward the Confessor").
_NAME_JOINERS = frozenset(["of", "the", "de", "du", "da", "di", "del", "la", "le", "von", "van", "al"])
# Capitalised only because they open a question ("Does BSkyB ...?"); never a name's first part.
_QUESTION_OPENERS = QUESTION_WORDS | _AUXILIARIES
_NAME_TOKEN = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")


def _folded_words(text: str) -> list[str]:
    """Lower-cased, accent-free words; a possessive "'s" dropped, hyphens splitting words."""
    return [fold(w) for w in _PLAIN_WORD.findall(re.sub(r"['’]s\b", "", text).casefold())]


# Words in the longest name looked at ("On the Computational Complexity of Science" has 6), and
# names looked at in one question (real ones hold a few).
MAX_NAME_WORDS = 6
MAX_NAMES = 8


def multiword_names(question: str) -> list[str]:
    """Names of two or more capitalised words in the question ("Mount Gippsland", "Robert of
    Jumieges"), split at punctuation, a possessive ending one; a question's opener is no part."""
    found: list[str] = []
    run: list[str] = []
    previous_end = 0

    def close() -> None:
        while run and run[-1].casefold() in _NAME_JOINERS:
            run.pop()
        # A longer run of capitals is a title or shouting, not a name; the cap also bounds the
        # work a contrived question can cause (contributed and asked text are untrusted).
        if 2 <= sum(w[:1].isupper() for w in run) and len(run) <= MAX_NAME_WORDS:
            found.append(" ".join(run))
        run.clear()

    for index, match in enumerate(_NAME_TOKEN.finditer(question)):
        if question[previous_end:match.start()].strip():  # punctuation between: a list, not one name
            close()
        previous_end = match.end()
        word = re.sub(r"['’]s$", "", match.group(0))
        if word[:1].isupper() and not (index == 0 and word.casefold() in _COMMON_OPENERS | _QUESTION_OPENERS):
            run.append(word)
            if word != match.group(0):
                close()
        elif run and word.casefold() in _NAME_JOINERS:
            run.append(word)
        else:
            close()
    close()
    return found


def recombined_name(question: str, sentences: Sequence[str]) -> str | None:
    """A multi-word name of the question whose words all occur in the sentences but never side by
    side in its order, or None: SQuAD 2.0's writers recombine a paragraph's names ("Mount
    Gippsland" from "Gippsland" and "Mount Bogong"). A name with a word found nowhere is
    ``name_absent``'s case, not this one."""
    names_found = multiword_names(question)
    if not names_found:
        return None
    texts = [_folded_words(s) for s in sentences]
    vocabulary = {w for words in texts for w in words}
    for name in names_found[:MAX_NAMES]:
        parts = _folded_words(name)
        if not all(p in vocabulary or any(_like(p, w) for w in vocabulary) for p in parts):
            continue
        n = len(parts)
        if not any(all(_like(parts[k], words[j + k]) for k in range(n))
                   for words in texts for j in range(len(words) - n + 1) if _like(parts[0], words[j])):
            return name
    return None


def opposite_word(question: str, answer: str, pool_terms: set[str],
                  opposites: Mapping[str, frozenset[str]] | None = None) -> tuple[str, str] | None:
    """A question word that no source has and whose WordNet opposite the answer says, or None.

    SQuAD 2.0's antonym edits ("circuit simplicity" for "circuit complexity"). The word must be
    absent from every source sentence, not just the answer: a right answer often uses an
    opposite beside the asked word ("Emma, sister of Richard" for "Who was Emma's brother?"),
    and then the asked word is elsewhere in the sources. An opposite the answer negates ("not
    known" for "unknown") is a paraphrase. Returns (question term, answer word)."""
    table = antonym_stems() if opposites is None else opposites
    q_terms = content_terms(question)
    answer_words = _stems(answer)
    for term in sorted(q_terms):
        others = table.get(term)
        if not others or spelled_like(term, pool_terms):
            continue
        for k, (word, stem) in enumerate(answer_words):
            if stem in others and stem not in q_terms and not any(w in _NEGATORS for w, _ in answer_words[max(0, k - 2):k]):
                return term, word
    return None


def examine(question: str, answer: str, answer_terms: set[str], pool: Sequence[set[str]],
            sentences: Sequence[str] = (), wording: str | None = None, titles: str = "") -> Evidence:
    """Run every check on the answer's sentences; ``pool`` is the analysed terms of every source
    sentence, ``sentences`` their text (for the names' word order); ``wording``: the answer as its
    sources word it, for the opposites checks, when ``answer`` adds to it (a message's resolved
    dates: "last Saturday (the Saturday before 25 May 2023)" says no "before" of its own);
    ``titles``: the titles of the answer's sources, whose numbers the answer speaks within
    ("Kent County Cricket Club in 2011": "... joined Kent as their overseas player in June")."""
    worded = answer if wording is None else wording
    pool_terms = set().union(*pool) if pool else set()
    q_numbers = number_tokens(question) - COUNTING_WORDS
    q_digits = {_numeral(t) for t in analyse(question) if any(ch.isdigit() for ch in t)}
    pool_digits = {_numeral(t) for t in pool_terms if t[:1].isdigit()}
    q_names = name_terms(question)
    absent = {t for t in q_names if not spelled_like(t, pool_terms)}
    missing = {t for t in q_names - absent if not spelled_like(t, answer_terms)}
    kind = answer_type(question)
    return Evidence(
        negated=negated(question, answer),
        number_absent=bool(q_digits - pool_terms - pool_digits),
        number_missing=bool(q_numbers - number_tokens(f"{answer} {titles}")),
        name_absent=bool(absent),
        name_elsewhere=any(sum(t in terms for terms in pool) <= NAME_DETAIL_SENTENCES for t in missing),
        name_recombined=recombined_name(question, sentences) is not None,
        antonym=antonym_swap(question, worded),
        opposite=opposite_word(question, worded, pool_terms) is not None,
        untyped=not has_answer_type(kind, answer, question),
        no_value=kind in ("date", "number") and not has_answer_type(kind, answer, question),
        swapped=swapped_word(question, answer) is not None,
        exchanged=exchanged_roles(question, answer) is not None,
        denied=denied_stretch(question, answer) is not None,
        number_moved=moved_number(question, answer) is not None,
        negated_elsewhere=negated_elsewhere(question, answer) is not None,
    )


def other_speaker(question: str, claims: Sequence[str], speakers: Sequence[str]) -> bool:
    """The question asks about a speaker of the sources, and the answer is someone else's
    message that does not name them: "When did Melanie paint a sunrise?" answered by
    Caroline's "I painted a sunrise". ``claims`` start with their speaker ("Caroline, 8 May
    2023: ..."); a speaker is "asked about" when the question names them."""
    named = asked_speakers(question, speakers)
    if not named or not claims:
        return False
    return not any(s.casefold() in claim.casefold() for s in named for claim in claims)


def full_speaker_names(question: str, speakers: Sequence[str]) -> str:
    """The question with a speaker's short name written out ("Mel" -> "Melanie" when Melanie is
    the only speaker whose first name starts so): people call each other by short names, and
    every check reads names whole."""
    firsts = {s.split()[0] for s in speakers if s and s.split()}

    def whole(match: re.Match[str]) -> str:
        word = match.group(0)
        longer = [f for f in firsts if f != word and f.startswith(word)]
        return longer[0] if len(word) >= 3 and len(longer) == 1 and word not in firsts else word

    return re.sub(r"\b[A-Z][a-z]+\b", whole, question) if firsts else question


def asked_speakers(question: str, speakers: Sequence[str]) -> list[str]:
    """The speakers the question names ("Melanie's grandma" names Melanie)."""
    asked = {re.sub(r"['’]s$", "", w.casefold()) for w in _WORD.findall(question)}
    return [s for s in speakers if s and all(part.casefold() in asked for part in s.split())]


_SECOND_PERSON = re.compile(r"\b(?:you|your|yours|yourself|u|ur)\b", re.IGNORECASE)
_FIRST_PERSON = re.compile(r"\b(?:i|me|my|mine|myself|we|us|our|ours|i['’]m|i['’]ve|i['’]d|i['’]ll)\b", re.IGNORECASE)


def speaks_of_self(message: str) -> bool:
    """Whether a message speaks of its speaker ("I", "my", "we")."""
    return bool(_FIRST_PERSON.search(message))


# Words of a question that asks what its speaker told someone: advice, a recommendation, an
# offer ("What advice did Tim give John?"); the answer is words to the listener.
_TELLING = re.compile(r"\b(?:recommend\w*|suggest\w*|advi[cs]e\w*|tips?|encourag\w*|offer\w*|invit\w*|urg\w*|"
                      r"warn\w*|remind\w*)\b", re.IGNORECASE)


def to_listener(question: str, messages: Sequence[str], speakers: Sequence[str]) -> bool:
    """The question asks about a speaker, and every message the answer quotes speaks of its
    listener ("So proud of you!", "Your charity race sounds great") and not of its speaker: it
    tells what the asked person said to someone, not what they did. Unless that is what the
    question asks: what one speaker told another ("What did John share with Tim?", both named)
    or advised, recommended or offered. ``messages``: the quoted sentences, without their speaker."""
    asked = asked_speakers(question, speakers)
    if not messages or not asked or len(asked) > 1 or _TELLING.search(question):
        return False
    # The listener is "you", or addressed by name: "Hey Gina, congrats on the clothing store!"
    listeners = {part.casefold() for s in speakers if s and s not in asked for part in s.split()}

    def to_them(m: str) -> bool:
        return bool(_SECOND_PERSON.search(m)) or any(w.casefold() in listeners for w in _WORD.findall(m))

    return all(to_them(m) and not _FIRST_PERSON.search(m) for m in messages)


# Number words a question uses to count what it asks for ("name one", "what are two
# examples"), not to name a number the answer must repeat.
COUNTING_WORDS = frozenset({"one", "two", "first"})


@dataclass(frozen=True)
class Rule:
    """Answer when ``score - sum(penalties of the evidence found) >= threshold``."""

    threshold: float
    penalties: Mapping[str, float] = field(default_factory=dict)
    # The threshold when the best sentence is a chat message: a message is short and is scored
    # with its speaker's name, so its scores run higher than prose's for the same evidence.
    said_threshold: float | None = None

    def for_messages(self) -> Rule:
        """The rule for an answer from chat messages."""
        return replace(self, threshold=self.said_threshold) if self.said_threshold is not None else self


@dataclass(frozen=True)
class Verdict:
    answerable: bool
    margin: float  # adjusted score minus threshold
    reasons: tuple[str, ...]  # the checks that fired, worst first


def judge(score: float, evidence: Evidence, rule: Rule) -> Verdict:
    """Apply the rule: each fired check costs its penalty; refuse below the threshold."""
    fired = sorted(evidence.reasons(), key=lambda r: -rule.penalties.get(r, 0.0))
    margin = score - sum(rule.penalties.get(r, 0.0) for r in fired) - rule.threshold
    reasons = tuple(fired) + (("low_score",) if score < rule.threshold else ())
    return Verdict(margin >= 0, round(margin, 4), reasons)


# Fitted by ``bench/answers.py --fit --precision 0.885`` on the even half of squad2-dev-5 (the
# odd half held out), last on 2026-12-01 with exchanged, denied and the wider negated, swapped
# and antonym:
# coordinate ascent on the objective itself, each penalty from a coarse grid, from the better of
# two starts (a logistic regression of "right answer" vs "unanswerable", or the rule in force):
# the most no-answer accuracy at answer recall >= 0.80 on that half. The precision floor is
# 0.885, not 0.89: refusing an unanswerable question that cites the paragraph it was written
# against lowers the benchmark's citation precision (all questions, HTTP: docs/assistant.md).
# Best scores lie between about 0.3 and 1.3: a penalty of 0.5 or more is a veto in practice.
# negated_elsewhere and no_value (2026-12-05) are vetoes set by hand, not fitted: on the even half
# they refuse 9 more unanswerable questions and no answer that held the gold span.
RULE = Rule(
    threshold=0.399,
    penalties={"negated": 1.0, "number_absent": 0.5, "number_missing": 1.0, "name_absent": 0.5,
               "name_elsewhere": 0.5, "name_recombined": 1.0, "antonym": 0.5, "opposite": 1.0,
               "close_call": 1.0, "untyped": 0.0, "swapped": 1.0, "exchanged": 1.0,
               "denied": 1.0, "number_moved": 1.0, "negated_elsewhere": 1.0, "no_value": 1.0, "other_speaker": 1.0,
               "to_listener": 1.0, "said_by_other": 1.0},
    # Fitted on the even half of locomo-dev (conversations; the odd half held out), 2026-12-02:
    # at 0.55 a fifth of the answered adversarial questions are refused for a tenth of the
    # answerable ones (scripted sweep over 0.3-0.7, docs/assistant.md).
    said_threshold=0.55,
)
