"""Who wrote a quoted stretch first: the older chunks of other contributors whose words a quote carries.

The intake takes a copied stretch out of a new chunk only when it takes a fact of its origin
(``retrieval.origin.takes_a_fact``): a shorter clause copy (under a third of its sentence, no
number) is kept, because at intake nothing says which few words matter, and a stricter rule takes
templated phrases from independent writers. An answer does say which words matter: the sentence it
quotes. So when an answer sentence credited to a source carries a run of at least ``QUOTED_RUN``
(8) words that the source holds and an older chunk of another contributor wrote first, those
words are that chunk's (``assistant`` moves their share of the credit to it).

Candidates come from the stretch fingerprints the intake records anyway (``stretch_origins``, one
query for all of an answer's quotes: runs of 10 words) and from a lexical search for each quote
through a search function the caller passes in (a run of 8-12 words has a stored fingerprint only when winnowing kept
one there, or none at all); at
most ``MAX_ORIGIN_CHUNKS`` of each are read back and aligned word for word, so the work per answer
is bounded by the answer's length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from retrieval.models import Chunk, StretchOrigin
from retrieval.origin import MAX_ORIGIN_CHUNKS, MIN_WORDS, first_written, stretch_hashes, words

# The shortest shared run an answer's quote pays its first writer for: as many words as a sentence
# needs to carry a fact of its own (``MIN_WORDS``). Shorter than the intake's stretch because the
# answer has shown these words matter; chosen on the even half of the shared corpora (docs/retrieval.md,
# First writers in an answer: 8 words find 0.94-1.0 of kept clause copies there, 10 words 0.6).
QUOTED_RUN = MIN_WORDS
_IN_LIST = 500
# Text -> the chunk ids a lexical search ranks best for it (the caller's search: ``retrieval``
# keeps none of its own here).
Search = Callable[[str], Sequence[int]]


@dataclass(frozen=True)
class Quote:
    """One answer sentence and the source it is credited to."""

    text: str
    chunk_id: int
    contributor: str


@dataclass(frozen=True)
class FirstWriter:
    """An older chunk of another contributor that wrote ``words`` of a quote before its source did."""

    chunk_id: int
    contributor: str
    words: int


@dataclass(frozen=True)
class Found:
    """A quote's words, and those of them other contributors wrote first (oldest chunk first)."""

    words: int
    writers: tuple[FirstWriter, ...]


def first_writers(session: Session, quotes: Sequence[Quote], search: Search | None = None) -> list[Found]:
    """For each quote, the older chunks of other contributors that wrote words of it first.

    Candidates are the chunks its stretches' fingerprints name (sure for a shared run of 13 words,
    often for 10-12: the older text kept only winnowed ones) and the best ``MAX_ORIGIN_CHUNKS`` of
    ``search`` for its text (any run of ``QUOTED_RUN`` words, when the search ranks its origin),
    asked once per distinct text of at least ``QUOTED_RUN`` words (shorter ones hold no such run).
    """
    quote_words = [words(q.text) for q in quotes]
    hashes = [stretch_hashes(ws) for ws in quote_words]
    origins = _origins(session, set().union(*hashes)) if hashes else {}
    searched: dict[str, Sequence[int]] = {}
    if search is not None:
        for q, ws in zip(quotes, quote_words):
            if len(ws) >= QUOTED_RUN and q.text not in searched:
                searched[q.text] = search(q.text)[:MAX_ORIGIN_CHUNKS]
    leads: list[set[int]] = []
    for q, hs in zip(quotes, hashes):
        counts: Counter[int] = Counter()
        for h in hs:
            cid, who = origins.get(h, (None, None))
            if cid is not None and who != q.contributor and cid < q.chunk_id:
                counts[cid] += 1
        found = {cid for cid, _ in counts.most_common(MAX_ORIGIN_CHUNKS)}
        found |= {cid for cid in searched.get(q.text, ()) if cid < q.chunk_id}
        leads.append(found)
    wanted = {cid for c in leads for cid in c} | {q.chunk_id for q, c in zip(quotes, leads) if c}
    texts = _texts(session, wanted) if wanted else {}
    out: list[Found] = []
    for q, ws, cids in zip(quotes, quote_words, leads):
        # Older (ids grow with each insert) and someone else's: the quoted source came later.
        older = sorted(cid for cid in cids if cid in texts and texts[cid][0] != q.contributor)
        if not older or q.chunk_id not in texts:
            out.append(Found(len(ws), ()))
            continue
        counted = first_written(ws, texts[q.chunk_id][1], [(cid, texts[cid][1]) for cid in older], QUOTED_RUN)
        out.append(Found(len(ws), tuple(FirstWriter(cid, texts[cid][0], n) for cid, n in sorted(counted.items()))))
    return out


def _origins(session: Session, hashes: set[int]) -> dict[int, tuple[int, str]]:
    """Stretch hash -> (first chunk, its contributor), for the hashes recorded."""
    found: dict[int, tuple[int, str]] = {}
    ordered = sorted(hashes)
    for at in range(0, len(ordered), _IN_LIST):
        for h, cid, who in session.execute(
            select(StretchOrigin.hash, StretchOrigin.chunk_id, StretchOrigin.contributor)
            .where(StretchOrigin.hash.in_(ordered[at:at + _IN_LIST]))
        ):
            found[h] = (cid, who)
    return found


def _texts(session: Session, ids: set[int]) -> dict[int, tuple[str, list[str]]]:
    """Chunk id -> (contributor, its words as its fingerprints were taken)."""
    out: dict[int, tuple[str, list[str]]] = {}
    ordered = sorted(ids)
    for at in range(0, len(ordered), _IN_LIST):
        for cid, who, text in session.execute(
            select(Chunk.id, Chunk.contributor, Chunk.text).where(Chunk.id.in_(ordered[at:at + _IN_LIST]))
        ):
            out[cid] = (who, words(text))  # the words split(text) fingerprints, without sentence splitting
    return out
