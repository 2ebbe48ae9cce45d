"""The ledger side of channel deposits: what each channel holds, the idle channels the reclaim
run closes, their closings and what was reclaimed, and the payees owed too little for a channel.

Pure ledger: the chain's facts (a channel's deposit, its challenge period's end, a settle's
refund) are read by the caller (``payouts.tasks.run_reclaim``) and passed in. Every write is
conditional on the state it moves from, so a run repeated after a crash records nothing twice.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.orm import Session

from payouts import quarantine
from payouts.ledger import _insert_ignore, checksum
from payouts.models import (
    ChannelClosure,
    Contributor,
    PayeeChannel,
    PayoutDeployment,
    Voucher,
    utcnow,
)

STATES = ("open", "closing", "settled")


def _cid(channel_id: bytes | str) -> str:
    return channel_id if isinstance(channel_id, str) else "0x" + bytes(channel_id).hex()


def record_channel(session: Session, deployment_id: int, channel_id: bytes | str, *, deposited: int,
                   state: str) -> None:
    """Record a channel's deposit and state as just read from (or made on) the chain."""
    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}, got {state!r}")
    if not isinstance(deposited, int) or isinstance(deposited, bool) or deposited < 0:
        raise ValueError(f"deposited must be a non-negative integer, got {deposited!r}")
    C = PayeeChannel
    session.execute(update(C).where(C.deployment_id == deployment_id, C.channel_id == _cid(channel_id))
                    .values(deposited=deposited, state=state).execution_options(synchronize_session=False))


@dataclass(frozen=True)
class IdleChannel:
    address: str
    deployment_id: int
    channel_id: str
    vouchered: int  # the channel's latest voucher (less any part returned to owed)
    settled: int
    deposited: int
    last_voucher_at: datetime

    @property
    def channel_bytes(self) -> bytes:
        return bytes.fromhex(self.channel_id.removeprefix("0x"))


def idle_channels(session: Session, *, deployment_ids: Collection[int], idle_before: datetime,
                  limit: int = 1_000) -> list[IdleChannel]:
    """Open channels (of ``deployment_ids``) with no voucher since ``idle_before`` whose payee has
    nothing batched waiting for a voucher and is not held in quarantine: the ones to close."""
    C = PayeeChannel
    last = (select(func.max(Voucher.created_at)).where(Voucher.deployment_id == C.deployment_id,
                                                      Voucher.channel_id == C.channel_id)
            .scalar_subquery())
    since = func.coalesce(last, C.created_at)
    rows = session.execute(
        select(C.contributor, C.deployment_id, C.channel_id, C.vouchered - C.retired, C.settled, C.deposited, since)
        .join(Contributor, Contributor.address == C.contributor)
        .where(C.state == "open", C.deployment_id.in_(list(deployment_ids)), C.deposited > 0,
               Contributor.batched == Contributor.vouchered, ~quarantine.held_out(), since < idle_before)
        .order_by(since, C.id).limit(limit)).all()
    return [IdleChannel(a, int(d), c, int(v), int(s), int(dep), t) for a, d, c, v, s, dep, t in rows]


def still_idle(session: Session, channel: IdleChannel) -> bool:
    """The channel is still open with the same latest voucher, and its payee has nothing
    batched waiting for a voucher: nothing changed since it was picked as idle."""
    C = PayeeChannel
    row = session.execute(select(C.state, C.vouchered - C.retired, Contributor.batched - Contributor.vouchered)
                          .join(Contributor, Contributor.address == C.contributor)
                          .where(C.deployment_id == channel.deployment_id, C.channel_id == channel.channel_id)).one_or_none()
    return row is not None and row[0] == "open" and int(row[1]) == channel.vouchered and int(row[2]) == 0


def open_closure(session: Session, deployment_id: int, address: str, channel_id: bytes | str, *, deposited: int,
                 paid: int, closes_at: int, close_block: int, close_tx: str | None) -> None:
    """Record that the channel is closing (once per closing: the same deposit again is a no-op)."""
    cid = _cid(channel_id)
    _insert_ignore(session, ChannelClosure.__table__, [{
        "deployment_id": deployment_id, "contributor": checksum(address), "channel_id": cid, "status": "closing",
        "deposited": deposited, "paid": paid, "closes_at": closes_at, "close_block": close_block,
        "close_tx": close_tx, "created_at": utcnow()}])
    record_channel(session, deployment_id, cid, deposited=deposited, state="closing")


@dataclass(frozen=True)
class Closing:
    id: int
    deployment_id: int
    address: str
    channel_id: str
    deposited: int
    paid: int
    closes_at: int
    close_block: int

    @property
    def channel_bytes(self) -> bytes:
        return bytes.fromhex(self.channel_id.removeprefix("0x"))


def closings(session: Session, deployment_ids: Collection[int]) -> list[Closing]:
    """Closings not yet settled in the ledger, on ``deployment_ids``."""
    K = ChannelClosure
    rows = session.execute(select(K.id, K.deployment_id, K.contributor, K.channel_id, K.deposited, K.paid,
                                  K.closes_at, K.close_block)
                           .where(K.status == "closing", K.deployment_id.in_(list(deployment_ids)))
                           .order_by(K.closes_at, K.id)).all()
    return [Closing(int(i), int(d), a, c, int(dep), int(p), int(t), int(b)) for i, d, a, c, dep, p, t, b in rows]


def finish_closure(session: Session, closing: Closing, *, reclaimed: int, settle_tx: str | None,
                   reopened: bool = False) -> bool:
    """Record the settle of a closing: ``reclaimed`` went back to the hub. Only once (conditional
    on ``closing``); the channel's deposit becomes what it paid unless it was re-opened meanwhile.
    True when recorded now."""
    if not 0 <= reclaimed <= closing.deposited - closing.paid:
        raise ValueError(f"reclaimed {reclaimed} of channel {closing.channel_id} is outside "
                         f"0..{closing.deposited - closing.paid} (deposit {closing.deposited}, paid {closing.paid})")
    K = ChannelClosure
    done = session.execute(update(K).where(K.id == closing.id, K.status == "closing")
                           .values(status="settled", reclaimed=reclaimed, settle_tx=settle_tx, settled_at=utcnow())
                           .returning(K.id).execution_options(synchronize_session=False)).scalar_one_or_none()
    if done is None:
        return False
    if not reopened:
        C = PayeeChannel
        session.execute(update(C).where(C.deployment_id == closing.deployment_id, C.channel_id == closing.channel_id,
                                        C.state == "closing")
                        .values(state="settled", deposited=closing.deposited - reclaimed)
                        .execution_options(synchronize_session=False))
    return True


def _has_open_channel() -> Any:
    C = PayeeChannel
    live = select(PayoutDeployment.id).where(PayoutDeployment.retired_at.is_(None))
    # deposited > 0: a channel bound for an open that reverted (its payee quarantined) holds nothing
    return exists().where(C.contributor == Contributor.address, C.state == "open", C.deposited > 0,
                          C.deployment_id.in_(live))


def below_minimum(session: Session, min_owed: int, *, limit: int | None = None) -> tuple[int, int, list[dict[str, Any]]]:
    """Payees owed something (earned − vouchered > 0) but less than ``min_owed``, with no open
    channel: they get one once they are owed ``min_owed``. (count, Σ owed, the first ``limit``)."""
    c = Contributor
    owed = c.earned - c.vouchered
    cond = and_(owed > 0, owed < min_owed, ~_has_open_channel())
    count, total = session.execute(select(func.count(), func.coalesce(func.sum(owed), 0)).where(cond)).one()
    stmt = select(c.address, owed).where(cond).order_by(owed.desc(), c.address)
    if limit is not None:
        stmt = stmt.limit(limit)
    listed = [{"address": a, "owed": int(o)} for a, o in session.execute(stmt).all()]
    return int(count), int(total), listed


def is_below_minimum(session: Session, address: str, min_owed: int) -> bool:
    """Whether the payee is owed something below ``min_owed`` and has no open channel."""
    c = Contributor
    owed = c.earned - c.vouchered
    return session.scalar(select(func.count()).where(
        c.address == checksum(address), owed > 0, owed < min_owed, ~_has_open_channel())) == 1


def figures(session: Session, min_owed: int) -> dict[str, int]:
    """The hub's funds in channels, from the ledger: ``committed`` (deposited, not paid out, on
    open and closing channels), ``reclaimable`` (the part no voucher carries: headroom of open
    channels and the unpaid deposit of closing ones), ``closing`` (of which in a challenge
    period), ``reclaimed`` (refunded to the hub by settles), channel counts, and the payees
    below the minimum payout."""
    C, K = PayeeChannel, ChannelClosure
    live = and_(C.state.in_(("open", "closing")))
    n_open, committed, reclaimable = session.execute(
        select(func.count(), func.coalesce(func.sum(C.deposited - C.settled), 0),
               func.coalesce(func.sum(C.deposited - (C.vouchered - C.retired)), 0)).where(live)).one()
    n_closing, closing = session.execute(
        select(func.count(), func.coalesce(func.sum(C.deposited - C.settled), 0)).where(C.state == "closing")).one()
    n_reclaimed, reclaimed = session.execute(
        select(func.count(), func.coalesce(func.sum(K.reclaimed), 0)).where(K.status == "settled")).one()
    n_below, owed_below, _ = below_minimum(session, min_owed, limit=0)
    return {"channels_open": int(n_open) - int(n_closing), "channels_closing": int(n_closing),
            "channels_reclaimed": int(n_reclaimed), "deposits_committed": int(committed),
            "deposits_reclaimable": int(reclaimable), "deposits_closing": int(closing),
            "deposits_reclaimed": int(reclaimed), "payees_below_minimum": n_below,
            "below_minimum_owed": owed_below}
