"""Does a source say what an answer sentence says? The check that decides who is paid.

A bag of words is not a claim: a source that says the opposite, a list of the sentence's words,
or the question asked back share the words of a supported sentence. So a sentence is supported
by a source only when all of these hold (pure functions; the embedder is passed in):

- it states something: not a question, and it has content terms beyond the question's (text
  made only of the question's terms answers nothing, whatever a source says);
- the source states it: the source's sentences, questions left out (a question in a source
  asserts nothing), hold at least ``lexical_supported`` of its content terms, or hold at least
  ``lexical_floor`` of them and one source sentence is within ``cosine_supported`` of it
  (MiniLM, unit vectors: a paraphrase with other words and another clause order);
- the source does not say the opposite: against the source sentence that shares most of its
  terms, no negation ("not", "never", "no", "n't", "without", ...) before words the other one
  states plainly, and no word whose WordNet antonym stands in that source sentence in its place;
- it has the source's syntax, not only its words: a sentence of four or more content terms,
  and the source sentence it leans on, need function words (a keyword list has none); and
  when the sentence's words alone would decide (lexical support), its words that the source
  sentence has, read in order, must mostly be neighbours there too (``order_agreement``: a
  shuffle of the words is not; reordered clauses and passive/active keep most neighbours). A
  rewording decided by the embedding has other words in another order and is not held to it.

Thresholds were tuned on the dev half of the labelled set ``bench/support_check.py`` builds
from the shared data (squad2-dev-5, hotpotqa-dev, scifact); its held-out figures are in
docs/assistant.md ("Support check").
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from assistant.chat.answerability import QUESTION_TERMS
from assistant.chat.antonyms import antonym_stems, antonym_words
from assistant.chat.sentences import split_sentences
from retrieval.lexical import analyse

Embed = Callable[[list[str]], np.ndarray]

# A sentence must touch the question: share a content term with it or be this close in
# embedding space (unrelated sentences score about 0.0-0.15 with MiniLM).
QUESTION_RELEVANCE = 0.2
LEXICAL_SUPPORTED = 0.6
LEXICAL_FLOOR = 0.25
# Dev half: the closest other paragraph passes on the embedding for 20 of 200 sentences at 0.62,
# 10 at 0.72 (some of them do state the same fact); rewordings of a sentence score 0.8-0.95.
COSINE_SUPPORTED = 0.72
# Syntax checks start at this many distinct content terms: "France." answers "In what country
# is Normandy?" and has no syntax to check.
SYNTAX_TERMS = 4
# Share of a sentence's words that are function words (stop words); natural English has 0.3-0.5.
FUNCTION_SHARE = 0.06
# Neighbouring shared words of the sentence (function words too) that stand within ORDER_REACH
# words of each other in the source sentence; at least ORDER_PAIRS such pairs before the share
# is judged. Dev half: a verbatim sentence scores 1.0, paraphrases p02 0.75, shuffles p98 0.38.
ORDER_REACH = 1
ORDER_AGREEMENT = 0.6
ORDER_PAIRS = 3
# The words decide (lexical support) only while fewer than WORDS_DECIDE_ABSENT of the sentence's
# terms are missing from the source, or at least WORDS_DECIDE_ALONE of them stand there: two terms
# a short sentence has and the source lacks are a claim of its own ("Our kids love dinosaurs and
# rockets." against "a loving environment for our kids", 3 of 5), and the embedding decides; in
# a long sentence two are framing ("Melanie said on 8 May 2023: ... last year (2022)", 11 of 13).
WORDS_DECIDE_ABSENT = 2
WORDS_DECIDE_ALONE = 0.75
# Content words after a negation that it denies ("was not founded by" denies "founded").
NEGATION_REACH = 3

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_NEGATOR = re.compile(r"^(?:not|never|no|cannot|without|nor|neither|none|nobody|nothing|nowhere)$|n['’]t$")
_QUESTION_START = re.compile(
    r"^(?:what|which|who|whom|whose|when|where|why|how|is|are|was|were|do|does|did|can|could|will|would|should|"
    r"has|have|had)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Thresholds:
    lexical_supported: float = LEXICAL_SUPPORTED
    lexical_floor: float = LEXICAL_FLOOR
    cosine_supported: float = COSINE_SUPPORTED
    function_share: float = FUNCTION_SHARE
    order_agreement: float = ORDER_AGREEMENT
    question_relevance: float = QUESTION_RELEVANCE
    words_decide_absent: int = WORDS_DECIDE_ABSENT
    words_decide_alone: float = WORDS_DECIDE_ALONE


DEFAULT = Thresholds()


@dataclass(frozen=True)
class Verdict:
    """Whether a source supports a sentence, the measures, and why not when it does not."""

    supported: bool
    lexical: float
    cosine: float | None
    reason: str  # "supported" or what failed: question, echo, empty, negated, antonym, no syntax, word order, weak


# What ``states`` says of a sentence that asserts nothing (inside a quotation it is skipped).
_STATES_NOTHING = frozenset({"question", "empty", "echo"})


def is_question(text: str) -> bool:
    """A sentence that asks rather than states: ends with '?', or opens like a question and has no full stop."""
    t = text.strip().rstrip("\"'”’)")
    if t.endswith("?"):
        return True
    return bool(_QUESTION_START.match(t)) and not t.endswith((".", "!"))


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


@functools.lru_cache(maxsize=16_384)
def _cached_terms(word: str) -> tuple[str, ...]:
    return tuple(analyse(word))


def _word_terms(word: str) -> tuple[str, ...]:
    """The analyser's terms of one word, remembered (every pair checked re-reads the same words);
    long "words" of untrusted text are not kept, so the cache stays a few MB at most."""
    return _cached_terms(word) if len(word) <= 40 else tuple(analyse(word))


def _negated_terms(text: str) -> tuple[list[str], set[str]]:
    """The text's content terms in order, and those a negation right before them denies."""
    ordered: list[str] = []
    denied: set[str] = set()
    reach = 0
    for w in words(text):
        if _NEGATOR.search(w):
            reach = NEGATION_REACH
            continue
        terms = _word_terms(w)
        if terms:
            ordered.extend(terms)
            if reach:
                denied.update(terms)
                reach -= 1
    return ordered, denied


def contradiction(sentence: str, source_sentence: str) -> str | None:
    """'negated' or 'antonym' when the source sentence says the opposite of the sentence, else None."""
    s_terms, s_denied = _negated_terms(sentence)
    c_terms, c_denied = _negated_terms(source_sentence)
    s_set, c_set = set(s_terms), set(c_terms)
    # A term denied on one side and stated on the other (the stated side may not deny it too).
    if (s_denied & c_set) - c_denied or (c_denied & s_set) - s_denied:
        return "negated"
    # A word whose opposite the source sentence says more often than the sentence does: "lower
    # bounds" against "upper bounds", "lack" against "had" (function words too, hence raw words).
    s_words, c_words = Counter(words(sentence)), Counter(words(source_sentence))
    opposites = antonym_words()
    for w in s_words:
        if s_words[w] > c_words[w] and any(c_words[o] > s_words[o] for o in opposites.get(w, ())):
            return "antonym"
    table = antonym_stems()
    for t in s_set - c_set:
        if table.get(t, frozenset()) & (c_set - s_set):
            return "antonym"
    return None


def verbatim(sentence: str, source_sentence: str) -> bool:
    """The sentence's words stand in the source sentence as they are, in one stretch: the source
    said exactly this ("Octopuses have three hearts." has no stop word, and is no keyword dump)."""
    ws, cs = [w.casefold() for w in words(sentence)], [w.casefold() for w in words(source_sentence)]
    n = len(ws)
    return n > 0 and any(cs[i:i + n] == ws for i in range(len(cs) - n + 1))


def function_share(text: str) -> float:
    """Share of the text's words that the analyser drops (stop words)."""
    ws = words(text)
    if not ws:
        return 0.0
    return sum(1 for w in ws if not _word_terms(w)) / len(ws)


def order_agreement(sentence_terms: Sequence[str], source_terms: Sequence[str]) -> tuple[float, int]:
    """Share of neighbouring shared words of the sentence that stand within ORDER_REACH of each
    other (either order: passive and active keep neighbours) in the source, and how many such
    pairs there were."""
    positions: dict[str, list[int]] = {}
    for i, t in enumerate(source_terms):
        positions.setdefault(t, []).append(i)
    shared = [t for t in sentence_terms if t in positions]
    pairs = [(a, b) for a, b in pairwise(shared) if a != b]
    if not pairs:
        return 1.0, 0
    near = sum(1 for a, b in pairs
               if min(abs(i - j) for i in positions[a] for j in positions[b]) <= ORDER_REACH)
    return near / len(pairs), len(pairs)


@dataclass(frozen=True)
class Source:
    """A source as the check reads it: its stating sentences and their terms."""

    sentences: list[str]
    terms: list[list[str]]
    all_terms: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Source:
        stating = [s for s in split_sentences(text) if not is_question(s)]
        terms = [analyse(s) for s in stating]
        return cls(stating, terms, frozenset(t for ts in terms for t in ts))


class SupportCheck:
    """Judges (sentence, source) pairs for one question; embeddings computed once and only when needed."""

    def __init__(self, question: str, embed: Embed | None = None, thresholds: Thresholds = DEFAULT) -> None:
        self.question_terms = frozenset(analyse(question))
        self.asked = frozenset(self.question_terms - QUESTION_TERMS)
        self.embed = embed
        self.t = thresholds
        self._vectors: dict[str, np.ndarray] = {}
        self._sentences: dict[str, tuple[str | None, frozenset[str]]] = {}

    def vectors(self, texts: Sequence[str]) -> None:
        """Embed (once) the texts not embedded yet."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing and self.embed is not None:
            for t, v in zip(missing, self.embed(missing)):
                self._vectors[t] = np.asarray(v)

    def states(self, sentence: str) -> str | None:
        """Why the sentence states nothing checkable ('question', 'empty', 'echo'), or None."""
        if is_question(sentence):
            return "question"
        terms = set(analyse(sentence)) - QUESTION_TERMS  # "has", "how", "many": not what is said
        if not terms:
            return "empty"
        if terms <= self.asked:
            return "echo"
        return None

    def _read(self, sentence: str) -> tuple[str | None, frozenset[str]]:
        """Why the sentence states nothing (or None) and its distinct terms, once per sentence."""
        read = self._sentences.get(sentence)
        if read is None:
            read = self._sentences[sentence] = (self.states(sentence), frozenset(analyse(sentence)))
        return read

    def judge(self, sentence: str, source: Source) -> Verdict:
        """Does ``source`` support ``sentence``? A unit of several sentences (a quoted message,
        ``citations.quotation_units``) is supported as a whole, or when each of its sentences
        that states something is (one at least): the question or greeting a quoted message holds
        states nothing and takes nothing away."""
        whole = self._judge_one(sentence, source)
        parts = split_sentences(sentence)
        if whole.supported or len(parts) < 2:
            return whole
        verdicts = [self._judge_one(part, source) for part in parts]
        stating = [v for v in verdicts if v.reason not in _STATES_NOTHING]
        if not stating:
            return verdicts[0]
        failed = next((v for v in stating if not v.supported), None)
        if failed is not None:
            return failed
        weakest = min(stating, key=lambda v: v.lexical)
        return Verdict(True, weakest.lexical, weakest.cosine, "supported")

    def _judge_one(self, sentence: str, source: Source) -> Verdict:
        why, distinct = self._read(sentence)
        if why is not None:
            return Verdict(False, 0.0, None, why)
        lexical = len(distinct & source.all_terms) / len(distinct)
        if lexical < self.t.lexical_floor or not source.sentences:
            return Verdict(False, round(lexical, 4), None, "weak")
        # The source sentence the claim leans on: most shared terms (first on ties).
        best = max(range(len(source.sentences)), key=lambda i: len(distinct & set(source.terms[i])))
        opposite = contradiction(sentence, source.sentences[best])
        if opposite:
            return Verdict(False, round(lexical, 4), None, opposite)
        if len(distinct) >= SYNTAX_TERMS and not verbatim(sentence, source.sentences[best]) and (
                function_share(sentence) < self.t.function_share
                or function_share(source.sentences[best]) < self.t.function_share):
            return Verdict(False, round(lexical, 4), None, "no syntax")
        absent = len(distinct - source.all_terms)
        if lexical >= self.t.lexical_supported and (absent < self.t.words_decide_absent
                                                    or lexical >= self.t.words_decide_alone):
            # The words alone would decide: they must also stand in the source's order. (A
            # rewording that the embedding decides below has other words in another order.)
            agreement, pairs = order_agreement(words(sentence), words(source.sentences[best]))
            if len(distinct) >= SYNTAX_TERMS and pairs >= ORDER_PAIRS and agreement < self.t.order_agreement:
                return Verdict(False, round(lexical, 4), None, "word order")
            return Verdict(True, round(lexical, 4), None, "supported")
        if self.embed is None:
            return Verdict(False, round(lexical, 4), None, "weak")
        self.vectors([sentence, *source.sentences])
        sv = self._vectors[sentence]
        cosine = max(float(sv @ self._vectors[s]) for s in source.sentences)
        ok = cosine >= self.t.cosine_supported
        return Verdict(ok, round(lexical, 4), round(cosine, 4), "supported" if ok else "weak")


def supports(sentence: str, source: str, question: str, embed: Embed | None = None,
             thresholds: Thresholds = DEFAULT) -> Verdict:
    """One (sentence, source) judgement; ``SupportCheck`` shares embeddings across many."""
    return SupportCheck(question, embed, thresholds).judge(sentence, Source.of(source))
