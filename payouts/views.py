"""Read models for the API: what a contributor earned and can cash, and where each credit of an
answer is on its way (credited → batched → vouchered → settled). Plain dicts, JSON-ready
(amounts as ints of base units; the API may render them as strings)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payouts.ledger import checksum
from payouts.models import (
    BatchCredit,
    Contributor,
    Credit,
    PayoutBatchItem,
    Settlement,
    SettlementItem,
    Voucher,
)
from payouts.vouchers import voucher_typed_data


def _status(credit_batch: int | None, cumulative: int | None, c: Contributor) -> str:
    if credit_batch is None or cumulative is None:
        return "credited"
    if c.settled >= cumulative:
        return "settled"
    if c.vouchered >= cumulative:
        return "vouchered"
    return "batched"


def _settlement_tx(session: Session, address: str, cumulative: int) -> tuple[str | None, int | None]:
    """The first confirmed push that paid the channel up to at least ``cumulative``."""
    row = session.execute(
        select(Settlement.tx_hash, Settlement.block_number)
        .join(SettlementItem, SettlementItem.settlement_id == Settlement.id)
        .where(SettlementItem.contributor == address, SettlementItem.cumulative_amount >= cumulative,
               Settlement.status == "confirmed")
        .order_by(Settlement.id).limit(1)
    ).one_or_none()
    return (row[0], row[1]) if row else (None, None)


def _credit_rows(session: Session, where: Any, limit: int, offset: int) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Credit, BatchCredit.batch_id, PayoutBatchItem.cumulative)
        .outerjoin(BatchCredit, BatchCredit.credit_id == Credit.id)
        .outerjoin(PayoutBatchItem, (PayoutBatchItem.batch_id == BatchCredit.batch_id)
                   & (PayoutBatchItem.contributor == Credit.contributor))
        .where(where).order_by(Credit.id.desc()).limit(limit).offset(offset)
    ).all()
    people = {c.address: c for c in session.scalars(
        select(Contributor).where(Contributor.address.in_({r[0].contributor for r in rows})))}
    out = []
    for credit, batch_id, cumulative in rows:
        c = people[credit.contributor]
        status = _status(batch_id, cumulative, c)
        tx_hash, block = _settlement_tx(session, c.address, cumulative) if status == "settled" else (None, None)
        out.append({
            "answer_id": credit.answer_id, "contributor": credit.contributor, "amount": int(credit.amount),
            "weight": int(credit.weight), "status": status, "batch_id": batch_id,
            "cumulative_after_batch": None if cumulative is None else int(cumulative),
            "settlement_tx": tx_hash, "settlement_block": block,
            "created_at": credit.created_at.isoformat(),
        })
    return out


def answer_credits(session: Session, answer_id: str) -> list[dict[str, Any]]:
    """Each credit of an answer with its payout status (and the settling tx once settled)."""
    return _credit_rows(session, Credit.answer_id == answer_id, limit=10_000, offset=0)


def contributor_summary(session: Session, address: str, *, limit: int = 50, offset: int = 0) -> dict[str, Any] | None:
    """Earned, batched, vouchered, settled, plus the newest credits (paginated); None if unknown."""
    address = checksum(address)
    c = session.get(Contributor, address)
    if c is None:
        return None
    total = session.scalar(select(func.count()).select_from(Credit).where(Credit.contributor == address))
    return {
        "address": c.address, "display_name": c.display_name, "earned": int(c.earned),
        "batched": int(c.batched), "vouchered": int(c.vouchered), "settled": int(c.settled),
        "unsettled": int(c.vouchered - c.settled),
        "credits": {"total": int(total or 0), "limit": limit, "offset": offset,
                    "items": _credit_rows(session, Credit.contributor == address, limit, offset)},
    }


def latest_voucher(session: Session, address: str) -> dict[str, Any] | None:
    """The newest voucher (on the deployment vouchered last: amounts are per channel, so the
    highest amount may be an older deployment's), ready to submit with a wallet or the CLI: the
    EIP-712 ``typed_data`` {domain, types, primaryType, message} (amount as a decimal string for
    JavaScript), the ``signature`` and the ``payer``; None when the contributor has no voucher yet."""
    v = session.scalar(select(Voucher).where(Voucher.contributor == checksum(address))
                       .order_by(Voucher.id.desc()).limit(1))
    if v is None:
        return None
    typed = voucher_typed_data(v.chain_id, v.contract, v.channel_id, int(v.cumulative_amount))
    typed["message"]["cumulativeAmount"] = str(typed["message"]["cumulativeAmount"])
    return {
        "contributor": v.contributor, "payer": v.payer, "channel_id": v.channel_id,
        "cumulative_amount": str(v.cumulative_amount), "signature": v.signature,
        "typed_data": typed, "created_at": v.created_at.isoformat(),
    }


def _utc_day(session: Session) -> Any:
    """``credits.created_at`` as its UTC calendar day ('YYYY-MM-DD'), in the database's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", Credit.created_at), "YYYY-MM-DD")
    # SQLite stores the UTC instant (utcnow) as 'YYYY-MM-DD HH:MM:SS…': its first ten characters.
    return func.substr(Credit.created_at, 1, 10)


def fill_days(rows: dict[str, tuple[int, int]], first: date, last: date) -> list[dict[str, Any]]:
    """Every day from ``first`` to ``last`` (inclusive) with its (amount, credits), zero when absent."""
    out = []
    day = first
    while day <= last:
        amount, count = rows.get(day.isoformat(), (0, 0))
        out.append({"day": day.isoformat(), "amount": int(amount), "credits": int(count)})
        day += timedelta(days=1)
    return out


def contributor_daily(session: Session, address: str, *, days: int, today: date) -> dict[str, Any]:
    """What ``address`` was credited per UTC day over the ``days`` days ending ``today``: exact
    integer base units and the number of credits, every day listed (zero when nothing)."""
    address = checksum(address)
    first = today - timedelta(days=days - 1)
    day = _utc_day(session)
    rows = session.execute(
        select(day, func.sum(Credit.amount), func.count())
        .where(Credit.contributor == address, Credit.created_at >= datetime.combine(first, time(), tzinfo=UTC))
        .group_by(day)
    ).all()
    found = {str(d): (int(a or 0), int(n)) for d, a, n in rows if str(d) <= today.isoformat()}
    series = fill_days(found, first, today)
    return {"address": address, "from": first.isoformat(), "to": today.isoformat(),
            "total": sum(d["amount"] for d in series), "days": series}
