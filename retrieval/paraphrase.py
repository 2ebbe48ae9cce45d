"""Paraphrased copies: a sentence another contributor stored first, reworded.

Word runs (``retrieval.origin``) catch a copy that keeps ten words in a row; a copier who rewords
every few words ("Y was founded by X in 1901" -> "In 1901 X established Y") keeps none. The
sentence encoder still places the two side by side, but it also places side by side sentences
that say different things the same way: templated articles ("The 2011 Ms. Olympia contest was
..." / "The 2012 ..."), and short generic ones ("He is a left-arm fast bowler and a right-hand
batsman." of two players). So a sentence is a paraphrase of an older one only when

- it carries a fact of its own: at least ``MIN_WORDS`` words and a name or a number in digits
  (a sentence with neither, "It was one of the best days of my life.", is said by many people);
- its vector is within ``PARAPHRASE_COSINE`` of the older sentence's;
- it keeps the older sentence's particulars: its numbers (digits, number words and ordinals:
  "his second season" is not "his fourth season"), its names and its first word unless a stop
  word ("Lempster is a town in Sullivan County" is not "Acworth is a town in Sullivan County")
  are all among the new sentence's words: a paraphrase rewords the claim, not its names, years
  or amounts. One-sided: a rewording that adds a detail, a name or a leading "Notably," keeps
  what it copies (and a message's speaker, "Bob: ...", is such an addition to a snippet's
  sentence); a message is said by its speaker ("Maria: I ran ..."), so another speaker's
  message lacks that name and states another fact.

Two people who write the same fact in their own words fall under the same rule: the later
sentence restates knowledge already contributed, is taken out and earns nothing, as a
word-for-word repeat does (docs/retrieval.md, Paraphrased copies).

Thresholds measured by ``bench/sentence_origin.py --paraphrases`` (docs/retrieval.md,
"Paraphrased copies").
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from retrieval.lexical import STOPWORDS
from retrieval.origin import MIN_WORDS, words

# Cosine of a sentence to an older one at or above which, with the same particulars, it is a
# reworded copy (docs/retrieval.md, "Paraphrased copies").
PARAPHRASE_COSINE = 0.88
# Older chunks whose sentences each new sentence is compared with: the nearest by the sentence's
# vector against the chunks' (bounded work per sentence, whatever the store holds).
CANDIDATE_CHUNKS = 4
_TOKEN = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*")
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"[.,](?=\d{3}(?!\d))")
_WORD_PART = re.compile(r"[^\W_]+")
# Capitalised words that are not names wherever they stand.
_NOT_NAMES = frozenset({"i", "i'm", "i’m", "i've", "i’ve", "i'll", "i’ll", "i'd", "i’d"})
# Numbers written as words: what a template changes as often as digits ("fifth year head coach").
_NUMBER_WORDS = frozenset({
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred",
    "thousand", "million", "billion", "trillion", "first", "second", "third", "fourth", "fifth",
    "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth", "thirteenth",
    "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth",
    "hundredth", "thousandth", "once", "twice", "half", "dozen",
})


@dataclass(frozen=True)
class Particulars:
    """What a paraphrase must keep: the numbers and the names, and the words to find names among."""

    numbers: Counter[str]
    names: frozenset[str]  # the parts of capitalised words past the first
    lead: str | None  # the first word, unless a stop word: often the subject's name
    words: frozenset[str]


def _number(digits: str) -> str:
    """A number written with any script's digits, in ASCII, thousands separators (a comma, or a
    point before exactly three digits: "1.200" is 1,200) dropped."""
    ascii_digits = "".join(str(unicodedata.decimal(c)) if c.isdigit() else c for c in digits)
    return _THOUSANDS.sub("", ascii_digits).replace(",", "")


def particulars(text: str) -> Particulars:
    """A sentence's numbers (digits, number words), its names (the parts of capitalised words past
    the first, case-folded: "Amundsen-Scott" names Amundsen and Scott), its first word and all its words."""
    text = unicodedata.normalize("NFKC", text)
    tokens = [_POSSESSIVE.sub("", t) for t in _TOKEN.findall(text)]  # "Earth's" names Earth
    folded = words(text)
    names = frozenset(part.casefold() for t in tokens[1:]
                      if t[:1].isupper() and t.casefold() not in _NOT_NAMES and not t[:1].isdigit()
                      for part in _WORD_PART.findall(t) if len(part) > 1)
    numbers = Counter([_number(n) for n in _NUMBER.findall(text)] + [w for w in folded if w in _NUMBER_WORDS])
    lead = tokens[0].casefold() if tokens and tokens[0].casefold() not in STOPWORDS else None
    return Particulars(numbers, names, lead, frozenset(folded) | frozenset(t.casefold() for t in tokens))


def carries_particulars(text: str) -> bool:
    """Whether a sentence is long and particular enough to be somebody's fact: ``MIN_WORDS``
    words and a name or a number in digits ("one of the best days" is anybody's)."""
    if len(words(text)) < MIN_WORDS:
        return False
    return bool(particulars(text).names or _NUMBER.search(text))


def keeps_particulars(older: Particulars, new: Particulars) -> bool:
    """Whether ``new`` keeps what ``older`` particularly says: each of its numbers (as often), its
    names and its first word among the new sentence's."""
    return (not older.numbers - new.numbers and older.names <= new.words
            and (older.lead is None or older.lead in new.words))


def paraphrase_of(text: str, vector: np.ndarray, older: Sequence[tuple[str, np.ndarray]],
                  threshold: float = PARAPHRASE_COSINE) -> tuple[int, float] | None:
    """The older sentence ``text`` rewords (its index and cosine: the most similar one that
    qualifies), or None. Vectors are unit length (the embedder's)."""
    if not older or not carries_particulars(text):
        return None
    sims = np.stack([v for _, v in older]) @ vector
    mine = particulars(text)
    for i in np.argsort(-sims):
        if sims[i] < threshold:
            break
        if keeps_particulars(particulars(older[int(i)][0]), mine):
            return int(i), float(sims[i])
    return None
