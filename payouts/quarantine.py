"""The payee quarantine: payees whose payment failed, kept out of the voucher and settlement runs.

A failure of one payee (its ``open`` reverts, its push reverts, its address can never be paid)
used to abort the whole run, which Celery retried forever while everyone else waited. Now the run
records the payee here with the reason and carries on. Nothing moves in the ledger: the payee's
credits stay owed, in ``contributors`` as before, so every invariant holds unchanged.

A payee leaves the quarantine by ``openchat payouts release`` (:func:`release`), or, when
``retry_at`` has passed, by the next run that tries it again and succeeds (:func:`resolve`).
Each failure doubles the wait (``payee_retry_seconds`` × 2^(failures−1)); after
``payee_max_retries`` automatic retries, and always for an address that can never be paid,
``retry_at`` is NULL and only the operator can release it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, or_, select, update
from sqlalchemy.orm import Session

from payouts.models import Contributor, PayeeQuarantine, utcnow

STAGES = ("voucher", "settle")
MAX_REASON_CHARS = 2_000


def next_retry(failures: int, now: datetime, base_seconds: float, max_retries: int) -> datetime | None:
    """When a payee that failed ``failures`` times is tried again automatically (None: never)."""
    if base_seconds <= 0 or failures > max_retries:
        return None
    return now + timedelta(seconds=base_seconds * 2 ** (failures - 1))


def held_out(now: datetime | None = None) -> ColumnElement[bool]:
    """SQL: the contributor row's payee is quarantined and not (yet) due for a retry."""
    now = now or utcnow()
    q = PayeeQuarantine
    return exists().where(q.address == Contributor.address, q.status == "quarantined",
                          or_(q.retry_at.is_(None), q.retry_at > now))


@dataclass(frozen=True)
class Quarantined:
    """What a run recorded about a payee it could not pay."""

    address: str
    stage: str
    code: str
    reason: str
    failures: int
    retry_at: datetime | None


def quarantine(
    session: Session, address: str, *, stage: str, code: str, reason: str,
    retry_seconds: float, max_retries: int, permanent: bool = False, now: datetime | None = None,
) -> Quarantined:
    """Quarantine ``address`` (a contributor) for a failure in ``stage``, or record one more
    failure of a payee already there; ``permanent``: never retried automatically."""
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    now = now or utcnow()
    reason = reason[:MAX_REASON_CHARS]
    row = session.scalar(select(PayeeQuarantine).where(PayeeQuarantine.address == address).with_for_update())
    failures = 1 if row is None else row.failures + 1
    retry_at = None if permanent else next_retry(failures, now, retry_seconds, max_retries)
    if row is None:
        session.add(PayeeQuarantine(address=address, status="quarantined", stage=stage, code=code[:64],
                                    reason=reason, failures=1, first_failed_at=now, last_failed_at=now,
                                    retry_at=retry_at))
    else:
        row.status, row.stage, row.code, row.reason = "quarantined", stage, code[:64], reason
        row.failures, row.last_failed_at, row.retry_at = failures, now, retry_at
        row.released_at = row.released_by = None
    session.flush()
    return Quarantined(address, stage, code[:64], reason, failures, retry_at)


def due_retries(session: Session, now: datetime | None = None) -> dict[str, str]:
    """Quarantined payees whose automatic retry is due: address -> the stage that failed."""
    now = now or utcnow()
    q = PayeeQuarantine
    return dict(session.execute(select(q.address, q.stage).where(
        q.status == "quarantined", q.retry_at.is_not(None), q.retry_at <= now)).all())


def resolve(session: Session, address: str, *, now: datetime | None = None) -> bool:
    """A retried payee was paid: release it (by ``retry``). False when it was not quarantined."""
    return bool(_release(session, [address], by="retry", now=now))


def release(session: Session, addresses: list[str] | None, *, by: str = "operator",
            now: datetime | None = None) -> list[str]:
    """Release quarantined payees (``None``: all of them); the next runs pay what they are owed.
    Returns the addresses released."""
    return _release(session, addresses, by=by, now=now)


def _release(session: Session, addresses: list[str] | None, *, by: str, now: datetime | None) -> list[str]:
    q = PayeeQuarantine
    stmt = update(q).where(q.status == "quarantined")
    if addresses is not None:
        if not addresses:
            return []
        stmt = stmt.where(q.address.in_(addresses))
    stmt = stmt.values(status="released", released_at=now or utcnow(), released_by=by[:200], retry_at=None)
    return sorted(session.execute(stmt.returning(q.address).execution_options(synchronize_session=False)).scalars())


def quarantined(session: Session, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The payees in quarantine, oldest failure first, with what they are still owed
    (``owed`` = earned − settled, all of it kept in the ledger)."""
    q, c = PayeeQuarantine, Contributor
    stmt = (select(q, c.earned, c.batched, c.vouchered, c.settled).join(c, c.address == q.address)
            .where(q.status == "quarantined").order_by(q.first_failed_at, q.address))
    if limit is not None:
        stmt = stmt.limit(limit)
    out = []
    for row, earned, batched, vouchered, settled in session.execute(stmt).all():
        out.append({
            "address": row.address, "stage": row.stage, "code": row.code, "reason": row.reason,
            "failures": row.failures, "first_failed_at": _iso(row.first_failed_at),
            "last_failed_at": _iso(row.last_failed_at), "retry_at": _iso(row.retry_at),
            "earned": int(earned), "batched": int(batched), "vouchered": int(vouchered), "settled": int(settled),
            "owed": int(earned) - int(settled)})
    return out


def summary(session: Session) -> tuple[int, int]:
    """How many payees are quarantined and what they are owed (Σ earned − settled)."""
    q, c = PayeeQuarantine, Contributor
    count, owed = session.execute(
        select(func.count(), func.coalesce(func.sum(c.earned - c.settled), 0))
        .select_from(q).join(c, c.address == q.address).where(q.status == "quarantined")).one()
    return int(count), int(owed)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
