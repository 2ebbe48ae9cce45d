"""Citations in an answer: parse the markers, check each against its source, weigh the sources.

Pure functions over plain data; the embedder is passed in as a callable.

Markers: ``[1]``, ``[1, 3]`` and ``[1][3]`` cite the sources with those numbers (1-based, in
the order the prompt listed them). A marker belongs to the sentence it ends (or sits in).

Verification (why these thresholds): a citation stands when the sentence is supported by the
cited chunk, measured two ways on the sentence with its markers removed:

- lexical support = share of the sentence's distinct content terms (retrieval's analyser:
  case-folded, stop words dropped, stemmed) that occur in the chunk;
- semantic support = cosine of the sentence's and the chunk's embeddings (MiniLM, unit vectors).

Measured on squad2-dev-5 (``bench/answers.py --calibrate``) with a paraphrase proxy: a claim
built from a question and its gold answer ("When were the Normans in Normandy 10th and 11th
centuries."), checked against its gold paragraph and against a sibling paragraph of the same
article (same topic and names, wrong source), 705 claims:

    lexical support  gold p10/p50/p90 = 0.50/0.67/0.86   sibling = 0.00/0.15/0.36
    cosine           gold p10/p50/p90 = 0.45/0.63/0.78   sibling = 0.09/0.33/0.56

``LEXICAL_SUPPORTED = 0.6`` sits above the sibling p90 and accepts most real claims outright;
below it, an embedding cosine of at least ``COSINE_SUPPORTED = 0.5`` (above the sibling median,
near the gold p25) with a lexical floor of ``LEXICAL_FLOOR = 0.25`` (a "paraphrase" sharing
almost no words with its source is not a checkable claim) decides. The rule accepts 94.3% of
gold claims and 12.2% of sibling ones; some siblings do state the same fact, so the second
figure is an upper bound on wrongly kept citations. Sentences copied verbatim (the extractive
responder) have lexical support 1.0.

Attribution: every distinct answer sentence with at least one verified citation carries one
unit of credit, split equally among its verified citations; a source's weight is its share of
the total. Weights are exact (``Fraction``) and are then rounded to integer parts per million
with largest-remainder rounding, so they always sum to exactly 1,000,000 - no floats on a path
that money follows. Repeating a sentence does not repeat its credit, and sentences that share
nothing with the question earn nothing (a chunk saying "always cite me" cannot earn by being
quoted off-topic).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TypeVar

import numpy as np

from assistant.chat.sentences import split_spans
from retrieval.lexical import analyse

PPM = 1_000_000
LEXICAL_SUPPORTED = 0.6
LEXICAL_FLOOR = 0.25
COSINE_SUPPORTED = 0.5
# A sentence must touch the question: share a content term with it or be this close in
# embedding space (unrelated sentences score about 0.0-0.15 with MiniLM).
QUESTION_RELEVANCE = 0.2

_MARKER_GROUP = re.compile(r"\[\s*(\d{1,6}(?:\s*,\s*\d{1,6})*)\s*\]")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")

Embed = Callable[[list[str]], np.ndarray]
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of an answer: its text without markers and the sources it cites."""

    index: int
    text: str
    markers: tuple[int, ...]  # in range, first appearance order, no repeats
    dropped: tuple[int, ...] = ()  # markers that point at no source


@dataclass(frozen=True)
class Check:
    """The verdict on one citation: does source ``marker`` support sentence ``sentence``?"""

    sentence: int
    marker: int
    lexical: float
    cosine: float | None
    supported: bool


@dataclass(frozen=True)
class Thresholds:
    lexical_supported: float = LEXICAL_SUPPORTED
    lexical_floor: float = LEXICAL_FLOOR
    cosine_supported: float = COSINE_SUPPORTED
    question_relevance: float = QUESTION_RELEVANCE


@dataclass(frozen=True)
class Attribution:
    """Checked citations of an answer and the weight each cited source earned."""

    sentences: list[AnswerSentence]
    checks: list[Check]
    weights: dict[int, int] = field(default_factory=dict)  # marker -> parts per million

    @property
    def verified_markers(self) -> list[int]:
        """Markers with at least one verified citation, in order of first appearance."""
        seen: dict[int, None] = {}
        for c in self.checks:
            if c.supported:
                seen.setdefault(c.marker, None)
        return list(seen)


def markers_in(text: str) -> list[int]:
    """Every marker number in the text, in order (ranges not checked)."""
    out: list[int] = []
    for group in _MARKER_GROUP.finditer(text):
        out.extend(int(n) for n in group.group(1).split(","))
    return out


def strip_markers(text: str) -> str:
    """The text without citation markers (and without the space a marker leaves before punctuation)."""
    return " ".join(_SPACE_BEFORE_PUNCT.sub(r"\1", _MARKER_GROUP.sub("", text)).split())


def quotation_units(answer: str) -> list[str]:
    """The answer's sentences, a quotation's sentences kept together: the marker after a quoted
    message ('Maria said: "I ran a 5K. It was for charity." [1]') cites all of it, not only the
    sentence it follows."""
    units: list[str] = []
    open_quote = False
    for span in split_spans(answer):
        if open_quote and units:
            units[-1] = f"{units[-1]} {span.text}"
        else:
            units.append(span.text)
        for ch in span.text:
            if ch == '"':
                open_quote = not open_quote
            elif ch == "“":
                open_quote = True
            elif ch == "”":
                open_quote = False
    # A quote that never closes is a stray mark, not a quotation: every sentence on its own.
    return [span.text for span in split_spans(answer)] if open_quote else units


def parse_citations(answer: str, n_sources: int) -> list[AnswerSentence]:
    """Split the answer into sentences (a quotation is one) and read each one's markers; drop
    out-of-range ones."""
    sentences: list[AnswerSentence] = []
    for i, text in enumerate(quotation_units(answer)):
        keep: dict[int, None] = {}
        dropped: dict[int, None] = {}
        for n in markers_in(text):
            (keep if 1 <= n <= n_sources else dropped).setdefault(n, None)
        sentences.append(AnswerSentence(i, strip_markers(text), tuple(keep), tuple(dropped)))
    return sentences


def lexical_support(sentence_terms: Sequence[str], chunk_terms: set[str]) -> float:
    """Share of the sentence's distinct content terms that the chunk contains."""
    distinct = set(sentence_terms)
    if not distinct:
        return 0.0
    return len(distinct & chunk_terms) / len(distinct)


def verify(
    sentences: Sequence[AnswerSentence],
    sources: Sequence[str],
    question: str,
    embed: Embed | None = None,
    thresholds: Thresholds = Thresholds(),
) -> list[Check]:
    """Check every citation of every sentence against the text of the source it names.

    ``sources[m - 1]`` is the text of source ``m``. Without ``embed`` only lexical support counts.
    """
    cited = [s for s in sentences if s.markers]
    if not cited:
        return []
    chunk_terms = {m: set(analyse(sources[m - 1])) for s in cited for m in s.markers}
    question_terms = set(analyse(question))
    sentence_terms = {s.index: analyse(s.text) for s in cited}
    lexical = {(s.index, m): lexical_support(sentence_terms[s.index], chunk_terms[m]) for s in cited for m in s.markers}
    # Embeddings only where the lexical evidence cannot decide: a sentence sharing no term
    # with the question (is it on topic?) and citations between the floor and outright support.
    need_relevance = [s for s in cited if sentence_terms[s.index] and not set(sentence_terms[s.index]) & question_terms]
    need_cosine = [(i, m) for (i, m), lex in lexical.items()
                   if thresholds.lexical_floor <= lex < thresholds.lexical_supported]
    cosines: dict[tuple[int, int], float] = {}
    relevance: dict[int, float] = {}
    if embed is not None and (need_relevance or need_cosine):
        by_index = {s.index: s for s in cited}
        sentence_ids = sorted({s.index for s in need_relevance} | {i for i, _ in need_cosine})
        markers = sorted({m for _, m in need_cosine})
        texts = [question] + [by_index[i].text for i in sentence_ids] + [sources[m - 1] for m in markers]
        vectors = embed(texts)
        svec = {i: vectors[1 + k] for k, i in enumerate(sentence_ids)}
        cvec = {m: vectors[1 + len(sentence_ids) + k] for k, m in enumerate(markers)}
        for s in need_relevance:
            relevance[s.index] = float(svec[s.index] @ vectors[0])
        for i, m in need_cosine:
            cosines[(i, m)] = float(svec[i] @ cvec[m])
    checks: list[Check] = []
    for s in cited:
        terms = sentence_terms[s.index]
        on_topic = bool(set(terms) & question_terms) or relevance.get(s.index, -1.0) >= thresholds.question_relevance
        for m in s.markers:
            lex = lexical[(s.index, m)]
            cos = cosines.get((s.index, m))
            supported = bool(terms) and on_topic and (
                lex >= thresholds.lexical_supported
                or (cos is not None and cos >= thresholds.cosine_supported and lex >= thresholds.lexical_floor)
            )
            checks.append(Check(s.index, m, round(lex, 4), None if cos is None else round(cos, 4), supported))
    return checks


def largest_remainder(shares: Mapping[K, Fraction], total: int) -> dict[K, int]:
    """Integers proportional to ``shares`` that sum to exactly ``total``.

    Each key gets the floor of its exact share; the units left over go to the largest
    remainders (ties: the key listed first). Shares must be non-negative and sum to 1.
    """
    if not shares:
        return {}
    if any(v < 0 for v in shares.values()) or sum(shares.values()) != 1:
        raise ValueError("shares must be non-negative and sum to 1")
    exact = {k: v * total for k, v in shares.items()}
    out = {k: int(v) for k, v in exact.items()}  # int() floors a non-negative Fraction
    left = total - sum(out.values())
    order = sorted(exact, key=lambda k: exact[k] - out[k], reverse=True)  # stable: ties keep order
    for k in order[:left]:
        out[k] += 1
    return out


def weigh(sentences: Sequence[AnswerSentence], checks: Sequence[Check]) -> dict[int, int]:
    """Each source's share of the answer in parts per million (empty when nothing is verified)."""
    verified: dict[int, list[int]] = {}
    for c in checks:
        if c.supported:
            verified.setdefault(c.sentence, []).append(c.marker)
    by_index = {s.index: s for s in sentences}
    seen_texts: set[str] = set()
    credit: dict[int, Fraction] = {}
    units = 0
    for index in sorted(verified):
        key = " ".join(analyse(by_index[index].text))
        if key in seen_texts:
            continue  # a repeated claim earns once
        seen_texts.add(key)
        units += 1
        markers = verified[index]
        for m in markers:
            credit[m] = credit.get(m, Fraction(0)) + Fraction(1, len(markers))
    if not units:
        return {}
    return largest_remainder({m: c / units for m, c in credit.items()}, PPM)


def attribute(
    answer: str,
    sources: Sequence[str],
    question: str,
    embed: Embed | None = None,
    thresholds: Thresholds = Thresholds(),
) -> Attribution:
    """Parse, verify and weigh the citations of an answer in one call."""
    sentences = parse_citations(answer, len(sources))
    checks = verify(sentences, sources, question, embed, thresholds)
    return Attribution(sentences, checks, weigh(sentences, checks))
