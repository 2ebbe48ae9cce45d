"""Origin at the level people copy: the sentences of a text that carry a fact, and their identity.

A chunk-level near-duplicate check misses a new text that copies one sentence of an older one
(the copy's cosine to the whole older chunk stays below the threshold). So every sentence long
enough to carry a fact on its own gets an identity, the hash of its words, and the first
contributor to store a sentence is its origin (``sentence_origins``, unique on the hash).

Which sentences count: at least ``MIN_WORDS`` words. Short sentences ("Yes.", "It is
poisonous.", "See Table 2.") are written independently by many people and say little alone;
long ones are practically never written word for word by two authors. Measured on the shared
corpora (``bench/sentence_origin.py``): between distinct documents, identical sentences of 8 or
more words are a few per ten thousand, and those are boilerplate or the same quotation (see
docs/retrieval.md, Sentence origin).

A copy need not be a whole sentence: wrapped in other words, trimmed, with a word changed, a
clause inside a longer sentence, two sentences merged or one split. So the words of a stored
chunk are also fingerprinted by runs of ``STRETCH_WORDS`` words (winnowed, ``fingerprints``),
and a new text's sentences that carry a run another chunk has, and that takes a fact of it
(``copied_sentences``), are copies too (docs/retrieval.md, Stretch origin).
"""

from __future__ import annotations

import bisect
import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

# The fewest words of a sentence that carries a fact of its own (module docstring).
MIN_WORDS = 8
# Stretches: a run of this many words shared with an older chunk is a copy of it (docs/retrieval.md,
# "Stretch origin": the window measured by bench/sentence_origin.py on the shared corpora).
STRETCH_WORDS = 10
# Winnowing window: of every WINNOW consecutive stretches one is stored and looked up, so any
# shared run of STRETCH_WORDS + WINNOW - 1 words is found for sure (shorter ones often).
WINNOW = 4
# A copy takes a fact when it holds at least this share of one of the origin's sentences, at
# least LONG_COPY words of the origin, or NUMBERED_SHARE of a sentence with one of its numbers
# (``takes_a_fact``).
ORIGIN_SHARE = 0.5
NUMBERED_SHARE = 1 / 3
LONG_COPY = 20
# At most this many older chunks are read back per new chunk to align against (those sharing the
# most fingerprints): bounds the work one untrusted chunk can cause.
MAX_ORIGIN_CHUNKS = 8
_WORD = re.compile(r"\w+")
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Sentence:
    """One sentence of a text: where it is, how many words it has, and its identity (or None when
    it is too short to carry a fact alone)."""

    text: str
    start: int
    end: int
    words: int
    hash: str | None


@cache
def _punkt() -> Callable[[str], list[tuple[int, int]]]:
    # NLTK's Punkt with its trained English parameters (abbreviations such as "Dr.", "U.S."),
    # from the data llama-index bundles (no download); loaded once, ~20 ms.
    from llama_index.core.utils import globals_helper
    from nltk.tokenize import PunktTokenizer

    globals_helper.wait_for_nltk_check()  # puts llama-index's bundled nltk data on nltk's path
    tokenizer = PunktTokenizer("english")
    return lambda text: list(tokenizer.span_tokenize(text))


def words(text: str) -> list[str]:
    """The words of a text, Unicode-normalised and case-folded (punctuation and spacing dropped)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def sentence_hash(text: str) -> str:
    """Hex sha256 of a sentence's words: equal for copies that differ only in case, spacing,
    punctuation or Unicode form."""
    return hashlib.sha256(" ".join(words(text)).encode("utf-8")).hexdigest()


def sentences(text: str) -> list[Sentence]:
    """The sentences of ``text`` in order, each hashed when it has at least ``MIN_WORDS`` words."""
    out = []
    for start, end in _punkt()(text):
        piece = text[start:end]
        n = len(words(piece))
        if n:
            out.append(Sentence(piece, start, end, n, sentence_hash(piece) if n >= MIN_WORDS else None))
    return out


def without(text: str, dropped: list[Sentence]) -> str:
    """``text`` with the ``dropped`` sentences taken out (what is left between them, joined by a space)."""
    pieces, at = [], 0
    for s in sorted(dropped, key=lambda s: s.start):
        pieces.append(text[at:s.start])
        at = s.end
    pieces.append(text[at:])
    return " ".join(p.strip() for p in pieces if p.strip())


@dataclass(frozen=True)
class Split:
    """A text's sentences, its words in order, and where each sentence's words start."""

    sentences: list[Sentence]
    words: list[str]
    starts: list[int]


def split(text: str) -> Split:
    """``text`` as sentences and the words they hold (the words of stretches and fingerprints)."""
    sents, all_words, starts = [], [], []
    for start, end in _punkt()(text):
        piece = text[start:end]
        ws = words(piece)
        if ws:
            starts.append(len(all_words))
            all_words.extend(ws)
            sents.append(Sentence(piece, start, end, len(ws), sentence_hash(piece) if len(ws) >= MIN_WORDS else None))
    return Split(sents, all_words, starts)


def _stretch_hash(stretch: Sequence[str]) -> int:
    # 64 bits, signed so it fits a BIGINT: collisions among billions of stretches stay unlikely,
    # and a collision alone decides nothing (matches are aligned word for word afterwards).
    digest = hashlib.blake2b(" ".join(stretch).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _stretch_hashes(ws: Sequence[str], n: int) -> list[int]:
    return [_stretch_hash(ws[i:i + n]) for i in range(len(ws) - n + 1)]


def fingerprints(ws: Sequence[str], n: int = STRETCH_WORDS, window: int = WINNOW) -> list[int]:
    """The winnowed hashes of the ``n``-word stretches of ``ws`` (each distinct once, in order).

    Winnowing (Schleimer, Wilkerson, Aiken 2003): the smallest hash of every ``window`` consecutive
    stretches, so two texts sharing a run of ``n + window - 1`` words share a fingerprint. Hand-rolled:
    a dozen lines, and the libraries at hand (datasketch) estimate set similarity, not shared runs.
    """
    hashes = _stretch_hashes(ws, n)
    if not hashes:
        return []
    if len(hashes) <= window:
        return [min(hashes)]
    picked: dict[int, None] = {}
    for i in range(len(hashes) - window + 1):
        picked[min(hashes[i:i + window])] = None
    return list(picked)


def stretch_hashes(ws: Sequence[str], n: int = STRETCH_WORDS) -> set[int]:
    """Every ``n``-word stretch hash of ``ws`` (not winnowed): what a lookup of a short text in the
    stored fingerprints needs, since the older text kept only its winnowed ones."""
    return set(_stretch_hashes(ws, n))


def first_written(ws: Sequence[str], copy: Sequence[str], origins: Sequence[tuple[K, Sequence[str]]],
                  n: int = STRETCH_WORDS) -> dict[K, int]:
    """How many words of ``ws`` (a quoted text) each of ``origins`` (oldest first) wrote before
    ``copy``, the source the quote is credited to: words inside a run of at least ``n`` words that
    the quote, ``copy`` and that origin all hold; a word several origins hold is the oldest's."""
    def stretches(text: Sequence[str]) -> set[tuple[str, ...]]:
        return {tuple(text[j:j + n]) for j in range(len(text) - n + 1)}

    in_copy = stretches(copy)
    taken = [False] * len(ws)
    out: dict[K, int] = {}
    for key, origin in origins:
        theirs = stretches(origin)
        count = 0
        for i in range(len(ws) - n + 1):
            run = tuple(ws[i:i + n])
            if run in in_copy and run in theirs:
                for k in range(i, i + n):
                    if not taken[k]:
                        taken[k] = True
                        count += 1
        if count:
            out[key] = count
    return out


def aligned(ws: Sequence[str], other: Sequence[str], n: int = STRETCH_WORDS) -> list[int | None]:
    """For each word of ``ws``, the position in ``other`` of the same word when both lie in a run of
    at least ``n`` words the two texts share (None elsewhere; a run ``other`` holds twice maps to its first)."""
    first: dict[tuple[str, ...], int] = {}
    for j in range(len(other) - n + 1):
        first.setdefault(tuple(other[j:j + n]), j)
    out: list[int | None] = [None] * len(ws)
    for i in range(len(ws) - n + 1):
        j = first.get(tuple(ws[i:i + n]))
        if j is not None:
            for k in range(n):
                if out[i + k] is None:
                    out[i + k] = j + k
    return out


def covered(ws: Sequence[str], other: Sequence[str], n: int = STRETCH_WORDS) -> list[bool]:
    """Which words of ``ws`` lie in a run of at least ``n`` words that ``other`` also has."""
    return [j is not None for j in aligned(ws, other, n)]


def carries_copy(copied_words: int, sentence_words: int, n: int = STRETCH_WORDS) -> bool:
    """A sentence carries a copy when a whole stretch of it is copied, or at least half of it is
    (a short piece of a copied sentence split in two); a word or two spilling over is not."""
    return copied_words > 0 and copied_words >= min(n, (sentence_words + 1) // 2)


def takes_a_fact(origin_positions: Sequence[int], origin: Split, share: float = ORIGIN_SHARE,
                 long: int = LONG_COPY) -> bool:
    """Whether copied words (their positions in the origin) take a fact: most of one of the origin's
    sentences, a run too long to be a formula, or a third of a sentence with one of its numbers. A
    stock phrase ("the aim of this study was to determine whether") or a template's frame ("men's
    basketball team represented the University of") is a small part of each sentence that holds
    it, with that sentence's own facts around it, and carries no number of its own (a template's
    years and counts are what change between its copies); a numbered formula ("SPSS version
    22.0") is a small part of its sentence too."""
    if len(origin_positions) >= long:
        return True
    per_sentence = Counter(bisect.bisect_right(origin.starts, j) - 1 for j in origin_positions)
    numbered = {bisect.bisect_right(origin.starts, j) - 1 for j in origin_positions
                if any(c.isdigit() for c in origin.words[j])}
    return any(count >= share * origin.sentences[i].words
               or (i in numbered and count >= NUMBERED_SHARE * origin.sentences[i].words)
               for i, count in per_sentence.items())


def _runs(marks: Sequence[int | None]) -> list[tuple[int, int]]:
    """The maximal stretches [start, end) of consecutive aligned words that follow each other in the origin too."""
    runs, start = [], None
    for i, j in enumerate(marks):
        if j is None:
            if start is not None:
                runs.append((start, i))
            start = None
        elif start is None:
            start = i
        elif marks[i - 1] is not None and j != marks[i - 1] + 1:  # type: ignore[operator]
            runs.append((start, i))
            start = i
    if start is not None:
        runs.append((start, len(marks)))
    return runs


def copied_sentences(text: Split, origins: Mapping[K, Split], n: int = STRETCH_WORDS, share: float = ORIGIN_SHARE,
                     long: int = LONG_COPY) -> dict[int, K]:
    """The sentences of ``text`` (by position) that carry a stretch copied from one of ``origins``
    and take a fact of it (``takes_a_fact``), each with the origin it copies most words from.

    Whether a copy takes a fact is judged on the whole copied run, so a copied sentence split in
    two loses both halves; whether a sentence carries it, on the words of the run inside it.
    """
    per_origin = {key: aligned(text.words, origin.words, n) for key, origin in origins.items()}
    taking: dict[K, list[tuple[int, int]]] = {
        key: [(a, b) for a, b in _runs(marks) if takes_a_fact([marks[j] for j in range(a, b)], origins[key], share, long)]  # type: ignore[misc]
        for key, marks in per_origin.items()
    }
    # Prefix sums of the words each origin's fact-taking runs cover, and of those any covers:
    # linear in the text's words whatever the number of runs.
    def prefix(flags: list[bool]) -> list[int]:
        sums = [0]
        for f in flags:
            sums.append(sums[-1] + f)
        return sums

    flags = {key: [False] * len(text.words) for key in taking}
    for key, runs in taking.items():
        for a, b in runs:
            flags[key][a:b] = [True] * (b - a)
    per_key = {key: prefix(f) for key, f in flags.items()}
    anywhere = prefix([any(f[j] for f in flags.values()) for j in range(len(text.words))])
    out: dict[int, K] = {}
    for i, (sentence, start) in enumerate(zip(text.sentences, text.starts)):
        end = start + sentence.words
        if carries_copy(anywhere[end] - anywhere[start], sentence.words, n):
            inside = Counter({key: sums[end] - sums[start] for key, sums in per_key.items()})
            out[i] = inside.most_common(1)[0][0]
    return out
