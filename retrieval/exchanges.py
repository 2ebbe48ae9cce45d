"""What a speaker said next: a chat message read with the rest of its exchange.

People split one thought over several messages: "I just signed with a new team - excited for the
season!", then, asked which one, "The Minnesota Wolves! I can't wait to play with them!". A
search finds the first (it shares the question's words); the answer is in the second, which shares
none. So a retrieved message comes with its speaker's next message of the same exchange: the
speaker's next chunk in the same contribution (a data set's rows keep their order), at most
``MAX_TURNS`` rows on and said within ``MAX_GAP`` of the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from retrieval.models import Chunk
from retrieval.said import moment
from retrieval.search import SearchResult

# Messages further apart than this belong to different exchanges: a chat's replies come within
# minutes; a speaker's message an hour later starts something else (a data set that gives one
# time per session, as locomo does, has a gap of zero inside each session).
MAX_GAP = timedelta(hours=1)
# Rows between a message and its speaker's next one, at most: in a chat export the other side's
# reply comes between ("Which club?"); further on, the talk has moved elsewhere.
MAX_TURNS = 4


def next_messages(session: Session, results: Sequence[SearchResult], max_gap: timedelta = MAX_GAP) -> dict[int, SearchResult]:
    """For each retrieved message (a result with a speaker and a time), the same speaker's next
    message of its exchange, by the retrieved chunk's id; messages without one are left out.
    Two queries whatever the number of results: their positions, then every row that could follow."""
    said = [r for r in results if r.speaker and r.timestamp]
    if not said:
        return {}
    positions = dict(session.execute(select(Chunk.id, Chunk.position).where(Chunk.id.in_([r.chunk_id for r in said]))).tuples().all())
    placed = [(r, positions[r.chunk_id]) for r in said if r.chunk_id in positions]
    if not placed:
        return {}
    rows = session.scalars(
        select(Chunk).where(Chunk.indexed.is_(True), or_(*(
            and_(Chunk.contribution_id == r.contribution_id, Chunk.position > at, Chunk.position <= at + MAX_TURNS,
                 Chunk.speaker == r.speaker)
            for r, at in placed)))
    ).all()
    by_place: dict[tuple[int, str | None, int], Chunk] = {}
    for c in sorted(rows, key=lambda c: c.id):  # the first stored of a position, as ordered before
        by_place.setdefault((c.contribution_id, c.speaker, c.position), c)
    out: dict[int, SearchResult] = {}
    for r, at in placed:
        following = next((c for turn in range(1, MAX_TURNS + 1)
                          if (c := by_place.get((r.contribution_id, r.speaker, at + turn))) is not None), None)
        if following is None or not following.said_at:
            continue
        try:
            gap = abs(moment(following.said_at) - moment(r.timestamp))  # type: ignore[operator]
        except (TypeError, ValueError):  # one with an offset, one without; or stored before validation
            continue
        if gap <= max_gap:
            out[r.chunk_id] = SearchResult(
                chunk_id=following.id, score=0.0, text=following.text, title=following.title,
                source_id=following.source_id, contributor=following.contributor,
                contribution_id=following.contribution_id, content_hash=following.content_hash,
                speaker=following.speaker, timestamp=following.said_at,
            )
    return out
