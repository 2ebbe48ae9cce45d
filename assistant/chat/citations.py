"""Citations in an answer: parse the markers, check each sentence against the sources, weigh them.

Pure functions over plain data; the embedder is passed in as a callable.

Markers: ``[1]``, ``[1, 3]`` and ``[1][3]`` cite the sources with those numbers (1-based, in
the order the prompt listed them). A marker belongs to the sentence it ends (or sits in).

Verification: every answer sentence is checked against every source, markers or not, by
``support.SupportCheck`` (a source supports a sentence when it says it: not its opposite, not a
list or shuffle of its words, not the question asked back; thresholds and their measurement on
a labelled set in ``assistant/chat/support.py`` and ``bench/support_check.py``). Before, a
source was checked only when marked, with a bag of words (>= 0.6 of the sentence's terms, or a
chunk cosine >= 0.5 over a 0.25 floor): a source saying the opposite, a keyword dump or the
question itself passed, and an answer without markers paid no one.

Attribution: every distinct answer sentence that some source supports carries one unit of
credit, split equally among the sources it names that support it or, when it names none that
does (no markers, markers out of range or on the wrong sentence), among every source that
supports it; a named source that does not support it gets nothing for it. A source's weight is
its share of the total. Weights are exact (``Fraction``) and are then rounded to integer parts per million
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
from assistant.chat.support import (
    COSINE_SUPPORTED,
    DEFAULT,
    LEXICAL_FLOOR,
    LEXICAL_SUPPORTED,
    QUESTION_RELEVANCE,
    Source,
    SupportCheck,
    Thresholds,
)
from retrieval.lexical import analyse

__all__ = ["COSINE_SUPPORTED", "LEXICAL_FLOOR", "LEXICAL_SUPPORTED", "QUESTION_RELEVANCE", "Thresholds"]

PPM = 1_000_000

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
    marked: bool = True  # the sentence cites this source; False: found by checking every source
    reason: str = ""  # support.Verdict.reason


@dataclass(frozen=True)
class Attribution:
    """Checked citations of an answer and the weight each cited source earned."""

    sentences: list[AnswerSentence]
    checks: list[Check]
    weights: dict[int, int] = field(default_factory=dict)  # marker -> parts per million
    # Each credited sentence's share, by source (``sentence_shares``): what the weights sum up.
    shares: dict[int, dict[int, Fraction]] = field(default_factory=dict)

    @property
    def verified_markers(self) -> list[int]:
        """Sources that support at least one sentence, in order of first appearance."""
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
    thresholds: Thresholds = DEFAULT,
) -> list[Check]:
    """Check every sentence against every source (``sources[m - 1]`` is source ``m``), markers or not.

    Returned: a check for every marker a sentence carries, supported or not, and one for every
    source that supports a sentence without being named by it. Without ``embed`` only the
    lexical evidence counts.
    """
    if not sentences or not sources:
        return []
    judge = SupportCheck(question, embed, thresholds)
    parsed = [Source.of(text) for text in sources]
    question_terms = judge.question_terms
    sentence_terms = {s.index: analyse(s.text) for s in sentences}
    # A sentence must touch the question: share a term with it or, failing that, be close to it
    # in embedding space (one batch for all such sentences).
    off_terms = [s for s in sentences if sentence_terms[s.index] and not set(sentence_terms[s.index]) & question_terms
                 and judge.states(s.text) is None]
    relevance: dict[int, float] = {}
    if embed is not None and off_terms:
        vectors = embed([question] + [s.text for s in off_terms])
        relevance = {s.index: float(vectors[1 + k] @ vectors[0]) for k, s in enumerate(off_terms)}
    checks: list[Check] = []
    for s in sentences:
        terms = sentence_terms[s.index]
        on_topic = bool(set(terms) & question_terms) or relevance.get(s.index, -1.0) >= thresholds.question_relevance
        for m, source in enumerate(parsed, start=1):
            marked = m in s.markers
            if not on_topic:
                if marked:
                    checks.append(Check(s.index, m, 0.0, None, False, True, "off topic"))
                continue
            v = judge.judge(s.text, source)
            if marked or v.supported:
                checks.append(Check(s.index, m, v.lexical, v.cosine, v.supported, marked, v.reason))
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


def sentence_shares(sentences: Sequence[AnswerSentence], checks: Sequence[Check]) -> dict[int, dict[int, Fraction]]:
    """Each credited sentence's share of the answer, split among the sources it is credited to:
    sentence index -> marker -> exact share (all of them sum to 1; empty when nothing is supported)."""
    supporters: dict[int, list[Check]] = {}
    for c in checks:
        if c.supported:
            supporters.setdefault(c.sentence, []).append(c)
    # A sentence's markers choose among the sources that support it; when none of them does
    # (no markers, or markers on the wrong source or sentence), every supporting source shares it.
    verified = {i: [c.marker for c in cs if c.marked] or [c.marker for c in cs] for i, cs in supporters.items()}
    by_index = {s.index: s for s in sentences}
    seen_texts: set[str] = set()
    credited: list[int] = []
    for index in sorted(verified):
        key = " ".join(analyse(by_index[index].text))
        if key in seen_texts:
            continue  # a repeated claim earns once
        seen_texts.add(key)
        credited.append(index)
    return {i: {m: Fraction(1, len(credited) * len(verified[i])) for m in verified[i]} for i in credited}


def weigh(sentences: Sequence[AnswerSentence], checks: Sequence[Check]) -> dict[int, int]:
    """Each source's share of the answer in parts per million (empty when nothing is supported)."""
    return _weights(sentence_shares(sentences, checks))


def _weights(shares: Mapping[int, Mapping[int, Fraction]]) -> dict[int, int]:
    credit: dict[int, Fraction] = {}
    for per_marker in shares.values():
        for m, share in per_marker.items():
            credit[m] = credit.get(m, Fraction(0)) + share
    return largest_remainder(credit, PPM)


def first_writer_weights(
    shares: Mapping[int, Mapping[int, Fraction]],
    taken: Mapping[tuple[int, int], tuple[int, Mapping[K, int]]],
    listed: Mapping[K, int],
) -> dict[tuple[int, K | None], int]:
    """Weights in parts per million after each stretch goes to whoever wrote it first.

    ``taken[(sentence, marker)]`` is (the sentence's words, words of it each older writer wrote
    before that source did). Those words' part of the source's share goes to the writer; the
    source keeps the rest. Keys: (marker, None) for a source's own part, (marker, writer) for a
    writer's part of what that source was credited with; a writer that is itself a source
    (``listed``: writer -> its marker) is credited as that source.
    """
    credit: dict[tuple[int, K | None], Fraction] = {}
    for sentence, per_marker in shares.items():
        for m, share in per_marker.items():
            total, writers = taken.get((sentence, m), (0, {}))
            kept = share
            for writer, n in writers.items():
                part = share * Fraction(n, total)
                key: tuple[int, K | None] = (listed[writer], None) if writer in listed else (m, writer)
                credit[key] = credit.get(key, Fraction(0)) + part
                kept -= part
            if kept:
                credit[(m, None)] = credit.get((m, None), Fraction(0)) + kept
    return largest_remainder(credit, PPM)


def attribute(
    answer: str,
    sources: Sequence[str],
    question: str,
    embed: Embed | None = None,
    thresholds: Thresholds = DEFAULT,
) -> Attribution:
    """Parse, verify and weigh the citations of an answer in one call."""
    sentences = parse_citations(answer, len(sources))
    checks = verify(sentences, sources, question, embed, thresholds)
    shares = sentence_shares(sentences, checks)
    return Attribution(sentences, checks, _weights(shares), shares)
